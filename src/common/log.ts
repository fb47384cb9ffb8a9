// molt's own log lines: `molt: <component>: <event> key=value`, one event a line.
// Level from MOLT_LOG_LEVEL (error|warn|info|debug), or the seed's VERBOSE=1 (debug).

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
const rank: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export function parseLogLevel(env: NodeJS.ProcessEnv): LogLevel {
  const raw = env.MOLT_LOG_LEVEL?.trim().toLowerCase();
  if (raw && raw in rank) return raw as LogLevel;
  if (env.VERBOSE && env.VERBOSE !== '0' && env.VERBOSE !== 'false') return 'debug';
  return 'info';
}

let threshold: number = rank[parseLogLevel(process.env)];
let sink: (line: string) => void = (line) => {
  try {
    process.stderr.write(line + '\n');
  } catch {
    // A closed stderr must never take PID 1 down.
  }
};

export function setLogLevel(level: LogLevel): void {
  threshold = rank[level];
}
export function setLogSink(fn: (line: string) => void): void {
  sink = fn;
}

/** Quote a value when it would break `key=value` parsing; never multi-line. */
export function fmtValue(v: unknown): string {
  let s = v instanceof Error ? v.message : String(v);
  if (s.length > 300) s = s.slice(0, 300) + '…';
  if (/^[\w.:/@+,-]*$/.test(s) && s !== '') return s;
  return JSON.stringify(s);
}

export function formatLine(component: string, msg: string, fields?: Record<string, unknown>): string {
  let line = `molt: ${component}: ${msg}`;
  if (fields) {
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined) continue;
      line += ` ${k}=${fmtValue(v)}`;
    }
  }
  return line.replace(/[\r\n]/g, ' ');
}

export interface Logger {
  error(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
}

export function logger(component: string): Logger {
  const at = (level: LogLevel) => (msg: string, fields?: Record<string, unknown>) => {
    if (rank[level] <= threshold) sink(formatLine(component, msg, fields));
  };
  return { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') };
}
