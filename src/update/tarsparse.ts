// GNU sparse files in tar: the map of which byte ranges hold data (the rest are holes, read as
// zeros), in the three forms GNU tar writes: pax 1.0 (`--sparse --format=posix`, the map at the
// start of the body), pax 0.1 (the map in GNU.sparse.map) and the old GNU 'S' header (the map in
// the header and extension blocks). pax 0.0 (one record per range, which a pax map cannot keep)
// is refused by name. Every map is checked: ranges in order, inside the real size, and adding up
// to exactly the data stored.
import { PolicyError } from './archive-policy.js';

export interface SparseSegment {
  offset: number;
  size: number;
}
export interface SparseMap {
  realSize: number;
  segments: SparseSegment[];
}

/** Damaged sparse data: reported as a corrupt archive by the caller. */
export class SparseFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SparseFormatError';
  }
}

/** A map can list many ranges; each costs memory, so their number is bounded. */
export const MAX_SEGMENTS = 65_536;
const BLOCK = 512;

function num(s: string | undefined, what: string): number {
  if (s === undefined || !/^[0-9]{1,16}$/.test(s.trim())) throw new SparseFormatError(`bad GNU sparse ${what} ${JSON.stringify(s ?? '')}`);
  const v = Number(s.trim());
  if (!Number.isSafeInteger(v)) throw new SparseFormatError(`GNU sparse ${what} too large`);
  return v;
}

/** The sparse form announced by pax records, with what the records themselves say. */
export type PaxSparse =
  | { version: '1.0'; name?: string; realSize: number }
  | { version: '0.1'; name?: string; map: SparseMap };

export function paxSparse(pax: ReadonlyMap<string, string> | undefined): PaxSparse | undefined {
  if (!pax) return undefined;
  const keys = [...pax.keys()].filter((k) => k.startsWith('GNU.sparse.'));
  if (keys.length === 0) return undefined;
  const name = pax.get('GNU.sparse.name');
  if (pax.get('GNU.sparse.major') === '1' && pax.get('GNU.sparse.minor') === '0') {
    return { version: '1.0', name, realSize: num(pax.get('GNU.sparse.realsize'), 'real size') };
  }
  const map = pax.get('GNU.sparse.map');
  if (map !== undefined) {
    const realSize = num(pax.get('GNU.sparse.realsize') ?? pax.get('GNU.sparse.size'), 'real size');
    const parts = map === '' ? [] : map.split(',');
    if (parts.length % 2 !== 0) throw new SparseFormatError('GNU sparse map has an odd number of fields');
    if (parts.length / 2 > MAX_SEGMENTS) throw new PolicyError(`GNU sparse map of more than ${MAX_SEGMENTS} ranges`);
    const segments: SparseSegment[] = [];
    for (let i = 0; i < parts.length; i += 2) segments.push({ offset: num(parts[i], 'offset'), size: num(parts[i + 1], 'size') });
    return { version: '0.1', name, map: { realSize, segments } };
  }
  throw new PolicyError('GNU sparse format 0.0 is not supported (re-create the archive with GNU tar --sparse-version=1.0, or without --sparse)');
}

/** The next bytes of the entry body, for the 1.0 map reader (valid until the next call). */
export type ReadBlock = () => Promise<Buffer>;

/**
 * The pax 1.0 map at the start of the body: decimal lines "count\n" then "offset\nsize\n" per
 * range, padded to a block. Returns the map and how many body bytes it took.
 */
export async function readSparse10Map(readBlock: ReadBlock, realSize: number, bodySize: number): Promise<{ map: SparseMap; consumed: number }> {
  let text = '';
  let consumed = 0;
  const values: number[] = [];
  let count: number | undefined;
  while (count === undefined || values.length < 1 + 2 * count) {
    if (consumed + BLOCK > bodySize) throw new SparseFormatError('GNU sparse map runs past the entry');
    text += (await readBlock()).toString('latin1');
    consumed += BLOCK;
    let nl: number;
    while ((nl = text.indexOf('\n')) !== -1 && (count === undefined || values.length < 1 + 2 * count)) {
      values.push(num(text.slice(0, nl), 'map field'));
      text = text.slice(nl + 1);
      if (values.length === 1) {
        count = values[0]!;
        if (count > MAX_SEGMENTS) throw new PolicyError(`GNU sparse map of more than ${MAX_SEGMENTS} ranges`);
      }
    }
    const complete = count !== undefined && values.length >= 1 + 2 * count;
    // An unfinished field longer than any number is not a map (the rest of the last block is padding).
    if (!complete && text.length > 32) throw new SparseFormatError('bad GNU sparse map field');
  }
  const segments: SparseSegment[] = [];
  for (let i = 1; i < values.length; i += 2) segments.push({ offset: values[i]!, size: values[i + 1]! });
  return { map: { realSize, segments }, consumed };
}

function octalField(buf: Buffer, off: number, len: number, what: string): number {
  const s = buf.toString('latin1', off, off + len).replace(/[\0 ]+$/, '').replace(/^ +/, '');
  if (s === '') return 0;
  if (!/^[0-7]{1,16}$/.test(s)) throw new SparseFormatError(`bad GNU sparse ${what} in the header`);
  return parseInt(s, 8);
}

function readRanges(buf: Buffer, off: number, n: number, into: SparseSegment[]): void {
  for (let i = 0; i < n; i++) {
    const at = off + i * 24;
    const offset = octalField(buf, at, 12, 'offset');
    const size = octalField(buf, at + 12, 12, 'size');
    if (offset === 0 && size === 0 && buf[at] === 0) continue; // unused slot
    if (into.length >= MAX_SEGMENTS) throw new PolicyError(`GNU sparse map of more than ${MAX_SEGMENTS} ranges`);
    into.push({ offset, size });
  }
}

/** The old GNU 'S' header: 4 ranges at 386, "more follow" at 482, real size at 483; then 21 ranges a block. */
export async function readOldGnuMap(header: Buffer, readBlock: ReadBlock): Promise<SparseMap> {
  const segments: SparseSegment[] = [];
  readRanges(header, 386, 4, segments);
  const realSize = octalField(header, 483, 12, 'real size');
  let more = header[482] !== 0;
  while (more) {
    const ext = Buffer.from(await readBlock());
    readRanges(ext, 0, 21, segments);
    more = ext[504] !== 0;
  }
  return { realSize, segments };
}

/** Ranges in order, not overlapping, inside the real size, and holding exactly `stored` bytes. */
export function checkSparseMap(map: SparseMap, stored: number): void {
  let end = 0;
  let sum = 0;
  for (const s of map.segments) {
    if (s.offset < end) throw new SparseFormatError('GNU sparse ranges overlap or are out of order');
    end = s.offset + s.size;
    if (end > map.realSize) throw new SparseFormatError(`GNU sparse range ends at ${end}, past the real size ${map.realSize}`);
    sum += s.size;
  }
  if (sum !== stored) throw new SparseFormatError(`GNU sparse map lists ${sum} bytes of data but the entry stores ${stored}`);
}
