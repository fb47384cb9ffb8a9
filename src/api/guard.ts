// Connection limits of the API's listeners, against a slowloris (connections that open
// and never finish their headers). Node alone refuses every newcomer once maxConnections
// are open, and checks headersTimeout only every connectionsCheckingInterval (30 s), so
// ~128 half-open sockets locked out token holders, webhooks and the page. Here: a header
// deadline timed per socket, at most `perClient` connections per remote address and
// `total` in all, and when full the oldest connection not being answered is dropped
// rather than the newcomer.
import type http from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { logger } from '../common/log.js';

const log = logger('api');

/** waiting: no request headers yet (fresh, or idle between keep-alive requests);
 *  receiving: headers done, body still arriving; answering: the handler has it all. */
export type ConnPhase = 'waiting' | 'receiving' | 'answering';

export interface ConnView {
  id: number;
  client: string;
  phase: ConnPhase;
  /** Monotonic ms at which the connection entered its phase. */
  since: number;
}

export interface ConnLimits {
  perClient: number;
  total: number;
}

export type Admission = { accept: true; evict: number[] } | { accept: false; reason: string };

/** A connection being answered is never dropped; of the others, waiting ones go first, oldest first. */
function oldestDroppable(conns: readonly ConnView[], skip: readonly number[]): ConnView | undefined {
  const rank = (c: ConnView) => (c.phase === 'waiting' ? 0 : 1);
  let best: ConnView | undefined;
  for (const c of conns) {
    if (c.phase === 'answering' || skip.includes(c.id)) continue;
    if (!best || rank(c) < rank(best) || (rank(c) === rank(best) && c.since < best.since)) best = c;
  }
  return best;
}

/** Admit a new connection from `client`: which open ones to drop for it, or refuse it
 *  when every connection in its way is being answered. Pure. */
export function admit(conns: readonly ConnView[], client: string, limits: ConnLimits): Admission {
  const evict: number[] = [];
  const mine = conns.filter((c) => c.client === client);
  if (mine.length >= limits.perClient) {
    const victim = oldestDroppable(mine, evict);
    if (!victim) return { accept: false, reason: `${limits.perClient} connections from ${client} are being answered` };
    evict.push(victim.id);
  }
  if (conns.length - evict.length >= limits.total) {
    const victim = oldestDroppable(conns, evict);
    if (!victim) return { accept: false, reason: `${limits.total} connections are being answered` };
    evict.push(victim.id);
  }
  return { accept: true, evict };
}

/** The key a remote address is counted under: IPv4 as is (also when IPv4-mapped), IPv6 by
 *  its /64 (one host usually owns a whole /64), no address (a Unix socket) as "local". */
export function clientKey(address: string | undefined): string {
  if (!address) return 'local';
  const a = address.toLowerCase().replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (mapped) return mapped[1]!;
  if (!a.includes(':')) return a;
  const [head = '', tail] = a.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => (parseInt(g, 16) || 0).toString(16))
    .join(':')}::/64`;
}

export interface GuardOptions extends ConnLimits {
  /** From the moment a connection waits for a request until its headers are complete. */
  headersTimeoutMs: number;
}

interface Conn {
  id: number;
  client: string;
  socket: Socket;
  inflight: Set<IncomingMessage>;
  since: number;
  deadline?: NodeJS.Timeout;
}

const TIMEOUT_ANSWER = 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';
const DROP_LOG_EVERY_MS = 10_000;

/** Watch every connection of `server`; returns how many are open (for tests and close). */
export function guardConnections(server: http.Server, opts: GuardOptions): { open(): number } {
  const conns = new Map<Socket, Conn>();
  let nextId = 1;
  let dropped = 0;
  let lastLog = -Infinity;

  const noteDrop = (reason: string) => {
    dropped++;
    const now = performance.now();
    // Under attack this happens per connection: one line per interval, with the count.
    if (now - lastLog < DROP_LOG_EVERY_MS) return;
    log.warn('connections dropped', { count: dropped, reason });
    lastLog = now;
    dropped = 0;
  };

  const phaseOf = (c: Conn): ConnPhase => {
    if (c.inflight.size === 0) return 'waiting';
    for (const r of c.inflight) if (!r.complete) return 'receiving';
    return 'answering';
  };

  const startWaiting = (c: Conn) => {
    c.since = performance.now();
    clearTimeout(c.deadline);
    c.deadline = setTimeout(() => {
      if (c.inflight.size > 0 || c.socket.destroyed) return;
      // Nothing of a response is on this socket yet, so a whole 408 can be written here.
      c.socket.end(TIMEOUT_ANSWER);
      setTimeout(() => c.socket.destroy(), 1000).unref();
    }, opts.headersTimeoutMs);
    c.deadline.unref();
  };

  server.on('connection', (socket: Socket) => {
    const client = clientKey(socket.remoteAddress);
    const views: ConnView[] = [...conns.values()].map((c) => ({ id: c.id, client: c.client, phase: phaseOf(c), since: c.since }));
    const verdict = admit(views, client, opts);
    if (!verdict.accept) {
      noteDrop(verdict.reason);
      socket.destroy();
      return;
    }
    for (const c of conns.values()) {
      if (!verdict.evict.includes(c.id)) continue;
      noteDrop(c.client === client ? `more than ${opts.perClient} connections from ${client}` : `more than ${opts.total} connections`);
      conns.delete(c.socket);
      clearTimeout(c.deadline);
      c.socket.destroy();
    }
    const conn: Conn = { id: nextId++, client, socket, inflight: new Set(), since: 0 };
    conns.set(socket, conn);
    startWaiting(conn);
    socket.once('close', () => {
      clearTimeout(conn.deadline);
      if (conns.get(socket) === conn) conns.delete(socket);
    });
  });

  server.on('request', (req: IncomingMessage, res: http.ServerResponse) => {
    const conn = conns.get(req.socket as Socket);
    if (!conn) return;
    conn.inflight.add(req);
    conn.since = performance.now();
    clearTimeout(conn.deadline);
    res.once('close', () => {
      conn.inflight.delete(req);
      if (conn.inflight.size === 0 && !conn.socket.destroyed) startWaiting(conn);
    });
  });

  return { open: () => conns.size };
}
