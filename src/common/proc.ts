// Reading the process tree from /proc: our direct children (every thread's
// `children` file) and all descendants, for reaping and for the final kill.
import fs from 'node:fs';

/** The direct children of `pid` (every thread's `children` file); a thread that cannot be read is skipped. */
export function childrenOf(pid: number | 'self'): number[] {
  const out: number[] = [];
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    let text: string;
    try {
      text = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'latin1');
    } catch {
      continue;
    }
    for (const part of text.split(' ')) {
      const n = Number(part);
      if (n > 0) out.push(n);
    }
  }
  return out;
}

export function childrenOfSelf(): number[] {
  return childrenOf('self');
}

/** Every descendant of this process (breadth first). */
export function descendantsOfSelf(): number[] {
  const seen = new Set<number>();
  const queue = childrenOf('self');
  while (queue.length) {
    const pid = queue.shift()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    for (const c of childrenOf(pid)) queue.push(c);
  }
  return [...seen];
}

/** The state letter of `pid` from /proc/PID/stat (R, S, T, Z, ...); undefined when it is gone. */
export function procState(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}
