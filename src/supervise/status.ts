// runit's supervise/ formats as pure functions: the 20-byte `status` file
// (daemontools-compatible), the human `stat` line, and the `sv status` line.
// Byte layout: 0-7 TAI64 seconds BE (2^62 + 10 + unix seconds), 8-11 nanoseconds BE,
// 12-15 pid little-endian, 16 paused, 17 want 'u'|'d', 18 got TERM, 19 state.

export type RunState = 'down' | 'run' | 'finish';
export const stateCode: Record<RunState, number> = { down: 0, run: 1, finish: 2 };
const codeState: RunState[] = ['down', 'run', 'finish'];

export interface SuperviseStatus {
  /** Wall-clock time of the last state change, in milliseconds since the epoch. */
  stampMs: number;
  pid: number;
  paused: boolean;
  /** runsv writes 'd' for both "want down" and "want exit". */
  want: 'up' | 'down' | 'exit';
  gotTerm: boolean;
  state: RunState;
}

const TAI_OFFSET = 4611686018427387914n; // 2^62 + 10

export function encodeStatus(s: SuperviseStatus): Buffer {
  const b = Buffer.alloc(20);
  const sec = Math.floor(s.stampMs / 1000);
  const nano = Math.floor((s.stampMs - sec * 1000) * 1e6);
  b.writeBigUInt64BE(TAI_OFFSET + BigInt(sec), 0);
  b.writeUInt32BE(nano, 8);
  b.writeUInt32LE(s.pid >>> 0, 12);
  b[16] = s.paused ? 1 : 0;
  b[17] = s.want === 'up' ? 0x75 : 0x64;
  b[18] = s.gotTerm ? 1 : 0;
  b[19] = stateCode[s.state];
  return b;
}

export function decodeStatus(b: Uint8Array): SuperviseStatus {
  if (b.length !== 20) throw new Error(`bad status size ${b.length}, want 20`);
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const sec = buf.readBigUInt64BE(0) - TAI_OFFSET;
  const nano = buf.readUInt32BE(8);
  const stateByte = buf[19] ?? 0;
  return {
    stampMs: Number(sec) * 1000 + Math.floor(nano / 1e6),
    pid: buf.readUInt32LE(12),
    paused: buf[16] !== 0,
    want: buf[17] === 0x75 ? 'up' : 'down',
    gotTerm: buf[18] !== 0,
    state: codeState[stateByte] ?? 'down',
  };
}

/** The `supervise/stat` line, as runsv writes it (newline included). */
export function formatStat(s: SuperviseStatus): string {
  let line = s.state;
  if (s.paused) line += ', paused';
  if (s.gotTerm) line += ', got TERM';
  if (s.state !== 'down') {
    if (s.want === 'down') line += ', want down';
    else if (s.want === 'exit') line += ', want exit';
  }
  return line + '\n';
}

/** The `supervise/pid` content: the pid and a newline, empty when down. */
export function formatPid(pid: number): string {
  return pid ? `${pid}\n` : '';
}

/**
 * One service's part of an `sv status` line (without the prefix `ok: ` etc.),
 * e.g. `run: /etc/service/app: (pid 12) 3s, normally down`.
 * `normallyUp` is "no `down` file". Seconds are whole seconds since the stamp.
 */
export function formatSvStatus(name: string, s: SuperviseStatus, normallyUp: boolean, nowMs: number): string {
  const nowSec = Math.floor(nowMs / 1000);
  const stampSec = Math.floor(s.stampMs / 1000);
  const age = nowSec < stampSec ? 0 : nowSec - stampSec;
  let line = `${s.state}: ${name}: `;
  if (s.state !== 'down') line += `(pid ${s.pid}) `;
  line += `${age}s`;
  const pid = s.pid;
  if (pid && !normallyUp) line += ', normally down';
  if (!pid && normallyUp) line += ', normally up';
  if (pid && s.paused) line += ', paused';
  if (!pid && s.want === 'up') line += ', want up';
  if (pid && s.want !== 'up') line += ', want down';
  if (pid && s.gotTerm) line += ', got TERM';
  return line;
}
