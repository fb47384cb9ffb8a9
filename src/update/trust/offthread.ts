// BLAKE2b-512 of a streaming artifact on another thread. minisign's default
// (prehashed) signature is over BLAKE2b-512 of the file: a second digest of
// every byte beside the download's SHA-256. On the download's thread it would
// add a third to the time of a 200 MB install; on a worker it runs beside the
// download on another core.
//
// The bytes cross over in a ring of 1 MiB slots in one SharedArrayBuffer:
// a message names a slot, the worker hashes it and names it back. A reader
// that asks for its read buffers here (readBuffer(), fileChunks' `buffer`)
// reads straight into a slot: nothing is copied or allocated per chunk. Any
// other chunk (a network body) is copied into a slot first; small chunks share
// one. Copying every chunk cost the download's thread some 30 ms per 200 MB, a
// fresh buffer per chunk some 50. When every slot is with the worker, the
// caller waits (bounded memory: 16 MiB, whatever the artifact's size).
import { Worker } from 'node:worker_threads';

export const SLOT_BYTES = 1024 * 1024;
/** Slots in the ring: 16 MiB in flight before the download waits. */
export const SLOTS = 16;

// A CommonJS script (eval workers are not modules): one hash, fed slot by slot in order, digested on 'end'.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const h = require('node:crypto').createHash('blake2b512');
const ring = new Uint8Array(workerData);
parentPort.on('message', (m) => {
  if (m === 'end') return parentPort.postMessage({ digest: h.digest() });
  h.update(ring.subarray(m.start, m.start + m.len));
  parentPort.postMessage(m.slot);
});
`;

export class OffThreadBlake2b {
  private readonly worker: Worker;
  private readonly ring = new SharedArrayBuffer(SLOTS * SLOT_BYTES);
  /** Slots neither with the worker, nor lent to a reader, nor being filled. */
  private readonly free: number[] = Array.from({ length: SLOTS }, (_, i) => SLOTS - 1 - i);
  /** The slot chunks are copied into (the copy path), and how far it is filled. */
  private filling: number | undefined;
  private fill = 0;
  /** Callers waiting for a slot to come back. */
  private waiters: Array<() => void> = [];
  private result: ((b: Buffer) => void) | undefined;
  private failure: Error | undefined;
  private fail: ((e: Error) => void) | undefined;
  private closed = false;

  constructor() {
    this.worker = new Worker(WORKER, { eval: true, workerData: this.ring });
    // Never what keeps the updater alive: an abandoned check must not hold the process.
    this.worker.unref();
    this.worker.on('message', (m: number | { digest: Uint8Array }) => {
      if (typeof m === 'number') {
        this.free.push(m);
        this.waiters.shift()?.();
      } else {
        this.result?.(Buffer.from(m.digest));
      }
    });
    this.worker.on('error', (e) => {
      this.failure = e;
      this.fail?.(e);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  private view(slot: number, length = SLOT_BYTES): Buffer {
    return Buffer.from(this.ring, slot * SLOT_BYTES, length);
  }

  private usable(): void {
    if (this.closed) throw new Error('OffThreadBlake2b: update after digest or close');
    if (this.failure) throw this.failure;
  }

  /** Resolves when a slot is back from the worker (or the worker failed: the caller's next step throws). */
  private slotBack(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /**
   * A 1 MiB buffer to read the next chunk into: hand the bytes read to update() as a view of it
   * (no copy). Waits while every slot is with the worker.
   */
  readBuffer(): Buffer | Promise<Buffer> {
    this.usable();
    const slot = this.free.pop();
    if (slot !== undefined) return this.view(slot);
    return this.slotBack().then(() => this.readBuffer());
  }

  /**
   * Hash `chunk` after everything handed over before it. A view of a readBuffer() buffer is posted as
   * it is; any other chunk is copied, and the caller may reuse it once this returns or, when it returns
   * a promise (every slot with the worker), once that settles.
   */
  update(chunk: Uint8Array): Promise<void> | undefined {
    this.usable();
    if (chunk.buffer === this.ring) {
      const slot = Math.floor(chunk.byteOffset / SLOT_BYTES);
      if (chunk.length > 0 && Math.floor((chunk.byteOffset + chunk.length - 1) / SLOT_BYTES) !== slot) throw new Error('internal: a chunk spans two slots');
      this.postFilling(); // what was copied before it goes first
      this.post(slot, chunk.byteOffset, chunk.length);
      return undefined;
    }
    return this.copyIn(chunk, 0);
  }

  private copyIn(chunk: Uint8Array, from: number): Promise<void> | undefined {
    for (let off = from; off < chunk.length; ) {
      if (this.filling === undefined) {
        const slot = this.free.pop();
        if (slot === undefined) {
          return this.slotBack().then(() => {
            this.usable();
            return this.copyIn(chunk, off);
          });
        }
        this.filling = slot;
        this.fill = 0;
      }
      const n = Math.min(SLOT_BYTES - this.fill, chunk.length - off);
      this.view(this.filling).set(chunk.subarray(off, off + n), this.fill);
      this.fill += n;
      off += n;
      if (this.fill === SLOT_BYTES) this.postFilling();
    }
    return undefined;
  }

  private postFilling(): void {
    if (this.filling === undefined) return;
    const slot = this.filling;
    this.filling = undefined;
    if (this.fill === 0) this.free.push(slot);
    else this.post(slot, slot * SLOT_BYTES, this.fill);
  }

  private post(slot: number, start: number, len: number): void {
    this.worker.postMessage({ slot, start, len });
  }

  /** The digest of everything handed over; the worker ends. */
  async digest(): Promise<Buffer> {
    this.usable();
    const out = new Promise<Buffer>((resolve, reject) => {
      this.result = resolve;
      this.fail = reject;
    });
    this.postFilling();
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
    for (const w of this.waiters.splice(0)) w();
    void this.worker.terminate();
  }
}
