// Who may do what on the Unix socket. Without MOLT_SOCKET_GROUP the socket is
// 0600: only its owner (and root) can connect, and may do everything. With it,
// the group's members connect too (0660), and SO_PEERCRED tells them apart:
// they get the app's calls (status, ready, check, update), and the admin verbs
// (rollback, unblock, and whatever is added later) stay with root, the owner,
// or a caller that presents MOLT_ADMIN_TOKEN.
import type { Socket } from 'node:net';
import { native } from '../common/native.js';

/** Routes a socket-group member may use: reading state, and what an app says about itself. */
export const APP_ROUTES: ReadonlySet<string> = new Set(['page', 'healthz', 'metrics', 'status', 'blocked', 'check', 'update', 'ready', 'notify']);

/** Why the peer `uid` may not use `route`, or undefined. Pure; an unknown uid gets the app's routes only. */
export function peerRouteProblem(route: string, uid: number | undefined, ownerUid: number, hasToken: boolean): string | undefined {
  if (uid === 0 || uid === ownerUid || hasToken) return undefined;
  if (APP_ROUTES.has(route)) return undefined;
  return `${route} is for root or the admin token; uid ${uid ?? 'unknown'} (MOLT_SOCKET_GROUP) may use status, ready, check and update`;
}

const cache = new WeakMap<Socket, number | undefined>();

/** The peer's uid on a Unix socket connection (once per connection); undefined when it cannot be read. */
export function peerUid(socket: Socket): number | undefined {
  if (cache.has(socket)) return cache.get(socket);
  let uid: number | undefined;
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  try {
    if (typeof fd === 'number' && fd >= 0) uid = native().peerCred(fd).uid;
  } catch {
    // Unknown: such a caller gets the app's routes only.
    uid = undefined;
  }
  cache.set(socket, uid);
  return uid;
}

/**
 * What to do to the socket's directory so that the group's members can reach the
 * socket: nothing (others or the group may already search it), make it ours for
 * the group (searchable, never group-writable: members must not swap the socket),
 * or a problem when it is not ours to change. Pure, over stat-like facts.
 */
export function socketDirForGroup(dir: string, st: { mode: number; uid: number; gid: number }, gid: number, euid: number): { mode?: number; chgrp?: boolean } | { problem: string } {
  const mode = st.mode & 0o7777;
  if (mode & 0o001) return {};
  if (st.gid === gid && mode & 0o010 && !(mode & 0o020)) return {};
  if (st.uid !== euid) return { problem: `${dir} is not searchable by group ${gid} and belongs to uid ${st.uid}; members of MOLT_SOCKET_GROUP cannot reach the socket` };
  return { mode: (mode | 0o010) & ~0o020, chgrp: st.gid !== gid };
}
