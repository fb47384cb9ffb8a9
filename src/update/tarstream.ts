// A strict, streaming tar reader (ustar, pax, GNU long names). molt reads tar
// itself rather than through node-tar's extractor so that every header passes
// one policy before a byte is written, and so that damage is an error, never a
// silently skipped entry: a bad checksum, a cut body or a missing end-of-archive
// marker all throw.
import { UpdateError } from './types.js';
import { checkSparseMap, paxSparse, readOldGnuMap, readSparse10Map, SparseFormatError, type SparseMap, type SparseSegment } from './tarsparse.js';

export type TarType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'other';

export interface TarEntry {
  /** Path as stored (after pax / GNU long-name overrides), not yet normalised. */
  name: string;
  type: TarType;
  /** The raw typeflag, for messages about unsupported types. */
  typeflag: string;
  mode: number;
  /** Body size in bytes (0 for everything but files). */
  size: number;
  /** Link target for symlinks and hardlinks. */
  linkname: string;
  /** A GNU sparse file: `size` is its real size, the body yields the data of these ranges in order. */
  sparse?: SparseSegment[];
}

/** Damaged input: not an attack, but not a valid archive either. */
export class TarFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TarFormatError';
  }
}

const BLOCK = 512;
/** pax and GNU long-name bodies are held in memory: bound them. */
const MAX_META = 1024 * 1024;
/** Trailing bytes read after the end marker (lets gzip check its CRC; record padding is < 10 KiB). */
const MAX_TRAILER = 1024 * 1024;

function cstring(buf: Buffer, off: number, len: number): string {
  const end = buf.indexOf(0, off);
  return buf.toString('utf8', off, end === -1 || end > off + len ? off + len : end);
}

/** Octal (NUL/space padded) or GNU base-256; negative or unsafe values are refused. */
export function decodeNumber(buf: Buffer, off: number, len: number, field: string): number {
  const first = buf[off] ?? 0;
  if (first & 0x80) {
    if (first === 0xff) throw new TarFormatError(`negative ${field} in tar header`);
    let v = first & 0x7f;
    for (let i = 1; i < len; i++) {
      v = v * 256 + (buf[off + i] ?? 0);
      if (!Number.isSafeInteger(v)) throw new TarFormatError(`${field} too large in tar header`);
    }
    return v;
  }
  const s = buf.toString('latin1', off, off + len).replace(/[\0 ]+$/, '').replace(/^ +/, '');
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarFormatError(`bad ${field} ${JSON.stringify(s)} in tar header`);
  const v = parseInt(s, 8);
  if (!Number.isSafeInteger(v)) throw new TarFormatError(`${field} too large in tar header`);
  return v;
}

export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

/** Checksum as POSIX defines it (unsigned), also accepting the historic signed sum. */
export function checksumOk(block: Buffer): boolean {
  const stored = decodeNumber(block, 148, 8, 'checksum');
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : (block[i] as number);
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

interface RawHeader {
  name: string;
  mode: number;
  size: number;
  typeflag: string;
  linkname: string;
}

/** Decode one 512-byte header block (not a zero block). */
export function decodeHeader(block: Buffer): RawHeader {
  if (!checksumOk(block)) throw new TarFormatError('tar header checksum mismatch');
  const typeflag = String.fromCharCode(block[156] ?? 0).replace('\0', '');
  let name = cstring(block, 0, 100);
  const magic = block.toString('latin1', 257, 263);
  // POSIX ustar keeps a path prefix at 345; GNU ("ustar  ") keeps other fields there.
  if (magic === 'ustar\0') {
    const prefix = cstring(block, 345, 155);
    if (prefix) name = prefix + '/' + name;
  }
  return {
    name,
    mode: decodeNumber(block, 100, 8, 'mode'),
    size: decodeNumber(block, 124, 12, 'size'),
    typeflag,
    linkname: cstring(block, 157, 100),
  };
}

/** Parse pax extended-header records ("<len> <key>=<value>\n"); malformed records throw. */
export function parsePax(body: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let off = 0;
  while (off < body.length) {
    if (body[off] === 0) break; // NUL padding after the last record
    const sp = body.indexOf(0x20, off);
    if (sp === -1 || sp - off > 20) throw new TarFormatError('malformed pax header');
    const lenStr = body.toString('latin1', off, sp);
    if (!/^[0-9]+$/.test(lenStr)) throw new TarFormatError('malformed pax header length');
    const len = parseInt(lenStr, 10);
    if (len <= sp - off + 1 || off + len > body.length || body[off + len - 1] !== 0x0a) {
      throw new TarFormatError('malformed pax record');
    }
    const rec = body.toString('utf8', sp + 1, off + len - 1);
    const eq = rec.indexOf('=');
    if (eq <= 0) throw new TarFormatError('malformed pax record');
    out.set(rec.slice(0, eq), rec.slice(eq + 1));
    off += len;
  }
  return out;
}

function typeOf(flag: string): TarType {
  switch (flag) {
    case '':
    case '0':
    case '7':
      return 'file';
    case '1':
      return 'hardlink';
    case '2':
      return 'symlink';
    case '3':
      return 'char';
    case '4':
      return 'block';
    case '5':
      return 'dir';
    case '6':
      return 'fifo';
    default:
      return 'other';
  }
}

/**
 * Pulls exact byte counts out of an async chunk stream. The stream may reuse one buffer for
 * every chunk (extract.ts does): a chunk is only used until the next is pulled, and the few
 * bytes that must outlive that (a header split across two chunks) are copied first.
 */
export class ByteSource {
  /** The unread rest of the current chunk (a view of it). */
  private buf: Buffer = Buffer.alloc(0);
  private done = false;
  /** Bytes handed out so far (for messages). */
  position = 0;
  constructor(private readonly it: AsyncIterator<Buffer>) {}

  private async pull(): Promise<boolean> {
    if (this.done) return false;
    const r = await this.it.next();
    if (r.done) {
      this.done = true;
      this.buf = Buffer.alloc(0);
      return false;
    }
    this.buf = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    return true;
  }

  /**
   * Exactly n bytes; null at a clean end of input; throws when input ends part-way. The
   * result is valid until the next call (it may be a view of the current chunk).
   */
  async readExact(n: number): Promise<Buffer | null> {
    if (this.buf.length === 0 && n > 0 && !(await this.pull())) return null;
    if (this.buf.length >= n) {
      const out = this.buf.subarray(0, n);
      this.buf = this.buf.subarray(n);
      this.position += n;
      return out;
    }
    // Split across chunks: gather a copy before the next chunk replaces this one.
    const out = Buffer.allocUnsafe(n);
    let have = 0;
    while (have < n) {
      if (this.buf.length === 0 && !(await this.pull())) {
        throw new TarFormatError(`unexpected end of archive (needed ${n} bytes, got ${have})`);
      }
      const take = Math.min(n - have, this.buf.length);
      this.buf.copy(out, have, 0, take);
      this.buf = this.buf.subarray(take);
      have += take;
    }
    this.position += n;
    return out;
  }

  /** Yields exactly n bytes in chunks as they arrive (views, each valid until the next); throws when input ends early. */
  async *stream(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0 && !(await this.pull())) {
        throw new TarFormatError(`unexpected end of archive (${left} bytes of the body missing)`);
      }
      const take = Math.min(left, this.buf.length);
      const out = this.buf.subarray(0, take);
      this.buf = this.buf.subarray(take);
      this.position += take;
      left -= take;
      yield out;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.stream(n)) {
      // discard
    }
  }

  /** Reads and discards up to max more bytes (surfacing decompressor errors); false if more remained. */
  async drain(max: number): Promise<boolean> {
    let seen = this.buf.length;
    this.buf = Buffer.alloc(0);
    while (seen <= max) {
      if (!(await this.pull())) return true;
      seen += this.buf.length;
      this.buf = Buffer.alloc(0);
    }
    return false;
  }
}

export interface ReadTarHooks {
  /**
   * Called once per file-system entry, in archive order. For a 'file' entry the
   * handler must consume `body` completely (or throw); other types have no body.
   */
  onEntry(entry: TarEntry, body: AsyncIterable<Buffer>): Promise<void>;
}

/**
 * Walk a decompressed tar stream. Throws TarFormatError on damage; whatever the
 * handler throws propagates unchanged (a refusal stops the walk at once).
 */
export async function readTar(chunks: AsyncIterable<Buffer>, hooks: ReadTarHooks): Promise<{ trailerComplete: boolean }> {
  const src = new ByteSource(chunks[Symbol.asyncIterator]());
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax: Map<string, string> | undefined;
  let metaRun = 0;
  let last = '';
  const where = () => (last ? ` after entry ${JSON.stringify(last)}` : '');
  try {
    for (;;) {
      const block = await src.readExact(BLOCK);
      if (block === null) throw new TarFormatError('archive ends without an end-of-archive marker');
      if (isZeroBlock(block)) {
        if (longName !== undefined || longLink !== undefined || pax !== undefined) {
          throw new TarFormatError('archive ends inside an extended header');
        }
        // The second zero block, record padding and a gzip trailer follow; read a bounded amount.
        return { trailerComplete: await src.drain(MAX_TRAILER) };
      }
      const h = decodeHeader(block);
      if (h.typeflag === 'x' || h.typeflag === 'L' || h.typeflag === 'K' || h.typeflag === 'g') {
        if (++metaRun > 8) throw new TarFormatError('too many extended headers in a row');
        if (h.size > MAX_META) throw new TarFormatError(`extended header of ${h.size} bytes is too large`);
        const body = h.size === 0 ? Buffer.alloc(0) : await src.readExact(h.size);
        if (body === null) throw new TarFormatError('archive ends inside an extended header');
        const copy = Buffer.from(body); // the chunk it may be a view of is about to be reused
        await src.skip((BLOCK - (h.size % BLOCK)) % BLOCK);
        if (h.typeflag === 'x') pax = parsePax(copy);
        else if (h.typeflag === 'L') longName = cstring(copy, 0, copy.length);
        else if (h.typeflag === 'K') longLink = cstring(copy, 0, copy.length);
        // 'g' (global pax, e.g. git archive's commit id) carries nothing molt uses.
        continue;
      }
      metaRun = 0;
      let size = h.size;
      const paxSize = pax?.get('size');
      if (paxSize !== undefined) {
        if (!/^[0-9]+$/.test(paxSize) || !Number.isSafeInteger(Number(paxSize))) throw new TarFormatError('bad pax size');
        size = Number(paxSize);
      }
      const readBlock = async () => (await src.readExact(BLOCK)) ?? Buffer.alloc(0);
      const sp = paxSparse(pax);
      let sparse: SparseMap | undefined;
      let mapBytes = 0; // body bytes taken by a pax 1.0 map
      if (h.typeflag === 'S') sparse = await readOldGnuMap(block, readBlock);
      const type = h.typeflag === 'S' ? 'file' : typeOf(h.typeflag);
      if (sp && type === 'file') {
        if (sp.version === '0.1') sparse = sp.map;
        else {
          const r = await readSparse10Map(readBlock, sp.realSize, size);
          sparse = r.map;
          mapBytes = r.consumed;
        }
      }
      if (sparse) checkSparseMap(sparse, size - mapBytes);
      const entry: TarEntry = {
        name: sp?.name ?? pax?.get('path') ?? longName ?? h.name,
        type,
        typeflag: h.typeflag,
        mode: h.mode,
        // Links and directories have no body whatever the size field says (POSIX).
        size: type !== 'file' ? 0 : sparse ? sparse.realSize : size,
        linkname: pax?.get('linkpath') ?? longLink ?? h.linkname,
        ...(sparse ? { sparse: sparse.segments } : {}),
      };
      // Data that follows a non-file header (e.g. an 'S' sparse map) must still be skipped.
      const dataBlocks = type === 'dir' || type === 'symlink' || type === 'hardlink' ? 0 : size;
      pax = undefined;
      longName = undefined;
      longLink = undefined;
      last = entry.name;
      if (entry.name === '') throw new TarFormatError('tar entry without a name');
      let consumed = mapBytes;
      const body =
        type === 'file'
          ? (async function* () {
              for await (const c of src.stream(size - mapBytes)) {
                consumed += c.length;
                yield c;
              }
            })()
          : (async function* () {})();
      await hooks.onEntry(entry, body);
      if (type === 'file' && consumed !== size) {
        await src.skip(size - consumed);
      } else if (type !== 'file' && dataBlocks > 0) {
        await src.skip(dataBlocks);
      }
      const pad = (BLOCK - ((type === 'file' ? size : dataBlocks) % BLOCK)) % BLOCK;
      await src.skip(pad);
    }
  } catch (err) {
    if (err instanceof TarFormatError || err instanceof SparseFormatError) throw new TarFormatError(err.message + where());
    throw err;
  }
}

/** Map a TarFormatError (or a decompressor error) to the error users see. */
export function damagedArchive(file: string, err: unknown): UpdateError {
  const msg = (err as Error).message ?? String(err);
  return new UpdateError(`corrupt archive ${file}: ${msg}`, 'integrity');
}
