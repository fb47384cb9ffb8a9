// The control plane's pure parts: version and body checks, credentials in URLs,
// admin address and token rules, GitHub signatures, replay log, health verdict,
// the CLI's status table and progress output, metrics counters.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { adminProblem, bearerChecker, githubSignature, githubSignatureValid, isLoopbackHost, parseAdminAddr } from '../../src/api/auth.js';
import { healthProblem } from '../../src/api/health.js';
import { RestartCounter, StatusCounter, createMetrics } from '../../src/api/metrics.js';
import { matchRoute } from '../../src/api/routes.js';
import { browserProblem } from '../../src/api/auth.js';
import { DeliveryLog, deliveryIdValid } from '../../src/api/trigger.js';
import type { ActionInfo, ServiceInfo, UpdaterStatus } from '../../src/api/types.js';
import { blockReason, credentialInQuery, parseJsonObject, splitTarget, versionProblem } from '../../src/api/validate.js';
import { ProgressReporter, formatBlocked, formatStatus, progressBar, rel, span } from '../../src/cli/control-format.js';

const NOW = Date.parse('2026-03-01T12:00:00Z');
const at = (secondsAgo: number) => new Date(NOW - secondsAgo * 1000).toISOString();

function status(extra: Partial<UpdaterStatus> = {}): UpdaterStatus {
  return { phase: 'idle', source: 'github:acme/app', policy: 'latest', releases: [], blocked: [], history: [], actions: [], ...extra };
}

describe('validate', () => {
  test('blockReason: an optional one-line reason; unknown fields and long or non-string reasons refused', () => {
    assert.equal(blockReason({}), undefined);
    assert.equal(blockReason({ reason: '  bad\n migration ' }), 'bad migration');
    assert.deepEqual(blockReason({ reason: 7 }), { problem: 'reason must be a string of at most 200 characters' });
    assert.deepEqual(blockReason({ reason: 'x'.repeat(201) }), { problem: 'reason must be a string of at most 200 characters' });
    assert.match((blockReason({ why: 'x' }) as { problem: string }).problem, /unknown field "why"/);
  });
  test('matchRoute: PUT and DELETE /api/blocked/VERSION are two routes; another method gets 405 naming both', () => {
    assert.deepEqual(matchRoute('PUT', '/api/blocked/1.2.0'), { name: 'block', params: ['1.2.0'] });
    assert.deepEqual(matchRoute('DELETE', '/api/blocked/1.2.0'), { name: 'unblock', params: ['1.2.0'] });
    assert.deepEqual(matchRoute('POST', '/api/blocked/1.2.0'), { status: 405, allow: 'DELETE, PUT' });
    assert.deepEqual(matchRoute('DELETE', '/api/self/blocked/1.2.0'), { name: 'unblock-self', params: ['1.2.0'] }, 'molt\'s own (MOLT_SELF)');
    assert.deepEqual(matchRoute('PUT', '/api/self/blocked/1.2.0'), { status: 405, allow: 'DELETE' });
  });
  test('versionProblem accepts release names and refuses what could walk the file system', () => {
    for (const ok of ['1.2.3', 'v1.2.3', '1.0.0-rc.1+build.5', 'sha256:abcdef0123', '2024_01_05']) assert.equal(versionProblem(ok), undefined, ok);
    assert.match(versionProblem('../x')!, /separator/);
    assert.match(versionProblem('a\\b')!, /separator/);
    assert.match(versionProblem('..')!, /'\.\.'/);
    assert.match(versionProblem('1..2')!, /'\.\.'/);
    assert.match(versionProblem('.')!, /'\.'/);
    assert.match(versionProblem('1\u0000')!, /control/);
    assert.match(versionProblem('1\u0085')!, /control/);
    assert.match(versionProblem('1 2')!, /white space/);
    assert.match(versionProblem('')!, /empty/);
    assert.match(versionProblem('x'.repeat(129))!, /longer than 128/);
    assert.equal(versionProblem('x'.repeat(128)), undefined);
    assert.match(versionProblem(5)!, /string/);
  });

  test('parseJsonObject: empty is {}, objects pass, everything else is a one-line error', () => {
    assert.deepEqual(parseJsonObject(Buffer.from('')), {});
    assert.deepEqual(parseJsonObject(Buffer.from(' {"version":"1"} ')), { version: '1' });
    assert.throws(() => parseJsonObject(Buffer.from('{')), /not valid JSON/);
    assert.throws(() => parseJsonObject(Buffer.from('[]')), /must be a JSON object/);
    assert.throws(() => parseJsonObject(Buffer.from('null')), /must be a JSON object/);
  });

  test('credentialInQuery spots token-like parameter names, escaped or not', () => {
    for (const q of ['token=x', 'a=1&access_token=x', 'api_key=1', 'Authorization=1', 'to%6Ben=1', 'SECRET', 'password=', 'sig=1'])
      assert.equal(credentialInQuery(q), true, q);
    for (const q of ['', 'version=1.2.3', 'json=1', 'x=%zz']) assert.equal(credentialInQuery(q), false, q);
  });

  test('splitTarget keeps .. as written (no normalisation into another route)', () => {
    assert.deepEqual(splitTarget('/api/blocked/../status?x=1'), { path: '/api/blocked/../status', query: 'x=1' });
    assert.deepEqual(splitTarget('/a#frag?no'), { path: '/a', query: '' });
    assert.deepEqual(matchRoute('DELETE', '/api/blocked/../status'), { name: 'unblock', params: ['../status'] });
    assert.deepEqual(matchRoute('POST', '/api/status'), { status: 405, allow: 'GET, HEAD' });
    assert.deepEqual(matchRoute('GET', '/api/status/'), { status: 404 });
  });
});

describe('auth', () => {
  test('parseAdminAddr and the loopback rule', () => {
    assert.deepEqual(parseAdminAddr('127.0.0.1:8080'), { host: '127.0.0.1', port: 8080 });
    assert.deepEqual(parseAdminAddr('[::1]:9'), { host: '::1', port: 9 });
    assert.deepEqual(parseAdminAddr(':8080'), { host: '0.0.0.0', port: 8080 });
    assert.deepEqual(parseAdminAddr('localhost:1'), { host: 'localhost', port: 1 });
    for (const bad of ['8080', '127.0.0.1:', '127.0.0.1:99999', '::1:80', 'a b:1', '[zz]:1']) assert.throws(() => parseAdminAddr(bad), /MOLT_ADMIN_ADDR=/, bad);
    for (const lo of ['127.0.0.1', '127.1.2.3', '::1', 'localhost', '::ffff:127.0.0.1']) assert.equal(isLoopbackHost(lo), true, lo);
    for (const no of ['0.0.0.0', '10.0.0.1', '::', 'example.com', '128.0.0.1']) assert.equal(isLoopbackHost(no), false, no);
    assert.match(adminProblem({ host: '0.0.0.0', port: 1 }, undefined)!, /not a loopback address/);
    assert.equal(adminProblem({ host: '0.0.0.0', port: 1 }, 'a-long-enough-token!'), undefined);
    assert.equal(adminProblem({ host: '127.0.0.1', port: 1 }, undefined), undefined);
    assert.match(adminProblem({ host: '127.0.0.1', port: 1 }, 'short')!, /too short/);
  });

  test('bearerChecker accepts exactly the token', () => {
    const ok = bearerChecker('s3cret-token-s3cret');
    assert.equal(ok('Bearer s3cret-token-s3cret'), true);
    assert.equal(ok('bearer s3cret-token-s3cret'), true);
    assert.equal(ok('Bearer s3cret-token-s3cre'), false);
    assert.equal(ok('Bearer s3cret-token-s3cret2'), false);
    assert.equal(ok('s3cret-token-s3cret'), false);
    assert.equal(ok('Bearer '), false);
    assert.equal(ok(undefined), false);
  });

  test('GitHub signatures: the HMAC of the exact body, hex of the right length only', () => {
    const body = Buffer.from('{"zen":"Keep it logically awesome."}');
    const sig = githubSignature('k', body);
    assert.equal(githubSignatureValid('k', body, sig), true);
    assert.equal(githubSignatureValid('k', body, sig.toUpperCase().replace('SHA256=', 'sha256=')), true);
    assert.equal(githubSignatureValid('k2', body, sig), false);
    assert.equal(githubSignatureValid('k', Buffer.concat([body, Buffer.from(' ')]), sig), false);
    assert.equal(githubSignatureValid('k', body, sig.slice(0, -2)), false);
    assert.equal(githubSignatureValid('k', body, 'sha1=' + sig.slice(7)), false);
    assert.equal(githubSignatureValid('k', body, undefined), false);
  });

  test('browserProblem: cross-origin and rebound requests', () => {
    assert.equal(browserProblem('127.0.0.1:8080', undefined, undefined, false), undefined);
    assert.equal(browserProblem('localhost:8080', 'http://localhost:8080', 'same-origin', false), undefined);
    assert.equal(browserProblem('[::1]:8080', undefined, 'none', false), undefined);
    assert.equal(browserProblem('example.com:8080', undefined, undefined, true), undefined, 'with a token any Host is fine');
    assert.match(browserProblem('example.com:8080', undefined, undefined, false)!, /not a loopback name/);
    assert.match(browserProblem(undefined, undefined, undefined, false)!, /not a loopback name/);
    assert.equal(browserProblem('127.0.0.1:8080', 'http://evil.example', undefined, true), 'cross-origin request refused');
    assert.equal(browserProblem('127.0.0.1:8080', 'null', undefined, true), 'cross-origin request refused');
    assert.equal(browserProblem('127.0.0.1:8080', undefined, 'cross-site', true), 'cross-site request refused');
  });

  test('DeliveryLog refuses replays and forgets the oldest past its bound', () => {
    const log = new DeliveryLog(3);
    assert.equal(log.record('a'), true);
    assert.equal(log.record('a'), false);
    log.record('b');
    log.record('c');
    log.record('d'); // forgets a
    assert.equal(log.record('a'), true);
    assert.equal(log.record('d'), false);
    assert.equal(deliveryIdValid('72d3162e-cc78-11e3-81ab-4c9367dc0958'), true);
    assert.equal(deliveryIdValid('a b'), false);
    assert.equal(deliveryIdValid('x'.repeat(101)), false);
  });
});

describe('health verdict', () => {
  const up: ServiceInfo = { name: 'app', state: 'up', pid: 7, seconds: 30, normallyUp: true, supervised: true };
  const action = (kind: ActionInfo['kind'], state: ActionInfo['state'], secondsAgo: number, id = `${kind}-${secondsAgo}`): ActionInfo => ({ id, kind, state, startedAt: at(secondsAgo), message: 'boom' });

  test('healthy when the app is up and nothing failed', () => {
    assert.equal(healthProblem(status(), up), undefined);
    assert.equal(healthProblem(status({ actions: [action('check', 'failed', 1)] }), up), undefined, 'a failed check is not a failing update');
  });
  test('unhealthy for a missing, down or unsupervised app', () => {
    assert.match(healthProblem(status(), null)!, /service app not found/);
    assert.match(healthProblem(status(), { ...up, state: 'down' })!, /service app is down/);
    assert.match(healthProblem(status(), { ...up, supervised: false })!, /not supervised/);
    const checked = { ready: true, healthy: false, failures: 3, heals: 0, gaveUp: false };
    assert.equal(healthProblem(status(), { ...up, health: { ...checked, healthy: true } }), undefined);
    assert.equal(healthProblem(status(), { ...up, health: { ...checked, healthy: null } }), undefined, 'not checked yet');
    assert.equal(healthProblem(status(), { ...up, health: checked }), 'service app fails its check (3 in a row)');
    assert.equal(healthProblem(status(), { ...up, health: { ...checked, gaveUp: true } }), 'service app fails its check and healing gave up');
  });
  test('unhealthy while rolling back or when the newest update failed; a later success heals', () => {
    assert.match(healthProblem(status({ phase: 'rolling-back' }), up)!, /rolling back/);
    const failed = action('update', 'failed', 10);
    assert.match(healthProblem(status({ actions: [failed] }), up)!, /update failed: boom/);
    assert.equal(healthProblem(status({ actions: [failed, action('update', 'done', 5)] }), up), undefined);
    assert.equal(healthProblem(status({ actions: [failed] }), up, 'app', new Set([failed.id])), undefined, 'a refusal is not a failure');
  });
});

describe('metrics counters', () => {
  test('UpdaterMetrics counts what the updater feeds', () => {
    const m = createMetrics();
    m.onCheck(true);
    m.onCheck(false);
    m.onDownloadBytes(1000);
    m.onDownloadBytes(-5);
    m.onEvent({ at: at(0), event: 'commit', version: '2' });
    m.onEvent({ at: at(0), event: 'rollback', version: '3' });
    m.onEvent({ at: at(0), event: 'check' });
    m.onEvent({ at: at(0), event: 'block', version: '4', detail: 'crashed 2 times during its trial' });
    m.onEvent({ at: at(0), event: 'block', version: '5', detail: 'no signature', cause: 'signature' });
    assert.deepEqual(m.counts, { checks: 2, checkErrors: 1, updates: 1, updateFailures: 0, rollbacks: 1, bytesDownloaded: 1000, signatureFailures: 1 });
  });

  test('StatusCounter derives counts from successive snapshots without double counting', () => {
    const c = new StatusCounter();
    const h1 = { at: at(100), event: 'commit' as const, version: '1' };
    c.observe(status({ lastCheck: { at: at(50), ok: true }, history: [h1], download: { version: '2', bytes: 100, total: 1000 } }));
    c.observe(status({ lastCheck: { at: at(50), ok: true }, history: [h1], download: { version: '2', bytes: 600, total: 1000 } }));
    c.observe(status({ lastCheck: { at: at(10), ok: false }, history: [h1, { at: at(5), event: 'rollback', version: '2' }], actions: [{ id: 'u1', kind: 'update', state: 'failed', startedAt: at(20) }] }));
    c.observe(status({ lastCheck: { at: at(10), ok: false }, history: [h1], actions: [{ id: 'u1', kind: 'update', state: 'failed', startedAt: at(20) }] }));
    assert.deepEqual(c.counts, { checks: 2, checkErrors: 1, updates: 1, updateFailures: 1, rollbacks: 1, bytesDownloaded: 600, signatureFailures: 0 });
    const refusedOnly = new StatusCounter(new Set(['r1']));
    refusedOnly.observe(status({ actions: [{ id: 'r1', kind: 'update', state: 'failed', startedAt: at(1), message: 'an update is already running' }] }));
    assert.equal(refusedOnly.counts.updateFailures, 0, 'a refusal is not a failed update');
  });

  test('RestartCounter counts new pids after the first', () => {
    const r = new RestartCounter();
    const svc = (pid: number): ServiceInfo[] => [{ name: 'app', state: pid ? 'up' : 'down', pid, normallyUp: true, supervised: true }];
    r.observe(svc(10));
    r.observe(svc(10));
    r.observe(svc(0));
    r.observe(svc(11));
    r.observe(svc(12));
    assert.equal(r.restarts.get('app'), 2);
  });
});

describe('CLI output', () => {
  test('span and rel', () => {
    assert.equal(span(5), '5s');
    assert.equal(span(125), '2m 5s');
    assert.equal(span(7200), '2h');
    assert.equal(span(90061), '1d 1h');
    assert.equal(rel(at(90), NOW), '1m 30s ago');
    assert.equal(rel(at(-300), NOW), 'in 5m');
    assert.equal(rel(undefined, NOW), '');
  });

  test('progressBar', () => {
    assert.equal(progressBar(512 * 1024, 1024 * 1024, 10), '[#####.....]  50%  512.0 KiB of 1.0 MiB');
    assert.equal(progressBar(0, 10, 4), '[....]   0%  0 B of 10 B');
    assert.equal(progressBar(2048, undefined), '2.0 KiB downloaded');
  });

  test('formatStatus: a compact table of versions, trial, services, blocked and recent history', () => {
    const s = status({
      host: 'web-1',
      phase: 'trial',
      current: '1.3.0',
      previous: '1.2.0',
      available: '1.4.0',
      waiting: 'schedule mo-fr 9-17',
      lastCheck: { at: at(120), ok: true },
      nextCheckAt: at(-180),
      trial: { version: '1.3.0', from: '1.2.0', startedAt: at(10), deadlineAt: at(-20), crashes: 1, crashLimit: 2, ready: false, readyMode: 'explicit' },
      blocked: [{ version: '1.2.1', reason: 'crashed 2 times', at: at(7200) }],
      history: [
        { at: at(3600), event: 'commit', version: '1.2.0', from: '1.1.0' },
        { at: at(10), event: 'update', version: '1.3.0', from: '1.2.0' },
      ],
      services: [
        { name: 'app', state: 'up', pid: 12, seconds: 10, normallyUp: true, supervised: true },
        { name: 'updater', state: 'up', pid: 9, seconds: 86400, normallyUp: true, supervised: true },
      ],
    });
    assert.equal(
      formatStatus(s, NOW),
      [
        'molt on web-1: trial',
        '  current     1.3.0',
        '  previous    1.2.0',
        '  available   1.4.0  (waiting: schedule mo-fr 9-17)',
        '  source      github:acme/app  policy latest',
        '  last check  2m ago, ok; next in 3m',
        '  trial       1.3.0 (from 1.2.0)  20s left  crashes 1/2  waiting for ready',
        '',
        'services',
        '  app      up  pid 12  10s',
        '  updater  up  pid 9   1d',
        '',
        'blocked',
        '  1.2.1  2h ago  crashed 2 times',
        '',
        'recent',
        '  10s ago  update  1.2.0 -> 1.3.0',
        '  1h ago   commit  1.1.0 -> 1.2.0',
        '',
      ].join('\n'),
    );
    assert.equal(formatBlocked([], NOW), 'no blocked versions\n');
  });

  test('ProgressReporter: phase lines and 10% steps without a terminal; one redrawn bar on a terminal', () => {
    const dl = (bytes: number) => status({ phase: 'downloading', download: { version: '2.0.0', bytes, total: 1000 } });
    const plain = new ProgressReporter(false);
    let out = '';
    for (const b of [0, 50, 120, 130, 500, 1000]) out += plain.step(dl(b), NOW);
    out += plain.step(status({ phase: 'trial' }), NOW);
    assert.equal(
      out,
      [
        'molt: downloading 2.0.0',
        'molt: download 2.0.0 0% (0 B of 1000 B)',
        'molt: download 2.0.0 12% (120 B of 1000 B)',
        'molt: download 2.0.0 50% (500 B of 1000 B)',
        'molt: download 2.0.0 100% (1000 B of 1000 B)',
        'molt: on trial',
        '',
      ].join('\n'),
    );
    const tty = new ProgressReporter(true);
    let t = tty.step(dl(100), NOW) + tty.step(dl(900), NOW) + tty.step(status({ phase: 'stopping' }), NOW);
    assert.equal(t.split('\n').length, 4, 'the bar is redrawn in place: phase line, bar line ended once, next phase');
    assert.match(t, /\r {2}\[#{27}\.{3}\]  90%/);
    t = tty.endBar();
    assert.equal(t, '');
  });
});
