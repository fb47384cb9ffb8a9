// `molt reexec [NEW_MOLT]`: ask PID 1 to re-execute (issue 15) through its
// request FIFO. Fire and forget: PID 1's log says whether it went through.
import fs from 'node:fs';
import path from 'node:path';
import { REQUEST_FIFO } from './reexec.js';

export async function main(argv: string[]): Promise<number> {
  if (argv.length > 1 || argv[0]?.startsWith('-')) {
    process.stderr.write('usage: molt reexec [NEW_MOLT]\n');
    return 2;
  }
  const target = argv[0] ? path.resolve(argv[0]) : '';
  const dir = process.env.MOLT_SERVICES || process.env.SVDIR || '/etc/service';
  const fifo = path.join(dir, REQUEST_FIFO);
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
  return 0;
}
