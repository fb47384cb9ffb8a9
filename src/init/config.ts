// molt init's settings, read once from the environment and validated at the
// edge: a bad value is a one-line error naming the variable.
import { timerDuration } from '../common/duration.js';
import { parseSignal } from '../supervise/signals.js';

export interface InitConfig {
  servicesDir: string;
  stopTimeoutMs: number;
  maxBackoffMs: number;
  finishTimeoutMs: number;
  logPrefix: boolean;
  checkIntervalMs: number;
  checkTimeoutMs: number;
  checkFailures: number;
  healCooldownMs: number;
  /** What CMD gets back of the signals molt's starter ignored and blocked (MOLT_INHERITED_SIGNALS). */
  inheritedSignals: InheritedSignals;
}

export class ConfigError extends Error {}

function duration(env: NodeJS.ProcessEnv, name: string, fallback: number, bareUnit: 'ms' | 's' = 'ms'): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const v = timerDuration(raw, bareUnit);
  if ('problem' in v) throw new ConfigError(`${name}=${JSON.stringify(raw)} ${v.problem}`);
  return v.ms;
}

const LOG_LEVELS = ['error', 'warn', 'info', 'debug'];

export function readInitConfig(env: NodeJS.ProcessEnv): InitConfig {
  // common/log.ts falls back to info on a word it does not know: refuse it here instead.
  const rawLevel = env.MOLT_LOG_LEVEL?.trim().toLowerCase();
  if (rawLevel && !LOG_LEVELS.includes(rawLevel)) {
    throw new ConfigError(`MOLT_LOG_LEVEL=${JSON.stringify(env.MOLT_LOG_LEVEL)} must be one of ${LOG_LEVELS.join(', ')}`);
  }
  const servicesDir = env.MOLT_SERVICES || env.SVDIR || '/etc/service';
  // MOLT_STOP_TIMEOUT wins; the seed's SVWAIT is whole seconds.
  const stopTimeoutMs = env.MOLT_STOP_TIMEOUT ? duration(env, 'MOLT_STOP_TIMEOUT', 7000)! : duration(env, 'SVWAIT', 7000, 's')!;
  const maxBackoffMs = duration(env, 'MOLT_MAX_BACKOFF', 30_000)!;
  const finishTimeoutMs = duration(env, 'MOLT_FINISH_TIMEOUT', 5000)!;
  const rawPrefix = (env.MOLT_LOG_PREFIX ?? '1').trim().toLowerCase();
  if (!['0', '1', 'false', 'true', 'no', 'yes', 'off', 'on', ''].includes(rawPrefix)) {
    throw new ConfigError(`MOLT_LOG_PREFIX=${JSON.stringify(env.MOLT_LOG_PREFIX)} must be 0 or 1`);
  }
  const logPrefix = !['0', 'false', 'no', 'off'].includes(rawPrefix);
  const checkIntervalMs = duration(env, 'MOLT_CHECK_INTERVAL', 10_000)!;
  const checkTimeoutMs = duration(env, 'MOLT_CHECK_TIMEOUT', 5000)!;
  const healCooldownMs = duration(env, 'MOLT_HEAL_COOLDOWN', 300_000)!;
  const rawFailures = env.MOLT_CHECK_FAILURES?.trim() || '3';
  const checkFailures = Number(rawFailures);
  if (!Number.isInteger(checkFailures) || checkFailures < 1) throw new ConfigError(`MOLT_CHECK_FAILURES=${JSON.stringify(rawFailures)} must be a whole number >= 1`);
  if (checkIntervalMs < 100) throw new ConfigError(`MOLT_CHECK_INTERVAL=${JSON.stringify(env.MOLT_CHECK_INTERVAL)} must be at least 100ms`);
  const inheritedSignals = parseInheritedSignals(env.MOLT_INHERITED_SIGNALS);
  if ('problem' in inheritedSignals) throw new ConfigError(`MOLT_INHERITED_SIGNALS=${JSON.stringify(env.MOLT_INHERITED_SIGNALS)} ${inheritedSignals.problem}`);
  return { servicesDir, stopTimeoutMs, maxBackoffMs, finishTimeoutMs, logPrefix, checkIntervalMs, checkTimeoutMs, checkFailures, healCooldownMs, inheritedSignals };
}

export interface InitArgs {
  /** CMD and its arguments; empty without one. */
  cmd: string[];
  /** tini's -e: these exit statuses of CMD are reported as 0 (e.g. 143 for a JVM stopped by TERM). */
  successCodes: number[];
  /** tini's -p: the signal molt gets when its parent dies (when it is not PID 1). */
  parentDeathSignal?: NodeJS.Signals;
}

/** `molt init [-e CODE]... [-p SIGNAL] [--] [CMD ARGS...]`; throws ConfigError with one line on a bad option. Pure. */
export function parseInitArgs(argv: string[]): InitArgs {
  const successCodes: number[] = [];
  let parentDeathSignal: NodeJS.Signals | undefined;
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      i++;
      break;
    }
    if (!a.startsWith('-') || a === '-') break;
    const p = /^-p(.*)$/.exec(a);
    if (p) {
      const raw = p[1] !== '' ? p[1]! : argv[++i];
      const sig = raw === undefined ? undefined : parseSignal(raw);
      if (!sig) throw new ConfigError(`-p wants a signal name such as TERM, got ${JSON.stringify(raw ?? '')}`);
      parentDeathSignal = sig;
      continue;
    }
    const m = /^-e(.*)$/.exec(a);
    if (!m) throw new ConfigError(`unknown option '${a}' (usage: molt init [-e CODE]... [-p SIGNAL] [--] [CMD ARGS...])`);
    const raw = m[1] !== '' ? m[1]! : argv[++i];
    const code = Number(raw);
    if (raw === undefined || !/^\d+$/.test(raw) || code > 255) throw new ConfigError(`-e wants an exit code from 0 to 255, got ${JSON.stringify(raw ?? '')}`);
    successCodes.push(code);
  }
  return parentDeathSignal ? { cmd: argv.slice(i), successCodes, parentDeathSignal } : { cmd: argv.slice(i), successCodes };
}

/** The signal dispositions the `molt` wrapper saw in its shell before Node reset them. */
export interface InheritedSignals {
  ignored: number[];
  blocked: number[];
}

const SIGQUIT = 3;
const SIGKILL = 9;
const SIGSTOP = 19;

/** A /proc/PID/status signal mask (hex, bit N-1 for signal N) as signal numbers, KILL and STOP left out (never ignored or blocked). */
export function signalsOfMask(hex: string): number[] | undefined {
  if (!/^[0-9a-f]{1,16}$/i.test(hex)) return undefined;
  const bits = BigInt('0x' + hex);
  const out: number[] = [];
  for (let n = 1; n <= 64; n++) if ((bits >> BigInt(n - 1)) & 1n && n !== SIGKILL && n !== SIGSTOP) out.push(n);
  return out;
}

/**
 * MOLT_INHERITED_SIGNALS, as docker/molt writes it: `ign=HEX;blk=HEX`, the SigIgn and
 * SigBlk of the wrapper's shell. QUIT is left out of the ignored ones: busybox sh and
 * bash ignore it themselves (their children get it back), so a shell's SigIgn cannot
 * tell whether its parent did. Unset or empty: none. Pure.
 */
export function parseInheritedSignals(raw: string | undefined): InheritedSignals | { problem: string } {
  const out: InheritedSignals = { ignored: [], blocked: [] };
  if (!raw?.trim()) return out;
  for (const part of raw.trim().split(';')) {
    const m = /^(ign|blk)=(.*)$/.exec(part.trim());
    const sigs = m && (m[2] === '' ? [] : signalsOfMask(m[2]!));
    if (!m || !sigs) return { problem: 'is not ign=HEX;blk=HEX (the SigIgn and SigBlk masks of /proc/PID/status)' };
    if (m[1] === 'ign') out.ignored = sigs.filter((n) => n !== SIGQUIT);
    else out.blocked = sigs;
  }
  return out;
}
