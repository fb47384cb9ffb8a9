// Evidence that the app service really runs a release: a release is judged by
// the service running it, not by a file name (the entry point is the service's
// choice). Either the service's process, or one in its tree, has its working
// directory, its executable, a command-line argument or an open file inside
// the release's directory; or the service's process is no longer its own `run`
// script (it exec'd its program, as runit's run scripts do, even into one that
// shows no trace of the release). A run script still looping while waiting for
// something shows neither: its trial never sees the release up.
import fs from 'node:fs';
import path from 'node:path';
import { childrenOf } from '../common/proc.js';

/** A bound on the work per look: processes of the tree, open files per process. */
const MAX_PROCESSES = 64;
const MAX_FDS = 256;

/** True when `p` is `root` or inside it (both absolute, resolved). */
export function isInside(p: string, root: string): boolean {
  return p === root || p.startsWith(root.endsWith('/') ? root : `${root}/`);
}

/** What one process shows of the files it uses. */
export interface ProcessView {
  cwd?: string;
  exe?: string;
  /** argv, as given (relative ones are read from cwd). */
  args: string[];
  /** Targets of its open file descriptors. */
  files: string[];
}

/** Pure: does this process use something inside `releaseDir` (resolved)? `resolve` maps a path to its real one. */
export function showsRelease(v: ProcessView, releaseDir: string, resolve: (p: string) => string = (p) => p): boolean {
  const paths: string[] = [];
  if (v.cwd) paths.push(v.cwd);
  if (v.exe) paths.push(v.exe.replace(/ \(deleted\)$/, ''));
  for (const f of v.files) if (f.startsWith('/')) paths.push(f);
  for (const a of v.args) {
    // An option like --config=/x/y names a path after '='.
    const arg = a.includes('=') && !a.startsWith('/') ? a.slice(a.indexOf('=') + 1) : a;
    if (arg.includes('/')) paths.push(path.resolve(v.cwd ?? '/', arg));
  }
  return paths.some((p) => isInside(p, releaseDir) || isInside(resolve(p), releaseDir));
}

/** undefined: gone; 'hidden': not ours to read (another user, hidepid). */
/**
 * Pure: is this process still the service's run script (`runFile`, resolved)? Its executable is
 * the run file, or its interpreter was given it (argv[0] or argv[1]), or holds it open (a shell
 * reading its script). `./run` is how a supervisor starts it, whatever directory it is in now.
 */
export function isRunScript(v: ProcessView, runFile: string, resolve: (p: string) => string = (p) => p): boolean {
  const same = (p: string | undefined) => p !== undefined && (p === runFile || resolve(p) === runFile);
  if (same(v.exe)) return true;
  for (const a of v.args.slice(0, 2)) if (a === './run' || same(path.resolve(v.cwd ?? '/', a))) return true;
  return v.files.some((f) => same(f));
}

function readView(pid: number): ProcessView | 'hidden' | undefined {
  let hidden = false;
  const link = (name: string) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/${name}`);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (name === 'cwd' && (code === 'EACCES' || code === 'EPERM')) hidden = true;
      return undefined;
    }
  };
  let args: string[];
  try {
    args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return undefined; // gone
  }
  const files: string[] = [];
  try {
    for (const fd of fs.readdirSync(`/proc/${pid}/fd`).slice(0, MAX_FDS)) {
      const t = link(`fd/${fd}`);
      if (t) files.push(t);
    }
  } catch {
    // not ours to read, or gone
  }
  const cwd = link('cwd');
  return hidden ? 'hidden' : { cwd, exe: link('exe'), args, files };
}

function realOrSame(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return p;
  }
}

/**
 * Does the process `pid`, or one of its descendants, run the release at `releaseDir`, or has `pid`
 * exec'd away from the service's run script `runFile`? Reads /proc.
 * undefined when the service's own process cannot be looked at (the updater runs as another user,
 * or /proc is mounted with hidepid): then nobody can tell, and the caller falls back to `it runs`.
 */
export function runsRelease(pid: number, releaseDir: string, runFile?: string): boolean | undefined {
  if (pid <= 0) return false;
  const root = realOrSame(releaseDir);
  const run = runFile !== undefined ? realOrSame(runFile) : undefined;
  const seen = new Set<number>();
  const queue = [pid];
  while (queue.length && seen.size < MAX_PROCESSES) {
    const p = queue.shift()!;
    if (seen.has(p)) continue;
    seen.add(p);
    const v = readView(p);
    if (v === 'hidden') {
      if (p === pid) return undefined;
      continue;
    }
    if (v && showsRelease(v, root, realOrSame)) return true;
    if (v && p === pid && run !== undefined && !isRunScript(v, run, realOrSame)) return true;
    queue.push(...childrenOf(p));
  }
  return false;
}
