// Command-line parsing for `molt chpst`, pure. runit's chpst reads its options
// with getopt: clustered flags (-P0), an option's argument in the same word or
// the next, options ending at the first word not starting with '-' or at '--'.
// molt implements the options run scripts use; the others are refused by name.

export const USAGE = 'usage: chpst [-vP012] [-u user[:group]] [-U user[:group]] [-b argv0] [-e dir] [-/ root] [-n nice] prog\n';

export interface ChpstOptions {
  /** -u: run as this account (chpst's user[:group...] or :uid:gid). */
  user?: string;
  /** -U: set $UID and $GID from this account, without changing the process's own. */
  envUser?: string;
  /** -b: argv[0] for prog. */
  argv0?: string;
  /** -e: runit's envdir. */
  envDir?: string;
  /** -/: chroot. */
  root?: string;
  /** -n: added to the nice value. */
  nice?: number;
  verbose: boolean;
  /** -P: a new session (setsid). */
  newSession: boolean;
  /** -0 -1 -2: close that stdio fd. */
  close: number[];
  prog: string[];
}

/** runit's options molt does not implement: resource limits and locks. */
const UNSUPPORTED = new Set(['l', 'L', 'm', 'd', 'o', 'p', 'f', 'c', 'r', 't', 'V']);
const WITH_ARG = new Set(['u', 'U', 'b', 'e', '/', 'n']);

export type ParseResult = { ok: true; options: ChpstOptions } | { ok: false; stderr: string };

export function parseChpstArgs(argv: readonly string[]): ParseResult {
  const o: ChpstOptions = { verbose: false, newSession: false, close: [], prog: [] };
  const bad = (line: string): ParseResult => ({ ok: false, stderr: `${line}\n${USAGE}` });
  let i = 0;
  options: while (i < argv.length) {
    const word = argv[i]!;
    if (word === '--') {
      i++;
      break;
    }
    if (word[0] !== '-' || word.length === 1) break;
    for (let pos = 1; pos < word.length; pos++) {
      const c = word[pos]!;
      if (UNSUPPORTED.has(c)) return bad(`chpst: option -${c} is not supported by molt chpst (it implements -u -U -b -e -/ -n -v -P -0 -1 -2)`);
      if (WITH_ARG.has(c)) {
        let arg = word.slice(pos + 1);
        if (arg === '') {
          i++;
          if (i >= argv.length) return bad(`chpst: option requires an argument -- ${c}`);
          arg = argv[i]!;
        }
        if (c === 'u') o.user = arg;
        else if (c === 'U') o.envUser = arg;
        else if (c === 'b') o.argv0 = arg;
        else if (c === 'e') o.envDir = arg;
        else if (c === '/') o.root = arg;
        else if (c === 'n') {
          if (!/^[+-]?\d{1,3}$/.test(arg)) return bad(`chpst: bad nice value ${JSON.stringify(arg)}`);
          o.nice = Number(arg);
        }
        i++;
        continue options;
      }
      if (c === 'v') o.verbose = true;
      else if (c === 'P') o.newSession = true;
      else if (c === '0' || c === '1' || c === '2') o.close.push(Number(c));
      else return bad(`chpst: illegal option -- ${c}`);
    }
    i++;
  }
  o.prog = argv.slice(i);
  if (o.prog.length === 0) return { ok: false, stderr: USAGE };
  return { ok: true, options: o };
}

/**
 * runit's envdir: each file names a variable, its first line (trailing spaces and
 * tabs cut, NULs as newlines) the value; an empty file removes the variable.
 */
export function applyEnvDir(env: Record<string, string | undefined>, files: { name: string; content: string }[]): Record<string, string | undefined> {
  const out = { ...env };
  for (const f of files) {
    if (f.name.startsWith('.') || f.name.includes('=')) continue;
    if (f.content === '') {
      delete out[f.name];
      continue;
    }
    const first = f.content.split('\n')[0]!;
    out[f.name] = first.replace(/[ \t]+$/, '').replace(/\0/g, '\n');
  }
  return out;
}

/** Where `prog` is: itself when it has a '/', else the first executable on PATH (as execvp). */
export function searchPath(prog: string, pathVar: string | undefined, isExecutable: (file: string) => boolean): string | undefined {
  if (prog.includes('/')) return prog;
  for (const dir of (pathVar ?? '/usr/local/bin:/usr/bin:/bin').split(':')) {
    const file = `${dir || '.'}/${prog}`;
    if (isExecutable(file)) return file;
  }
  return undefined;
}
