// The API over a real Unix socket and loopback TCP against the fake updater:
// every route, the token rules, hostile input, and the webhook trigger.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startApi, type ApiHandle } from '../../src/api/server.js';
import { setLogLevel, setLogSink } from '../../src/common/log.js';
import { githubSignature } from '../../src/api/auth.js';
import { encodeStatus } from '../../src/supervise/status.js';
import { readServices } from '../../src/api/services.js';
import { FakeUpdater } from './fake-updater.js';
import { req, type Target } from './request.js';

// Every log line is kept (not printed): the tests check that no secret ever reaches a log.
const logLines: string[] = [];
setLogLevel('debug');
setLogSink((l) => logLines.push(l));

const TOKEN = 'test-admin-token-0123456789';
const SECRET = 'webhook-secret-for-tests';
const auth = { authorization: `Bearer ${TOKEN}` };

async function until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 5000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Readers held on supervise/ok FIFOs, as a live supervisor holds them. */
const okReaders: number[] = [];

/** A service directory as a supervisor leaves it: supervise/status, and ok with a reader. */
function serviceDir(root: string, name: string, pid: number, state: 'run' | 'down'): void {
  const dir = path.join(root, name, 'supervise');
  fs.mkdirSync(dir, { recursive: true });
  const ok = path.join(dir, 'ok');
  if (!fs.existsSync(ok)) {
    assert.equal(spawnSync('mkfifo', [ok]).status, 0);
    okReaders.push(fs.openSync(ok, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK));
  }
  fs.writeFileSync(path.join(root, name, 'run'), '#!/bin/sh\n', { mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'status'), encodeStatus({ stampMs: Date.now() - 90_000, pid, paused: false, want: 'up', gotTerm: false, state }));
}

describe('API server', () => {
  let tmp: string;
  let fake: FakeUpdater;
  let api: ApiHandle;
  let sock: Target;
  let tcp: Target;
  let servicesRoot: string;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-api-'));
    servicesRoot = path.join(tmp, 'service');
    serviceDir(servicesRoot, 'app', 4242, 'run');
    serviceDir(servicesRoot, 'updater', 4243, 'run');
    fake = new FakeUpdater({ tickMs: 10 });
    // No MetricsSource here: the counters are derived from what status() shows.
    api = await startApi(fake, {
      socket: path.join(tmp, 'run', 'molt.sock'),
      adminAddr: '127.0.0.1:0',
      adminToken: TOKEN,
      webhookSecret: SECRET,
      services: () => readServices(servicesRoot),
      host: 'test-host',
      triggerPollMs: 20,
    });
    sock = { socket: path.join(tmp, 'run', 'molt.sock') };
    tcp = { port: api.admin!.port };
  });

  after(async () => {
    await api?.close();
    fake?.close();
    for (const fd of okReaders.splice(0)) fs.closeSync(fd);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('the socket is 0600 in a directory created 0755', () => {
    const st = fs.statSync(sock.socket!);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.dirname(sock.socket!)).mode & 0o777, 0o755);
  });

  test('GET /api/status over the socket needs no token and carries services and host', async () => {
    const r = await req(sock, 'GET', '/api/status');
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /application\/json/);
    assert.equal(r.json.current, '1.1.0');
    assert.equal(r.json.host, 'test-host');
    assert.deepEqual(
      r.json.services.map((s: { name: string; state: string; pid: number }) => [s.name, s.state, s.pid]),
      [
        ['app', 'up', 4242],
        ['updater', 'up', 4243],
      ],
    );
    assert.equal(r.headers['access-control-allow-origin'], undefined);
  });

  test('GET /api/status over TCP: no token 401, wrong token 401, token in the query 400, right token 200', async () => {
    const before = fake.snapshot();
    const none = await req(tcp, 'GET', '/api/status');
    assert.equal(none.status, 401);
    assert.match(none.json.error, /Authorization: Bearer/);
    assert.equal(none.headers['www-authenticate'], 'Bearer realm="molt"');
    const wrong = await req(tcp, 'GET', '/api/status', { headers: { authorization: `Bearer ${TOKEN}x` } });
    assert.equal(wrong.status, 401);
    const short = await req(tcp, 'GET', '/api/status', { headers: { authorization: 'Bearer x' } });
    assert.equal(short.status, 401);
    const basic = await req(tcp, 'GET', '/api/status', { headers: { authorization: `Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}` } });
    assert.equal(basic.status, 401);
    const query = await req(tcp, 'GET', `/api/status?token=${TOKEN}`);
    assert.equal(query.status, 400);
    assert.match(query.json.error, /credentials in the URL/);
    assert.ok(!query.text.includes(TOKEN), 'the answer never echoes the token');
    const queryWithHeader = await req(tcp, 'GET', `/api/status?access_token=${TOKEN}`, { headers: auth });
    assert.equal(queryWithHeader.status, 400, 'a token in the URL is refused even alongside a good header');
    const ok = await req(tcp, 'GET', '/api/status', { headers: auth });
    assert.equal(ok.status, 200);
    assert.equal(ok.json.current, '1.1.0');
    assert.equal(fake.snapshot(), before);
  });

  test('state-changing routes over TCP without the token change nothing', async () => {
    const before = fake.snapshot();
    for (const [method, p, body] of [
      ['POST', '/api/check', ''],
      ['POST', '/api/update', '{"version":"1.3.0"}'],
      ['POST', '/api/rollback', ''],
      ['POST', '/api/ready', ''],
      ['DELETE', '/api/blocked/1.2.1', ''],
      ['GET', '/metrics', ''],
      ['GET', '/api/blocked', ''],
      ['GET', '/healthz', ''],
    ] as const) {
      const r = await req(tcp, method, p, { body, headers: { authorization: 'Bearer wrong-token-wrong-token' } });
      assert.equal(r.status, 401, `${method} ${p}`);
      const q = await req(tcp, method, `${p}?token=${TOKEN}`, { body });
      assert.equal(q.status, 400, `${method} ${p}?token=`);
    }
    assert.equal(fake.snapshot(), before);
  });

  test('the admin listener refuses a non-loopback address without a token, and a short token', async () => {
    await assert.rejects(
      startApi(fake, { socket: path.join(tmp, 'other', 'a.sock'), adminAddr: '0.0.0.0:0' }),
      /not a loopback address; set MOLT_ADMIN_TOKEN/,
    );
    await assert.rejects(startApi(fake, { socket: path.join(tmp, 'other', 'b.sock'), adminAddr: '127.0.0.1:0', adminToken: 'short' }), /too short/);
    assert.equal(fs.existsSync(path.join(tmp, 'other', 'a.sock')), false);
  });

  test('GET / serves the page shell on TCP without a token: no state in it, strict CSP', async () => {
    const r = await req(tcp, 'GET', '/');
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /text\/html/);
    assert.match(r.text, /<title>molt<\/title>/);
    assert.ok(!r.text.includes('1.1.0'), 'the shell holds no version');
    const csp = String(r.headers['content-security-policy']);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'sha256-/);
    assert.doesNotMatch(csp, /unsafe-inline/);
    assert.equal(r.headers['x-frame-options'], 'DENY');
  });

  test('methods: GET never changes state, others 405 with Allow, unknown paths 404, no CORS', async () => {
    const before = fake.snapshot();
    const g = await req(sock, 'GET', '/api/check');
    assert.equal(g.status, 405);
    assert.equal(g.headers.allow, 'POST');
    assert.equal((await req(sock, 'GET', '/api/update')).status, 405);
    assert.equal((await req(sock, 'GET', '/api/rollback')).status, 405);
    assert.equal((await req(sock, 'PUT', '/api/status')).status, 405);
    const preflight = await req(tcp, 'OPTIONS', '/api/status', { headers: { ...auth, origin: 'http://evil.example', 'access-control-request-method': 'POST' } });
    assert.equal(preflight.status, 403, 'a CORS preflight from another origin');
    const opt = await req(tcp, 'OPTIONS', '/api/status', { headers: auth });
    assert.equal(opt.status, 405);
    for (const r of [preflight, opt]) for (const h of Object.keys(r.headers)) assert.ok(!h.startsWith('access-control-'), h);
    assert.equal((await req(sock, 'GET', '/api/blocked/1.2.1')).status, 405);
    const nf = await req(sock, 'GET', '/nope');
    assert.equal(nf.status, 404);
    assert.match(nf.json.error, /no such endpoint/);
    assert.equal(fake.snapshot(), before);
  });

  test('bodies over 64 KiB are refused with 413 (declared or chunked), nothing changes', async () => {
    const before = fake.snapshot();
    const big = JSON.stringify({ version: '1.3.0', pad: 'x'.repeat(70 * 1024) });
    const declared = await req(sock, 'POST', '/api/update', { body: big });
    assert.equal(declared.status, 413);
    assert.match(declared.json.error, /larger than 65536 bytes/);
    const chunked = await req(sock, 'POST', '/api/update', { body: big, chunked: true });
    assert.equal(chunked.status, 413);
    const tcpBig = await req(tcp, 'POST', '/api/check', { body: big, headers: auth, chunked: true });
    assert.equal(tcpBig.status, 413);
    assert.equal(fake.snapshot(), before);
  });

  test('malformed JSON, wrong shapes and unknown fields are 400, nothing changes', async () => {
    const before = fake.snapshot();
    for (const body of ['{"version":', 'not json', '[1,2]', '"1.3.0"', '{"version":130}', '{"version":"1.3.0","force":true}']) {
      const r = await req(sock, 'POST', '/api/update', { body, headers: { 'content-type': 'application/json' } });
      assert.equal(r.status, 400, body);
      assert.equal(typeof r.json.error, 'string');
      assert.ok(!r.json.error.includes('\n'));
    }
    assert.equal(fake.snapshot(), before);
  });

  test('versions with path characters are 400 in bodies and in paths, nothing changes', async () => {
    const before = fake.snapshot();
    for (const v of ['../../etc', '1.0/../..', 'a\\b', '1.0\u0000', '1.0\n2', 'x'.repeat(129), '', '..']) {
      const r = await req(sock, 'POST', '/api/update', { body: JSON.stringify({ version: v }) });
      assert.equal(r.status, 400, JSON.stringify(v));
    }
    for (const p of ['/api/blocked/..', '/api/blocked/%2e%2e', '/api/blocked/a%2Fb', '/api/blocked/a/b', '/api/blocked/%00', '/api/blocked/%zz', '/api/blocked/']) {
      const r = await req(sock, 'DELETE', p);
      assert.equal(r.status, 400, p);
    }
    assert.equal(fake.snapshot(), before);
  });

  test('GET /api/blocked lists reasons; DELETE of an unknown version is 404; of a blocked one 200', async () => {
    const list = await req(sock, 'GET', '/api/blocked');
    assert.equal(list.status, 200);
    assert.deepEqual(list.json.map((b: { version: string }) => b.version), ['1.2.1']);
    assert.match(list.json[0].reason, /crashed/);
    const unknown = await req(sock, 'DELETE', '/api/blocked/9.9.9');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.error, '9.9.9 is not blocked');
    assert.equal(fake.blockedList.length, 1);
    const ok = await req(tcp, 'DELETE', '/api/blocked/1.2.1', { headers: auth });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.json, { unblocked: '1.2.1' });
    assert.equal(fake.blockedList.length, 0);
    assert.ok(fake.history.some((h) => h.event === 'unblock' && h.version === '1.2.1'));
    // Put it back for the tests that follow.
    fake.blockedList.push({ version: '1.2.1', reason: 'crashed 2 times during its trial (exit 1)', at: new Date().toISOString() });
  });

  test('POST /api/check answers 202 with an action that finishes, readable in /api/status', async () => {
    const r = await req(sock, 'POST', '/api/check');
    assert.equal(r.status, 202);
    assert.equal(r.json.kind, 'check');
    assert.equal(r.json.state, 'running');
    const done = await until('the check to finish', async () => {
      const s = await req(sock, 'GET', '/api/status');
      const a = s.json.actions.find((x: { id: string }) => x.id === r.json.id);
      return a.state !== 'running' && s.json;
    });
    assert.equal(done.available, '1.3.0');
    assert.ok(done.lastCheck.ok);
  });

  test('POST /api/update walks the phases to a committed trial; a second update at once is 409', async () => {
    const r = await req(tcp, 'POST', '/api/update', { body: '{"version":"1.3.0"}', headers: { ...auth, 'content-type': 'application/json' } });
    assert.equal(r.status, 202);
    assert.equal(r.json.kind, 'update');
    assert.equal(r.json.version, '1.3.0');
    const again = await req(sock, 'POST', '/api/update', { body: '{}' });
    assert.equal(again.status, 409);
    assert.match(again.json.error, /already running/);
    assert.equal(again.json.action.state, 'failed');
    const listed = (await req(sock, 'GET', '/api/status')).json.actions.find((x: { id: string }) => x.id === again.json.action.id);
    assert.equal(listed.refused, true, 'status marks the refusal');
    const phases = new Set<string>();
    await until('the update to finish', async () => {
      const s = (await req(sock, 'GET', '/api/status')).json;
      phases.add(s.phase);
      return s.actions.find((x: { id: string }) => x.id === r.json.id).state !== 'running';
    });
    assert.ok(phases.has('downloading') || phases.has('trial'), [...phases].join(','));
    assert.equal(fake.current, '1.3.0');
    assert.equal(fake.previous, '1.1.0');
  });

  test('POST /api/ready commits a trial at once; without a trial it says so', async () => {
    const none = await req(sock, 'POST', '/api/ready');
    assert.equal(none.status, 200);
    assert.equal(none.json.ready, false);
    fake.trialTicks = 10_000; // would outlast the test: only ready() can commit it
    const r = await req(sock, 'POST', '/api/update', { body: '{"version":"1.2.0"}' });
    assert.equal(r.status, 202);
    await until('the trial', () => fake.phase === 'trial');
    const ok = await req(sock, 'POST', '/api/ready');
    assert.equal(ok.json.ready, true);
    assert.equal(ok.json.version, '1.2.0');
    await until('the commit', () => fake.actions.find((a) => a.id === r.json.id)!.state === 'done');
    assert.equal(fake.current, '1.2.0');
    fake.trialTicks = 3;
  });

  test('POST /api/rollback goes back to the previous version; with none it is 409', async () => {
    const r = await req(sock, 'POST', '/api/rollback');
    assert.equal(r.status, 202);
    await until('the rollback', () => fake.actions.find((a) => a.id === r.json.id)!.state === 'done');
    assert.equal(fake.current, '1.3.0');
    const saved = fake.previous;
    fake.previous = undefined;
    const none = await req(sock, 'POST', '/api/rollback');
    assert.equal(none.status, 409);
    assert.match(none.json.error, /no previous version/);
    fake.previous = saved;
  });

  test('webhook: a good signature triggers a check; bad or missing 401; replay 409; ping does nothing', async () => {
    const body = JSON.stringify({ action: 'published', release: { tag_name: 'v1.4.0' } });
    const sig = githubSignature(SECRET, body);
    const checks = fake.checkCalls;
    const good = await req(tcp, 'POST', '/api/notify', {
      body,
      headers: { 'x-hub-signature-256': sig, 'x-github-delivery': 'd-1', 'x-github-event': 'release', 'content-type': 'application/json' },
    });
    assert.equal(good.status, 202, good.text);
    assert.equal(good.json.result, 'started');
    assert.equal(fake.checkCalls, checks + 1);
    await until('the check', () => fake.actions.every((a) => a.state !== 'running'));

    const before = fake.snapshot();
    const bad = await req(tcp, 'POST', '/api/notify', { body, headers: { 'x-hub-signature-256': githubSignature('other', body), 'x-github-delivery': 'd-2' } });
    assert.equal(bad.status, 401);
    const tampered = await req(tcp, 'POST', '/api/notify', { body: body + ' ', headers: { 'x-hub-signature-256': sig, 'x-github-delivery': 'd-3' } });
    assert.equal(tampered.status, 401);
    const missing = await req(sock, 'POST', '/api/notify', { body, headers: { 'x-github-delivery': 'd-4' } });
    assert.equal(missing.status, 401, 'the secret applies on the socket too');
    const bearerOnly = await req(tcp, 'POST', '/api/notify', { body, headers: { ...auth, 'x-github-delivery': 'd-5' } });
    assert.equal(bearerOnly.status, 401, 'with a secret set, a signature is required');
    const replay = await req(tcp, 'POST', '/api/notify', { body, headers: { 'x-hub-signature-256': sig, 'x-github-delivery': 'd-1' } });
    assert.equal(replay.status, 409);
    assert.match(replay.json.error, /already received/);
    const noDelivery = await req(tcp, 'POST', '/api/notify', { body, headers: { 'x-hub-signature-256': sig } });
    assert.equal(noDelivery.status, 400);
    assert.equal(fake.snapshot(), before);

    const ping = await req(tcp, 'POST', '/api/notify', { body: '{}', headers: { 'x-hub-signature-256': githubSignature(SECRET, '{}'), 'x-github-delivery': 'p-1', 'x-github-event': 'ping' } });
    assert.equal(ping.status, 200);
    assert.equal(ping.json.pong, true);
    assert.equal(fake.snapshot(), before);
  });

  test('GET /metrics: Prometheus text with versions, counters, trial, services and process defaults', async () => {
    const r = await req(tcp, 'GET', '/metrics', { headers: auth });
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /text\/plain/);
    const t = r.text;
    assert.match(t, /^molt_version_info\{version="1\.3\.0"\} 1$/m);
    assert.match(t, /^molt_previous_version_info\{version="1\.2\.0"\} 1$/m);
    assert.match(t, /^molt_blocked_versions 1$/m);
    assert.match(t, /^molt_update_phase\{phase="idle"\} 1$/m);
    assert.match(t, /^molt_update_phase\{phase="trial"\} 0$/m);
    assert.match(t, /^molt_trial_active 0$/m);
    assert.match(t, /^# TYPE molt_checks_total counter$/m);
    // From the history: the fake's old commit of 1.1.0 plus 1.3.0 and 1.2.0; its old rollback plus ours.
    assert.match(t, /^molt_updates_total 3$/m);
    assert.match(t, /^molt_rollbacks_total 2$/m);
    assert.match(t, /^molt_checks_total [1-9]$/m);
    assert.match(t, /^molt_last_check_timestamp_seconds \d/m);
    assert.match(t, /^molt_last_check_success 1$/m);
    assert.match(t, /^molt_service_up\{service="app"\} 1$/m);
    assert.match(t, /^molt_service_restarts_total\{service="app"\} 0$/m);
    assert.match(t, /^molt_service_state_seconds\{service="app"\} (8|9)\d$/m);
    assert.match(t, /^process_cpu_user_seconds_total /m);
    assert.match(t, /^nodejs_eventloop_lag_seconds /m);
  });

  test('webhook bodies are bounded at 1 MiB (413)', async () => {
    const big = Buffer.alloc(1024 * 1024 + 10, 0x20);
    const r = await req(tcp, 'POST', '/api/notify', { body: big, headers: { 'x-hub-signature-256': githubSignature(SECRET, big), 'x-github-delivery': 'big-1' } });
    assert.equal(r.status, 413);
  });

  test('GET /healthz: 200 while the app is up, 503 with the reason when it is down', async () => {
    const ok = await req(sock, 'GET', '/healthz');
    assert.equal(ok.status, 200);
    assert.equal(ok.json.ok, true);
    serviceDir(servicesRoot, 'app', 0, 'down');
    const down = await req(sock, 'GET', '/healthz');
    assert.equal(down.status, 503);
    assert.match(down.json.error, /service app/);
    serviceDir(servicesRoot, 'app', 4250, 'run');
    // The pid changed: the sampled restart counter sees a restart.
    const m = await req(sock, 'GET', '/metrics');
    assert.match(m.text, /^molt_service_restarts_total\{service="app"\} 1$/m);
  });
});

test('no log line of the server tests holds the token or the webhook secret, and requests were logged', () => {
  assert.ok(logLines.some((l) => /^molt: api: request via=tcp method=GET path=\/api\/status status=400$/.test(l)), 'the refused query request is logged, without its query');
  for (const l of logLines) {
    assert.ok(!l.includes(TOKEN), l);
    assert.ok(!l.includes(SECRET), l);
  }
});

describe('loopback admin without a token', () => {
  test('open to local tools, closed to other sites: cross-origin and DNS-rebound requests are 403', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-lo-'));
    const fake = new FakeUpdater();
    const api = await startApi(fake, { socket: path.join(tmp, 'm.sock'), adminAddr: '127.0.0.1:0' });
    try {
      const t = { port: api.admin!.port };
      const before = fake.snapshot();
      const csrf = await req(t, 'POST', '/api/check', { headers: { origin: 'http://evil.example', 'content-type': 'text/plain' }, body: 'x' });
      assert.equal(csrf.status, 403);
      assert.equal(csrf.json.error, 'cross-origin request refused');
      const site = await req(t, 'POST', '/api/rollback', { headers: { 'sec-fetch-site': 'cross-site' } });
      assert.equal(site.status, 403);
      const rebound = await req(t, 'POST', '/api/check', { headers: { host: `evil.example:${t.port}` } });
      assert.equal(rebound.status, 403);
      assert.match(rebound.json.error, /not a loopback name/);
      assert.equal(fake.snapshot(), before);
      const ok = await req(t, 'POST', '/api/check');
      assert.equal(ok.status, 202);
      const sameOrigin = await req(t, 'POST', '/api/check', { headers: { origin: `http://127.0.0.1:${t.port}` } });
      assert.equal(sameOrigin.status, 202);
    } finally {
      await api.close();
      fake.close();
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('webhook flood', () => {
  test('50 triggers at once: one check runs, one is queued, the rest coalesce', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-flood-'));
    const fake = new FakeUpdater({ holdChecks: true });
    const api = await startApi(fake, { socket: path.join(tmp, 'm.sock'), triggerPollMs: 10 });
    try {
      const sock = { socket: path.join(tmp, 'm.sock') };
      const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => req(sock, 'POST', '/api/notify', { body: '{}', headers: { 'x-github-delivery': `flood-${i}` } })));
      assert.ok(replies.every((r) => r.status === 202));
      const results = replies.map((r) => r.json.result);
      assert.equal(results.filter((r) => r === 'started').length, 1);
      assert.equal(results.filter((r) => r === 'queued').length, 1);
      assert.equal(results.filter((r) => r === 'coalesced').length, 48);
      assert.equal(fake.checkCalls, 1);
      // The first ends: the queued one starts, and only it.
      assert.ok(fake.releaseCheck());
      await until('the queued check', () => fake.checkCalls === 2);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(fake.checkCalls, 2);
      assert.ok(fake.releaseCheck());
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(fake.checkCalls, 2, 'nothing else was queued');
      assert.equal(fake.maxConcurrentChecks, 1);
      // A check the schedule started counts as running too: the trigger queues behind it.
      fake.check();
      const q = await req(sock, 'POST', '/api/notify', { body: '{}' });
      assert.equal(q.json.result, 'queued');
      assert.equal(fake.checkCalls, 3);
      assert.ok(fake.releaseCheck());
      await until('the queued check behind the scheduled one', () => fake.checkCalls === 4);
      assert.equal(fake.maxConcurrentChecks, 1);
      fake.releaseCheck();
    } finally {
      await api.close();
      fake.close();
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  test('without a secret, the TCP webhook needs the Bearer token', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-hook-'));
    const fake = new FakeUpdater();
    const api = await startApi(fake, { socket: path.join(tmp, 'm.sock'), adminAddr: '127.0.0.1:0', adminToken: TOKEN });
    try {
      const t = { port: api.admin!.port };
      assert.equal((await req(t, 'POST', '/api/notify', { body: '{}' })).status, 401);
      assert.equal(fake.checkCalls, 0);
      const ok = await req(t, 'POST', '/api/notify', { body: '{}', headers: auth });
      assert.equal(ok.status, 202);
      assert.equal(fake.checkCalls, 1);
    } finally {
      await api.close();
      fake.close();
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
