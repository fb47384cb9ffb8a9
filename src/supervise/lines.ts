// Splits a byte stream into lines for the `[name] ` prefix. Bytes pass through
// untouched (invalid UTF-8 stays as it was); a line longer than maxLine is cut
// into pieces so memory stays bounded whatever a service prints.

export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingLen = 0;

  constructor(
    private readonly emit: (line: Buffer) => void,
    private readonly maxLine = 64 * 1024,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl === -1 ? chunk.length : nl;
      let piece = chunk.subarray(start, end);
      // Cut over-long lines into maxLine pieces.
      while (this.pendingLen + piece.length > this.maxLine) {
        const take = this.maxLine - this.pendingLen;
        this.pending.push(piece.subarray(0, take));
        this.pendingLen += take;
        this.flushPending();
        piece = piece.subarray(take);
      }
      if (piece.length) {
        this.pending.push(piece);
        this.pendingLen += piece.length;
      }
      if (nl === -1) break;
      this.flushPending(true);
      start = nl + 1;
    }
  }

  /** Emit a trailing partial line (the stream ended). */
  end(): void {
    if (this.pendingLen) this.flushPending();
  }

  private flushPending(force = false): void {
    if (!this.pendingLen && !force) return;
    const line = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingLen);
    this.pending = [];
    this.pendingLen = 0;
    this.emit(line);
  }
}

export function prefixed(prefix: Buffer, line: Buffer): Buffer {
  return Buffer.concat([prefix, line, Buffer.from('\n')]);
}
