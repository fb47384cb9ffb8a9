// A small Dockerfile reader for the static checks of docker/Dockerfile (no
// Docker engine runs here): instructions with their continuation lines joined,
// stages, ARG defaults, and the .dockerignore rules the build context obeys.

export interface Instruction {
  /** Upper-case keyword: FROM, RUN, COPY, ... */
  op: string;
  /** Everything after the keyword, continuation lines joined with a space. */
  args: string;
  /** 1-based line of the keyword. */
  line: number;
}

export interface Stage {
  /** `AS name`, or the stage's index as a string. */
  name: string;
  /** The image reference as written (ARGs not expanded). */
  from: string;
  /** --platform=... when given. */
  platform?: string;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** ARGs declared before the first FROM, with their defaults. */
  globalArgs: Record<string, string>;
  stages: Stage[];
  all: Instruction[];
}

/** Split into instructions: comments and blank lines dropped, `\` continuations joined. */
export function parseInstructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  let buf = '';
  let start = 0;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.replace(/\r$/, '');
    const trimmed = raw.trim();
    // Comment lines may sit inside a continued instruction; Docker drops them.
    if (trimmed.startsWith('#') || (trimmed === '' && buf === '')) continue;
    if (buf === '') start = i + 1;
    if (trimmed.endsWith('\\')) {
      buf += trimmed.slice(0, -1).trim() + ' ';
      continue;
    }
    buf += trimmed;
    const m = /^(\S+)\s*(.*)$/s.exec(buf.trim());
    if (m) out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start });
    buf = '';
  }
  if (buf.trim()) throw new Error(`Dockerfile ends inside a continued instruction (line ${start})`);
  return out;
}

export function parseDockerfile(text: string): Dockerfile {
  const all = parseInstructions(text);
  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const ins of all) {
    if (ins.op === 'FROM') {
      const words = ins.args.split(/\s+/);
      let platform: string | undefined;
      while (words[0]?.startsWith('--')) {
        const flag = words.shift()!;
        if (flag.startsWith('--platform=')) platform = flag.slice('--platform='.length);
      }
      const from = words[0] ?? '';
      const asAt = words.findIndex((w) => w.toUpperCase() === 'AS');
      const name = asAt > 0 && words[asAt + 1] ? words[asAt + 1]! : String(stages.length);
      stages.push({ name, from, ...(platform ? { platform } : {}), instructions: [] });
    } else if (stages.length === 0) {
      if (ins.op !== 'ARG') throw new Error(`line ${ins.line}: ${ins.op} before the first FROM`);
      const [k, ...v] = ins.args.split('=');
      globalArgs[k!.trim()] = v.join('=');
    } else {
      stages[stages.length - 1]!.instructions.push(ins);
    }
  }
  return { globalArgs, stages, all };
}

/** Expand ${NAME} / $NAME from `vars` (unknown names are left as written). */
export function expandArgs(s: string, vars: Record<string, string>): string {
  return s.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, a: string | undefined, b: string | undefined) => {
    const k = (a ?? b)!;
    return Object.hasOwn(vars, k) ? vars[k]! : whole;
  });
}

/** The JSON (exec) form of CMD/ENTRYPOINT/HEALTHCHECK CMD, or undefined for the shell form. */
export function execForm(args: string): string[] | undefined {
  const t = args.trim();
  if (!t.startsWith('[')) return undefined;
  const v = JSON.parse(t) as unknown;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new Error(`not a JSON array of strings: ${t}`);
  return v as string[];
}

export interface Copy {
  flags: Record<string, string>;
  sources: string[];
  dest: string;
  line: number;
}

/** COPY/ADD in the shell-words form (`COPY [--flag=v]... SRC... DEST`). */
export function parseCopy(ins: Instruction): Copy {
  const words = ins.args.split(/\s+/).filter(Boolean);
  const flags: Record<string, string> = {};
  while (words[0]?.startsWith('--')) {
    const [k, ...v] = words.shift()!.slice(2).split('=');
    flags[k!] = v.join('=');
  }
  if (words.length < 2) throw new Error(`line ${ins.line}: ${ins.op} needs a source and a destination`);
  const dest = words.pop()!;
  return { flags, sources: words, dest, line: ins.line };
}

/** LABEL k="v" k2=v2 ... → map (double quotes removed). */
export function parseLabels(args: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /([\w.\-/]+)=("(?:[^"\\]|\\.)*"|\S+)/g;
  for (const m of args.matchAll(re)) out[m[1]!] = m[2]!.startsWith('"') ? (JSON.parse(m[2]!) as string) : m[2]!;
  return out;
}

/** ENV k=v k2=v2 → map (the `ENV k v` form is not used in molt's Dockerfile). */
export function parseEnv(args: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of args.matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S+)/g)) out[m[1]!] = m[2]!.startsWith('"') ? (JSON.parse(m[2]!) as string) : m[2]!;
  return out;
}

/**
 * .dockerignore of the allowlist kind molt uses: `*` then `!path` / `!dir/`
 * exceptions. Returns whether a repository path is sent in the build context.
 * Other pattern shapes are refused, so a change to the file cannot slip past
 * this reader unnoticed.
 */
export function dockerignoreAllows(ignoreText: string): (repoPath: string) => boolean {
  const rules: { negate: boolean; pattern: string }[] = [];
  for (const raw of ignoreText.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const negate = line.startsWith('!');
    const pattern = (negate ? line.slice(1) : line).replace(/\/+$/, '').replace(/^\.?\//, '');
    if (pattern !== '*' && !/^[\w.-]+(\/[\w.-]+)*$/.test(pattern)) throw new Error(`.dockerignore pattern '${line}' is not one this reader understands`);
    rules.push({ negate, pattern });
  }
  return (repoPath) => {
    const p = repoPath.replace(/^\.?\//, '').replace(/\/+$/, '');
    let excluded = false;
    for (const r of rules) {
      const hit = r.pattern === '*' ? true : p === r.pattern || p.startsWith(r.pattern + '/');
      if (hit) excluded = !r.negate;
    }
    return !excluded;
  };
}
