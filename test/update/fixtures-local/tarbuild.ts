// Builds tar archives byte by byte for the extraction tests. Real tar tools
// refuse to write most hostile entries, so each hostile fixture is made here,
// in code, next to a comment that says which attack it stands for.
import zlib from 'node:zlib';

export interface RawEntry {
  name: string;
  /** typeflag: '0' file, '1' hardlink, '2' symlink, '3' char, '4' block, '5' dir, '6' FIFO, others raw. */
  type?: string;
  mode?: number;
  body?: Buffer | string;
  /** Declared size when it must differ from the body (size bombs, truncation). */
  size?: number;
  linkname?: string;
  uid?: number;
  /** pax records emitted in an 'x' header before this entry (path, linkpath, size...). */
  pax?: Record<string, string>;
  devmajor?: number;
}

function octal(buf: Buffer, off: number, len: number, value: number): void {
  buf.write(value.toString(8).padStart(len - 1, '0') + '\0', off, len, 'latin1');
}

function putString(buf: Buffer, off: number, len: number, s: string): void {
  const b = Buffer.from(s, 'utf8');
  if (b.length > len) throw new Error(`fixture: ${JSON.stringify(s)} does not fit in ${len} bytes (use pax)`);
  b.copy(buf, off);
}

/** One POSIX ustar header block with a correct checksum. */
export function header(e: { name: string; type: string; mode: number; size: number; linkname?: string; uid?: number; devmajor?: number }): Buffer {
  const b = Buffer.alloc(512);
  putString(b, 0, 100, e.name);
  octal(b, 100, 8, e.mode);
  octal(b, 108, 8, e.uid ?? 1234);
  octal(b, 116, 8, e.uid ?? 1234);
  if (e.size > 0o77777777777) {
    // GNU base-256 for sizes over 8 GiB.
    b[124] = 0x80;
    let v = e.size;
    for (let i = 135; i > 124; i--) {
      b[i] = v % 256;
      v = Math.floor(v / 256);
    }
  } else octal(b, 124, 12, e.size);
  octal(b, 136, 12, 1_700_000_000);
  b.write(e.type, 156, 1, 'latin1');
  putString(b, 157, 100, e.linkname ?? '');
  b.write('ustar\0', 257, 6, 'latin1');
  b.write('00', 263, 2, 'latin1');
  putString(b, 265, 32, 'someone');
  putString(b, 297, 32, 'somegroup');
  octal(b, 329, 8, e.devmajor ?? 0);
  octal(b, 337, 8, 0);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return b;
}

function pad(n: number): Buffer {
  return Buffer.alloc((512 - (n % 512)) % 512);
}

function paxBody(rec: Record<string, string>): Buffer {
  let s = '';
  for (const [k, v] of Object.entries(rec)) {
    const line = ` ${k}=${v}\n`;
    let len = Buffer.byteLength(line) + 1;
    while (Buffer.byteLength(String(len) + line) !== len) len++;
    s += String(len) + line;
  }
  return Buffer.from(s, 'utf8');
}

/** A whole archive; `end: false` leaves out the two zero blocks. */
export function tarBytes(entries: RawEntry[], opts: { end?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    if (e.pax) {
      const body = paxBody(e.pax);
      parts.push(header({ name: 'PaxHeader', type: 'x', mode: 0o644, size: body.length }), body, pad(body.length));
    }
    const body = e.body === undefined ? Buffer.alloc(0) : Buffer.from(e.body);
    const type = e.type ?? '0';
    const size = e.size ?? body.length;
    parts.push(header({ name: e.name, type, mode: e.mode ?? (type === '5' ? 0o755 : 0o644), size, linkname: e.linkname, uid: e.uid, devmajor: e.devmajor }));
    parts.push(body, pad(body.length));
  }
  if (opts.end !== false) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export function tgz(entries: RawEntry[], opts: { end?: boolean } = {}): Buffer {
  return zlib.gzipSync(tarBytes(entries, opts));
}
