// stdout buffered and flushed where runit's sv flushes, stderr written at
// once, so that interleaving (2>&1) matches sv's too. Write errors are
// ignored, as sv ignores them.
import fs from 'node:fs';

function writeAll(fd: number, text: string): void {
  let buf = Buffer.from(text);
  // A bounded number of retries for a non-blocking descriptor that is full.
  for (let tries = 0; buf.length > 0 && tries < 1000; tries++) {
    try {
      const n = fs.writeSync(fd, buf);
      buf = buf.subarray(n);
    } catch (err) {
      if ((err as { code?: string }).code !== 'EAGAIN') return;
    }
  }
}

export class Output {
  private pending = '';

  puts(text: string): void {
    this.pending += text;
  }

  flush(text = ''): void {
    this.pending += text;
    if (this.pending) writeAll(1, this.pending);
    this.pending = '';
  }

  error(text: string): void {
    writeAll(2, text);
  }
}
