// The updater's control plane: HTTP+JSON on the Unix socket MOLT_SOCKET and, when
// MOLT_ADMIN_ADDR is set, on TCP behind a Bearer token. Routes call UpdaterControl;
// GET never changes state, long actions answer 202 with an id to follow in /api/status.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import os from 'node:os';
import type { AddressInfo } from 'node:net';
import { logger } from '../common/log.js';
import { UpdateError } from '../common/errors.js';
import { adminProblem, bearerChecker, browserProblem, githubSignatureValid, parseAdminAddr } from './auth.js';
import { matchRoute, type Route } from './routes.js';
import { guardConnections } from './guard.js';
import { healthProblem } from './health.js';
import { ApiError, readBody, sendError, sendJson, sendText } from './http.js';
import { ApiMetrics, type MetricsSource } from './metrics.js';
import { pageCsp, pageHtml } from './page.js';
import { peerRouteProblem, peerUid } from './peer.js';
import { listenUnix, unlinkIfOurs } from './socket.js';
import { CheckCoalescer, DeliveryLog, deliveryIdValid } from './trigger.js';
import type { ActionInfo, ServiceInfo, UpdaterControl, UpdaterStatus } from './types.js';
import { blockReason, credentialInQuery, decodeSegment, parseJsonObject, splitTarget, versionProblem } from './validate.js';

const log = logger('api');

export interface ApiOptions {
  /** MOLT_SOCKET */
  socket: string;
  /** MOLT_ADMIN_ADDR (host:port; port 0 picks a free one) */
  adminAddr?: string;
  /** MOLT_ADMIN_TOKEN */
  adminToken?: string;
  /** MOLT_SOCKET_GROUP, as a gid: its members may use the app's calls on the socket (peer.ts). */
  socketGroup?: number;
  /** MOLT_WEBHOOK_SECRET */
  webhookSecret?: string;
  /** Counters the updater increments; without it they are derived from status() over time. */
  metrics?: MetricsSource;
  /** The supervised services (e.g. () => readServices(MOLT_SERVICES)). */
  services?: () => ServiceInfo[];
  /** MOLT_APP, for /healthz (default app). */
  appName?: string;
  /** Shown on the page; default os.hostname(). */
  host?: string;
  /** How often a queued webhook check looks whether the running one ended (default 250 ms). */
  triggerPollMs?: number;
  /** How often metrics sample status and services between scrapes (default 2000 ms). */
  sampleMs?: number;
  /** How long a connection may take to send a request's headers (default 10 000 ms). */
  headersTimeoutMs?: number;
}

export interface ApiHandle {
  /** The TCP address actually bound, when MOLT_ADMIN_ADDR is set. */
  admin?: { host: string; port: number };
  close(): Promise<void>;
}

type Via = 'unix' | 'tcp';


const NOTIFY_BODY_LIMIT = 1024 * 1024; // GitHub release payloads carry release notes
/** Open connections per listener, and per remote address on TCP (a browser opens about 6). */
const MAX_CONNECTIONS = 128;
const MAX_PER_CLIENT = 16;

/** Map an exception from UpdaterControl to a status: refusals are the caller's to fix. */
function ctlError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof UpdateError) {
    const status = err.code === 'not-found' ? 404 : err.code === 'bad-input' || err.code === 'config' ? 400 : 409;
    return new ApiError(status, err.message);
  }
  return new ApiError(500, `internal error: ${err instanceof Error ? err.message : String(err)}`);
}

export async function startApi(ctl: UpdaterControl, opts: ApiOptions): Promise<ApiHandle> {
  const host = opts.host ?? os.hostname();
  const appName = opts.appName ?? 'app';
  /** Actions the updater refused outright: not failures for /healthz or the metrics. */
  const refused = new Set<string>();
  const metrics = new ApiMetrics(opts.metrics, refused);
  const coalescer = new CheckCoalescer(ctl, opts.triggerPollMs);
  const deliveries = new DeliveryLog();
  const secret = opts.webhookSecret || undefined;

  let admin: { host: string; port: number } | undefined;
  // The token also lifts a socket-group member to the admin verbs on the socket.
  const tokenOk = opts.adminToken ? bearerChecker(opts.adminToken) : undefined;
  if (opts.adminAddr) {
    const addr = parseAdminAddr(opts.adminAddr);
    const problem = adminProblem(addr, opts.adminToken || undefined);
    if (problem) throw new Error(problem);
    admin = addr;
  }
  const ownerUid = typeof process.geteuid === 'function' ? process.geteuid() : 0;

  const services = (): ServiceInfo[] | undefined => {
    if (!opts.services) return undefined;
    try {
      return opts.services();
    } catch (err) {
      log.warn('services unreadable', { error: err });
      return undefined;
    }
  };

  const fullStatus = (): UpdaterStatus => {
    const s: UpdaterStatus = { ...ctl.status(), host };
    if (refused.size) s.actions = s.actions.map((a) => (refused.has(a.id) ? { ...a, refused: true } : a));
    const svc = services();
    if (svc) s.services = svc;
    return s;
  };

  /** 202 for an action under way; 409 with the action when the updater refused it outright. */
  const accepted = (res: ServerResponse, action: ActionInfo) => {
    if (action.state === 'failed') {
      refused.add(action.id);
      if (refused.size > 200) refused.delete(refused.values().next().value as string);
    }
    if (action.state === 'failed') sendError(res, 409, action.message ?? `${action.kind} refused`, { action });
    else sendJson(res, 202, action);
  };

  async function dispatch(route: Route, req: IncomingMessage, res: ServerResponse, via: Via): Promise<void> {
    switch (route.name) {
      case 'page':
        return sendText(res, 200, 'text/html; charset=utf-8', pageHtml, {
          'content-security-policy': pageCsp,
          'x-frame-options': 'DENY',
          'referrer-policy': 'no-referrer',
        });
      case 'healthz': {
        const status = ctl.status();
        const app = opts.services ? (services() ?? []).find((s) => s.name === appName) ?? null : undefined;
        const problem = healthProblem(status, app, appName, refused);
        return problem ? sendJson(res, 503, { ok: false, error: problem }) : sendJson(res, 200, { ok: true, phase: status.phase, current: status.current });
      }
      case 'metrics': {
        const text = await metrics.render(ctl.status(), services());
        return sendText(res, 200, metrics.contentType, text);
      }
      case 'status':
        return sendJson(res, 200, fullStatus());
      case 'blocked':
        return sendJson(res, 200, ctl.blocked());
      case 'check':
        await readBody(req);
        return accepted(res, ctl.check());
      case 'update': {
        const body = parseBody(await readBody(req));
        for (const k of Object.keys(body)) if (k !== 'version') throw new ApiError(400, `unknown field ${JSON.stringify(k).slice(0, 40)} (only "version")`);
        let version: string | undefined;
        if (body.version !== undefined && body.version !== null) {
          const problem = versionProblem(body.version);
          if (problem) throw new ApiError(400, problem);
          version = body.version as string;
        }
        return accepted(res, ctl.update(version));
      }
      case 'rollback':
        await readBody(req);
        return accepted(res, ctl.rollback());
      case 'ready': {
        await readBody(req);
        const trial = ctl.status().trial;
        const ok = ctl.ready();
        return sendJson(res, 200, {
          ready: ok,
          version: ok ? trial?.version : undefined,
          message: ok ? `${trial?.version ?? 'the new version'} is ready; trial committed` : 'no update on trial; nothing to commit',
        });
      }
      case 'unblock':
      case 'unblock-self': {
        const raw = route.params[0] ?? '';
        const version = decodeSegment(raw);
        if (version === undefined) throw new ApiError(400, 'version is not a valid URL path segment');
        const problem = versionProblem(version);
        if (problem) throw new ApiError(400, problem);
        const self = route.name === 'unblock-self';
        if (!(await ctl.unblock(version, self ? { of: 'molt' } : {}))) throw new ApiError(404, self ? `molt ${version} is not blocked` : `${version} is not blocked`);
        return sendJson(res, 200, { unblocked: version, ...(self ? { of: 'molt' } : {}) });
      }
      case 'block': {
        const version = decodeSegment(route.params[0] ?? '');
        if (version === undefined) throw new ApiError(400, 'version is not a valid URL path segment');
        const problem = versionProblem(version);
        if (problem) throw new ApiError(400, problem);
        const raw = await readBody(req);
        const reason = blockReason(raw.length ? parseBody(raw) : {});
        if (typeof reason === 'object') throw new ApiError(400, reason.problem);
        const r = await ctl.block(version, reason);
        if (r.result === 'refused') throw new ApiError(409, r.error);
        return sendJson(res, 200, { blocked: version, already: r.result === 'already' });
      }
      case 'notify':
        return webhook(req, res, via);
    }
    throw new ApiError(404, 'not found');
  }

  function parseBody(raw: Buffer): Record<string, unknown> {
    try {
      return parseJsonObject(raw);
    } catch (err) {
      throw new ApiError(400, (err as Error).message);
    }
  }

  async function webhook(req: IncomingMessage, res: ServerResponse, via: Via): Promise<void> {
    const body = await readBody(req, NOTIFY_BODY_LIMIT);
    const delivery = header(req, 'x-github-delivery');
    if (secret) {
      if (!githubSignatureValid(secret, body, header(req, 'x-hub-signature-256'))) {
        throw new ApiError(401, 'missing or bad X-Hub-Signature-256 (HMAC of the body with MOLT_WEBHOOK_SECRET)');
      }
      // The signature does not cover the delivery id, but a signed body replayed under its
      // original id is refused here, and any other replay can only cause a coalesced check.
      if (!delivery) throw new ApiError(400, 'missing X-GitHub-Delivery');
    }
    if (delivery !== undefined) {
      if (!deliveryIdValid(delivery)) throw new ApiError(400, 'bad X-GitHub-Delivery');
      if (!deliveries.record(delivery)) throw new ApiError(409, `delivery ${delivery} was already received`);
    }
    if (header(req, 'x-github-event') === 'ping') return sendJson(res, 200, { ok: true, pong: true });
    const t = coalescer.trigger();
    (t.result === 'coalesced' ? log.debug : log.info)('webhook', { via, trigger: t.result, delivery });
    sendJson(res, 202, t);
  }

  async function handle(req: IncomingMessage, res: ServerResponse, via: Via): Promise<void> {
    const method = req.method ?? 'GET';
    // The query string is never logged: it is where a careless client puts a token.
    const { path, query } = splitTarget(req.url ?? '/');
    let status = 500;
    try {
      if (credentialInQuery(query)) throw new ApiError(400, 'credentials in the URL are refused; send Authorization: Bearer <token>');
      const route = matchRoute(method, path);
      const isPage = 'name' in route && route.name === 'page';
      const isSignedWebhook = 'name' in route && route.name === 'notify' && secret !== undefined;
      if (via === 'tcp') {
        const problem = browserProblem(header(req, 'host'), header(req, 'origin'), header(req, 'sec-fetch-site'), Boolean(tokenOk));
        if (problem) throw new ApiError(403, problem);
      }
      // On TCP everything needs the token but the page shell (no state in it: its script
      // asks for the token and sends it) and a webhook that proves itself by its signature.
      if (via === 'tcp' && tokenOk && !isPage && !isSignedWebhook && !tokenOk(header(req, 'authorization'))) {
        throw new ApiError(401, 'missing or wrong Authorization: Bearer token', undefined);
      }
      // Only a group member can be someone else here: without MOLT_SOCKET_GROUP the socket is 0600.
      if (via === 'unix' && opts.socketGroup !== undefined && 'name' in route) {
        const problem = peerRouteProblem(route.name, peerUid(req.socket), ownerUid, Boolean(tokenOk?.(header(req, 'authorization'))));
        if (problem) throw new ApiError(403, problem);
      }
      if (!('name' in route)) {
        if (route.status === 405) throw new ApiError(405, `${method} is not allowed here (allowed: ${route.allow})`, { allow: route.allow });
        throw new ApiError(404, `no such endpoint ${path.slice(0, 100)}`);
      }
      await dispatch(route, req, res, via);
      status = res.statusCode;
    } catch (err) {
      const e = ctlError(err);
      status = e.status;
      const headers: Record<string, string> = {};
      if (e.status === 401) headers['www-authenticate'] = 'Bearer realm="molt"';
      if (e.status === 405 && typeof e.extra?.allow === 'string') headers.allow = e.extra.allow;
      // An unread body must not be parsed as the next request: close after answering.
      if (e.status === 413 || (!req.complete && e.status >= 400)) headers.connection = 'close';
      const extra = e.extra && 'allow' in e.extra ? undefined : e.extra;
      if (!res.headersSent) sendError(res, e.status, e.message, extra, headers);
      else res.destroy();
      if (e.status >= 500) log.error('request failed', { method, path, error: e.message });
    }
    const changing = method === 'POST' || method === 'PUT' || method === 'DELETE';
    (changing || status >= 400 ? log.info : log.debug)('request', { via, method, path: path.slice(0, 200), status });
  }

  const headersTimeoutMs = opts.headersTimeoutMs ?? 10_000;
  const make = (via: Via) => {
    // Node checks headersTimeout and requestTimeout only every connectionsCheckingInterval
    // (30 s by default); the guard times the headers itself, this keeps the body's 30 s close to 30.
    const server = http.createServer({ maxHeaderSize: 16 * 1024, connectionsCheckingInterval: 1000 }, (req, res) => {
      handle(req, res, via).catch((err) => {
        log.error('handler crashed', { error: err });
        if (!res.headersSent) sendError(res, 500, 'internal error');
      });
    });
    server.headersTimeout = headersTimeoutMs;
    server.requestTimeout = 30_000;
    server.keepAliveTimeout = 5_000;
    server.maxHeadersCount = 64;
    // The Unix socket has no remote address: one client, bounded by the total alone.
    guardConnections(server, { headersTimeoutMs, total: MAX_CONNECTIONS, perClient: via === 'tcp' ? MAX_PER_CLIENT : MAX_CONNECTIONS });
    // A backstop only: the guard keeps fewer open, dropping the oldest half-open ones.
    server.maxConnections = 2 * MAX_CONNECTIONS;
    return server;
  };

  const unixServer = make('unix');
  const { ino } = await listenUnix(unixServer, opts.socket, opts.socketGroup);
  log.info('listening', { socket: opts.socket, group: opts.socketGroup });

  let tcpServer: http.Server | undefined;
  if (admin) {
    tcpServer = make('tcp');
    const srv = tcpServer;
    try {
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(admin!.port, admin!.host, () => {
          srv.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      await closeServer(unixServer);
      unlinkIfOurs(opts.socket, ino);
      throw new Error(`cannot listen on ${admin.host}:${admin.port}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const a = srv.address() as AddressInfo;
    admin = { host: a.address, port: a.port };
    if (!tokenOk) log.warn('admin listener has no token (loopback only)', { addr: `${a.address}:${a.port}` });
    else log.info('listening', { addr: `${a.address}:${a.port}` });
  }

  const sampleEvery = opts.sampleMs ?? 2000;
  const sampler = setInterval(() => {
    try {
      metrics.observe(ctl.status(), services());
    } catch {
      // A failing status() shows up at the next request instead.
    }
  }, sampleEvery);
  sampler.unref();

  return {
    admin,
    async close() {
      clearInterval(sampler);
      coalescer.close();
      await Promise.all([closeServer(unixServer), tcpServer ? closeServer(tcpServer) : undefined]);
      unlinkIfOurs(opts.socket, ino);
    },
  };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
