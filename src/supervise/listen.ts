// Sockets molt binds once and lends to every start of a service as fds 3..,
// with systemd's socket-activation variables, so that connections wait in the
// kernel's backlog while the app restarts or updates instead of being refused.
// The `listen` file: one socket a line, `tcp HOST:PORT [NAME]`,
// `tcp6 [ADDR]:PORT [NAME]`, `unix PATH [MODE] [NAME]`; `#` starts a comment.
import fs from 'node:fs';
import net from 'node:net';
import { native } from '../common/native.js';

export type ListenSpec =
  | { kind: 'tcp'; host: string; port: number; name: string }
  | { kind: 'tcp6'; host: string; port: number; name: string }
  | { kind: 'unix'; path: string; mode?: number; name: string };

/** Parse a `listen` file; throws one line naming the bad line. Pure. */
export function parseListen(text: string): ListenSpec[] {
  const out: ListenSpec[] = [];
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) return;
    const where = `listen line ${i + 1} "${line}"`;
    const [kind, addr, ...rest] = line.split(/\s+/);
    if (kind === 'tcp' || kind === 'tcp6') {
      const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(addr ?? '');
      if (!m) throw new Error(`${where}: want ${kind} HOST:PORT`);
      const port = Number(m[3]);
      if (port < 1 || port > 65535) throw new Error(`${where}: port must be 1-65535`);
      const host = m[1] ?? m[2] ?? '';
      if (kind === 'tcp6' && host && net.isIP(host) !== 6) throw new Error(`${where}: tcp6 wants an IPv6 address in brackets`);
      if (rest.length > 1) throw new Error(`${where}: too many fields`);
      out.push({ kind, host: host || (kind === 'tcp6' ? '::' : '0.0.0.0'), port, name: rest[0] ?? `${kind}:${port}` });
    } else if (kind === 'unix') {
      if (!addr?.startsWith('/')) throw new Error(`${where}: want unix /ABSOLUTE/PATH [MODE] [NAME]`);
      if (Buffer.byteLength(addr) > 107) throw new Error(`${where}: path longer than 107 bytes`);
      let mode: number | undefined;
      let name: string | undefined;
      for (const f of rest) {
        if (mode === undefined && /^0?[0-7]{3}$/.test(f)) mode = parseInt(f, 8);
        else if (name === undefined) name = f;
        else throw new Error(`${where}: too many fields`);
      }
      out.push({ kind: 'unix', path: addr, mode, name: name ?? 'unix' });
    } else {
      throw new Error(`${where}: unknown kind "${kind}" (tcp, tcp6, unix)`);
    }
  });
  for (const s of out) {
    if (!/^[A-Za-z0-9._:-]{1,255}$/.test(s.name)) throw new Error(`listen: bad socket name "${s.name}" (letters, digits, . _ : -)`);
  }
  return out;
}

const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;

/** struct sockaddr_in / sockaddr_in6 / sockaddr_un as bytes. Pure. */
export function sockaddr(family: 'inet' | 'inet6' | 'unix', host: string, port: number): Buffer {
  if (family === 'unix') {
    const b = Buffer.alloc(110);
    b.writeUInt16LE(AF_UNIX, 0);
    b.write(host, 2);
    return b;
  }
  if (family === 'inet') {
    const b = Buffer.alloc(16);
    b.writeUInt16LE(AF_INET, 0);
    b.writeUInt16BE(port, 2);
    host.split('.').forEach((o, i) => b.writeUInt8(Number(o), 4 + i));
    return b;
  }
  const b = Buffer.alloc(28);
  b.writeUInt16LE(AF_INET6, 0);
  b.writeUInt16BE(port, 2);
  expandIPv6(host).copy(b, 8);
  return b;
}

function expandIPv6(host: string): Buffer {
  const out = Buffer.alloc(16);
  let text = host;
  let tail4: number[] = [];
  const v4 = /:(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    tail4 = v4[1]!.split('.').map(Number);
    text = text.slice(0, v4.index) + ':0:0';
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = rest !== undefined && rest !== '' ? rest.split(':') : [];
  const groups = rest === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g || '0', 16), i * 2));
  if (tail4.length) tail4.forEach((o, i) => (out[12 + i] = o));
  return out;
}

export interface BoundSocket {
  spec: ListenSpec;
  fd: number;
}

/** Bind every socket of a `listen` file; all or nothing (a failure closes the others). */
export async function bindAll(specs: ListenSpec[]): Promise<BoundSocket[]> {
  const bound: BoundSocket[] = [];
  try {
    for (const spec of specs) bound.push({ spec, fd: await bindOne(spec) });
  } catch (err) {
    closeAll(bound);
    throw err;
  }
  return bound;
}

async function bindOne(spec: ListenSpec): Promise<number> {
  const nat = native();
  const label = spec.kind === 'unix' ? `unix ${spec.path}` : `${spec.kind} ${spec.host}:${spec.port}`;
  try {
    if (spec.kind === 'unix') {
      // Replace a stale socket from an earlier run; never remove anything else.
      try {
        if (fs.lstatSync(spec.path).isSocket()) fs.unlinkSync(spec.path);
      } catch {
        // absent
      }
      const fd = nat.listenSocket(AF_UNIX, sockaddr('unix', spec.path, 0), false);
      if (spec.mode !== undefined) fs.chmodSync(spec.path, spec.mode);
      return fd;
    }
    let host = spec.host;
    const want = spec.kind === 'tcp6' ? 6 : 4;
    // dns is loaded only for a name: PID 1 starts without it (bench: exec → first service).
    if (net.isIP(host) !== want) host = (await (await import('node:dns/promises')).default.lookup(host, { family: want })).address;
    return want === 4 ? nat.listenSocket(AF_INET, sockaddr('inet', host, spec.port), true) : nat.listenSocket(AF_INET6, sockaddr('inet6', host, spec.port), true);
  } catch (err) {
    throw new Error(`cannot listen on ${label}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export function closeAll(bound: BoundSocket[]): void {
  for (const b of bound) {
    try {
      fs.closeSync(b.fd);
    } catch {
      // closed
    }
    if (b.spec.kind === 'unix') fs.rmSync(b.spec.path, { force: true });
  }
}

/** systemd's variables for a child that gets `bound` as fds 3.. (LISTEN_PID is set by the exec wrapper). */
export function listenEnv(bound: BoundSocket[]): Record<string, string> {
  return { LISTEN_FDS: String(bound.length), LISTEN_FDNAMES: bound.map((b) => b.spec.name).join(':') };
}
