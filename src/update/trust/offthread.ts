// BLAKE2b-512 of a streaming artifact on another thread. minisign's default
// (prehashed) signature is over BLAKE2b-512 of the file: a second digest of
// every byte beside the download's SHA-256. On the download's thread it would
// add a third to the time of a 200 MB install; on a worker it runs beside the
// download on another core. Each chunk is copied (the caller reuses its
// buffer) and handed over without a second copy; past HIGH_WATER bytes in
// flight, update() returns a promise the download awaits (bounded memory).
import { Worker } from 'node:worker_threads';

const HIGH_WATER = 16 * 1024 * 1024;

// A CommonJS script (eval workers are not modules): one hash, fed in order, digested on 'end'.
const WORKER = `
const { parentPort } = require('node:worker_threads');
const h = require('node:crypto').createHash('blake2b512');
parentPort.on('message', (m) => {
  if (m === 'end') parentPort.postMessage(h.digest());
  else { h.update(m); parentPort.postMessage(m.byteLength); }
});
`;

export class OffThreadBlake2b {
  private readonly worker: Worker;
  private inFlight = 0;
  private waiting: (() => void) | undefined;
  private result: ((b: Buffer) => void) | undefined;
  private failure: Error | undefined;
  private fail: ((e: Error) => void) | undefined;
  private closed = false;

  constructor() {
    this.worker = new Worker(WORKER, { eval: true });
    // Never what keeps the updater alive: an abandoned check must not hold the process.
    this.worker.unref();
    this.worker.on('message', (m: number | Uint8Array) => {
      if (typeof m === 'number') {
        this.inFlight -= m;
        if (this.waiting && this.inFlight <= HIGH_WATER / 2) {
          const w = this.waiting;
          this.waiting = undefined;
          w();
        }
      } else {
        this.result?.(Buffer.from(m));
      }
    });
    this.worker.on('error', (e) => {
      this.failure = e;
      this.fail?.(e);
      this.waiting?.();
    });
  }

  /** Hand over a copy of `chunk`; a promise when the worker is behind by more than HIGH_WATER. */
  update(chunk: Uint8Array): Promise<void> | undefined {
    if (this.closed) throw new Error('OffThreadBlake2b: update after digest or close');
    if (this.failure) throw this.failure;
    const copy = new Uint8Array(chunk); // its own ArrayBuffer: transferred, never shared
    this.inFlight += copy.byteLength;
    this.worker.postMessage(copy, [copy.buffer]);
    if (this.inFlight <= HIGH_WATER) return undefined;
    return new Promise((resolve) => (this.waiting = resolve));
  }

  /** The digest of everything handed over; the worker ends. */
  async digest(): Promise<Buffer> {
    if (this.failure) throw this.failure;
    const out = new Promise<Buffer>((resolve, reject) => {
      this.result = resolve;
      this.fail = reject;
    });
    this.worker.postMessage('end');
    try {
      return await out;
    } finally {
      this.close();
    }
  }

  /** End the worker (a download that failed midway); idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    void this.worker.terminate();
  }
}
