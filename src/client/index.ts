// molt/client: a typed Node client of the updater's API, for apps inside the
// container (Unix socket) and for tools outside it (admin URL + token).
//
//   import { connect } from 'molt/client';
//   const molt = connect();                       // MOLT_SOCKET or /run/molt/molt.sock
//   await molt.ready();                           // end this version's trial
//   const action = await molt.update();           // 202: an update is under way
//   const done = await molt.waitFor(action.id);   // 'done' or 'failed', with a message
import http from 'node:http';
import https from 'node:https';
import type { ActionInfo, BlockedEntry, UpdaterStatus } from '../api/types.js';

export type {
  ActionInfo,
  BlockedEntry,
  HistoryEntry,
  ReleaseInfo,
  ServiceInfo,
  TrialInfo,
  UpdatePhase,
  UpdaterStatus,
} from '../api/types.js';

export const DEFAULT_SOCKET = '/run/molt/molt.sock';

export interface ConnectOptions {
  /** Unix socket of the updater (default MOLT_SOCKET, else /run/molt/molt.sock). */
  socket?: string;
  /** Admin URL (http://host:port) instead of the socket. */
  url?: string;
  /** Bearer token (default MOLT_ADMIN_TOKEN). Sent only in the Authorization header; on the socket it lifts a MOLT_SOCKET_GROUP member to the admin calls. */
  token?: string;
  /** Per request; default 10 s. */
  timeoutMs?: number;
}

export type MoltErrorCode = 'not-running' | 'unauthorized' | 'refused' | 'not-found' | 'bad-request' | 'timeout' | 'network' | 'server' | 'bad-response';

/** Every failure of the client: a one-line message, a code to branch on, the HTTP status when there was one. */
export class MoltError extends Error {
  constructor(
    message: string,
    readonly code: MoltErrorCode,
    readonly status?: number,
    /** The action, when the updater refused one outright (409). */
    readonly action?: ActionInfo,
  ) {
    super(message);
    this.name = 'MoltError';
  }
}

export interface ReadyResult {
  /** true when a trial was running and is now committed. */
  ready: boolean;
  version?: string;
  message: string;
}

export interface WaitOptions {
  /** Poll interval; default 500 ms. */
  intervalMs?: number;
  /** Give up after this long (MoltError 'timeout'); default: wait as long as the action runs. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Called at each poll, e.g. to show download progress. */
  onStatus?: (status: UpdaterStatus, action: ActionInfo) => void;
}

export interface MoltClient {
  /** Where this client connects (socket path or URL without credentials). */
  readonly target: string;
  status(): Promise<UpdaterStatus>;
  /** Starts a check; resolves with the action (progress in status().actions). */
  check(): Promise<ActionInfo>;
  /** Starts an update to `version` or to the newest the policy allows. A refusal resolves with the failed action. */
  update(version?: string): Promise<ActionInfo>;
  rollback(): Promise<ActionInfo>;
  /** Tell the updater this version is ready: commits its trial at once. */
  ready(): Promise<ReadyResult>;
  blocked(): Promise<BlockedEntry[]>;
  /** false when the version was not blocked. `of: 'molt'`: a version of molt itself (MOLT_SELF). */
  unblock(version: string, opts?: { of?: 'molt' }): Promise<boolean>;
  /** Block `version` by hand; false when it was blocked already. A refusal (the running version) throws MoltError 'refused'. */
  block(version: string, reason?: string): Promise<boolean>;
  /** GET /healthz: ok, or the one-line reason it is not. */
  health(): Promise<{ ok: boolean; error?: string }>;
  /** Poll status until the action is no longer running; resolves with it finished ('done' or 'failed'). */
  waitFor(actionId: string, opts?: WaitOptions): Promise<ActionInfo>;
}

const MAX_RESPONSE = 8 * 1024 * 1024;

interface Reply {
  status: number;
  body: unknown;
}

function statusCode(status: number): MoltErrorCode {
  if (status === 401 || status === 403) return 'unauthorized';
  if (status === 404) return 'not-found';
  if (status === 409) return 'refused';
  if (status >= 400 && status < 500) return 'bad-request';
  return 'server';
}

export function connect(opts: ConnectOptions = {}): MoltClient {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const url = opts.url ? new URL(opts.url) : undefined;
  if (url && url.protocol !== 'http:' && url.protocol !== 'https:') throw new MoltError(`unsupported URL scheme ${url.protocol}`, 'bad-request');
  const socket = opts.socket ?? process.env.MOLT_SOCKET ?? DEFAULT_SOCKET;
  const token = opts.token ?? (process.env.MOLT_ADMIN_TOKEN || undefined);
  const target = url ? `${url.protocol}//${url.host}` : socket;

  function request(method: string, path: string, body?: unknown): Promise<Reply> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    }
    if (token) headers.authorization = `Bearer ${token}`;
    return new Promise<Reply>((resolve, reject) => {
      const base = url ? url.pathname.replace(/\/+$/, '') : '';
      const reqOpts: http.RequestOptions = url
        ? { method, hostname: url.hostname.replace(/^\[|\]$/g, ''), port: url.port || undefined, path: base + path, headers }
        : { method, socketPath: socket, path, headers };
      const mod = url?.protocol === 'https:' ? https : http;
      const req = mod.request(reqOpts, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE) {
            req.destroy(new MoltError(`response from ${target} larger than ${MAX_RESPONSE} bytes`, 'bad-response'));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          const type = String(res.headers['content-type'] ?? '');
          if (type.includes('json')) {
            try {
              parsed = JSON.parse(text);
            } catch {
              return reject(new MoltError(`bad JSON from ${target}${path}`, 'bad-response', res.statusCode));
            }
          } else {
            parsed = text;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', (err) => reject(new MoltError(`reading the answer from ${target}: ${err.message}`, 'network')));
      });
      req.setTimeout(timeoutMs, () => req.destroy(new MoltError(`no answer from ${target} within ${timeoutMs} ms`, 'timeout')));
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err instanceof MoltError) return reject(err);
        if (err.code === 'ENOENT') return reject(new MoltError(`updater not running (no socket at ${socket})`, 'not-running'));
        if (err.code === 'ECONNREFUSED') return reject(new MoltError(`updater not running (nothing listening on ${target})`, 'not-running'));
        if (err.code === 'EACCES') return reject(new MoltError(`permission denied on ${socket} (run as root, or as a member of the updater's MOLT_SOCKET_GROUP)`, 'unauthorized'));
        reject(new MoltError(`cannot reach the updater at ${target}: ${err.code ?? err.message}`, 'network'));
      });
      req.end(payload);
    });
  }

  /** The body on a 2xx, else a MoltError carrying the server's one-line error. */
  async function call<T>(method: string, path: string, body?: unknown, ok: number[] = [200]): Promise<T> {
    const r = await request(method, path, body);
    if (ok.includes(r.status)) return r.body as T;
    const b = r.body as { error?: unknown; action?: ActionInfo } | undefined;
    const msg = typeof b?.error === 'string' ? b.error : `HTTP ${r.status} from ${target}${path}`;
    throw new MoltError(msg, statusCode(r.status), r.status, b?.action);
  }

  /** 202 with the action, or a 409 refusal that carries the (failed) action. */
  async function action(path: string, body?: unknown): Promise<ActionInfo> {
    try {
      return await call<ActionInfo>('POST', path, body, [200, 202]);
    } catch (err) {
      if (err instanceof MoltError && err.action) return err.action;
      throw err;
    }
  }

  const client: MoltClient = {
    target,
    status: () => call<UpdaterStatus>('GET', '/api/status'),
    check: () => action('/api/check'),
    update: (version?: string) => action('/api/update', version === undefined ? {} : { version }),
    rollback: () => action('/api/rollback'),
    ready: () => call<ReadyResult>('POST', '/api/ready'),
    blocked: () => call<BlockedEntry[]>('GET', '/api/blocked'),
    async unblock(version: string, opts: { of?: 'molt' } = {}) {
      try {
        await call('DELETE', `/api${opts.of === 'molt' ? '/self' : ''}/blocked/${encodeURIComponent(version)}`);
        return true;
      } catch (err) {
        if (err instanceof MoltError && err.status === 404) return false;
        throw err;
      }
    },
    async block(version: string, reason?: string) {
      const r = await call<{ already?: boolean }>('PUT', `/api/blocked/${encodeURIComponent(version)}`, reason === undefined ? {} : { reason });
      return r?.already !== true;
    },
    async health() {
      const r = await request('GET', '/healthz');
      const b = r.body as { ok?: boolean; error?: string } | undefined;
      if (r.status === 200) return { ok: true };
      if (r.status === 503) return { ok: false, error: b?.error ?? 'unhealthy' };
      throw new MoltError(typeof b?.error === 'string' ? b.error : `HTTP ${r.status} from ${target}/healthz`, statusCode(r.status), r.status);
    },
    async waitFor(actionId: string, w: WaitOptions = {}) {
      const every = w.intervalMs ?? 500;
      const deadline = w.timeoutMs === undefined ? Infinity : performance.now() + w.timeoutMs;
      // The updater may restart under us (it is a supervised service): ride out a short gap.
      let unreachableSince: number | undefined;
      for (;;) {
        if (w.signal?.aborted) throw new MoltError(`stopped waiting for ${actionId}`, 'timeout');
        let s: UpdaterStatus | undefined;
        try {
          s = await client.status();
          unreachableSince = undefined;
        } catch (err) {
          if (!(err instanceof MoltError) || (err.code !== 'not-running' && err.code !== 'network' && err.code !== 'timeout')) throw err;
          unreachableSince ??= performance.now();
          if (performance.now() - unreachableSince > 15_000) throw err;
        }
        if (s) {
          const a = s.actions.find((x) => x.id === actionId);
          if (!a) throw new MoltError(`action ${actionId} is not known to the updater (did it restart? see molt status)`, 'not-found');
          w.onStatus?.(s, a);
          if (a.state !== 'running') return a;
        }
        if (performance.now() > deadline) throw new MoltError(`action ${actionId} still running after ${w.timeoutMs} ms`, 'timeout');
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, every);
          w.signal?.addEventListener('abort', () => {
            clearTimeout(t);
            resolve();
          }, { once: true });
        });
      }
    },
  };
  return client;
}
