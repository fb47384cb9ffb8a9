// `molt reexec [--wait] [NEW_MOLT]`: ask PID 1 to re-execute (issue 15) through
// its request FIFO (one line: the new molt's path, or empty). Without --wait,
// fire and forget: PID 1's log says whether it went through. With --wait, the
// answer PID 1 (the old molt when it refuses or fails, the new one once it has
// adopted) writes to MOLT_SERVICES/.molt-reexec.answer is printed: exit 0 when
// re-executed, 1 when refused or failed (nothing changed) or no answer came.
import fs from 'node:fs';
import path from 'node:path';
import { ANSWER_FILE, REQUEST_FIFO } from './reexec.js';

const WAIT_MS = 120_000;

/** Identity of the answer file: a new answer is a new file (written by rename). */
function answerId(file: string): string {
  try {
    const st = fs.statSync(file, { bigint: true });
    return `${st.ino}:${st.ctimeNs}`;
  } catch {
    return '';
  }
}

export async function main(argv: string[]): Promise<number> {
  const wait = argv[0] === '--wait';
  const args = wait ? argv.slice(1) : argv;
  if (args.length > 1 || args[0]?.startsWith('-')) {
    process.stderr.write('usage: molt reexec [--wait] [NEW_MOLT]\n');
    return 2;
  }
  const target = args[0] ? path.resolve(args[0]) : '';
  const dir = process.env.MOLT_SERVICES || process.env.SVDIR || '/etc/service';
  const fifo = path.join(dir, REQUEST_FIFO);
  const answer = path.join(dir, ANSWER_FILE);
  const before = answerId(answer);
  let fd: number;
  try {
    fd = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    process.stderr.write(`molt reexec: ${code === 'ENXIO' || code === 'ENOENT' ? `molt init is not listening on ${fifo}` : (err as Error).message}\n`);
    return 1;
  }
  try {
    fs.writeSync(fd, `${target}\n`);
  } finally {
    fs.closeSync(fd);
  }
  if (!wait) return 0;
  for (const end = Date.now() + WAIT_MS; Date.now() < end; ) {
    await new Promise((r) => setTimeout(r, 10));
    if (answerId(answer) === before) continue;
    let line: string;
    try {
      line = fs.readFileSync(answer, 'utf8').trim();
    } catch {
      continue;
    }
    if (line.startsWith('re-executed')) {
      process.stdout.write(`molt reexec: ${line}\n`);
      return 0;
    }
    process.stderr.write(`molt reexec: ${line}\n`);
    return 1;
  }
  process.stderr.write(`molt reexec: no answer from PID 1 within ${WAIT_MS / 1000} s (see its log)\n`);
  return 1;
}
