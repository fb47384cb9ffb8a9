// Notifications: Discord/Slack/plain JSON bodies, delivery to a loopback webhook
// with retries on 5xx and 429, giving up after the bound, never blocking or throwing.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createNotifier, flavorOf, messageText, notifiable, notificationBody } from '../../src/api/notify.js';
import { setLogLevel, setLogSink } from '../../src/common/log.js';

const rollback = { at: '2026-03-01T12:00:00.000Z', event: 'rollback' as const, version: '1.2.0', from: '1.3.0', detail: 'crashed 2 times during its trial', host: 'web-1' };

describe('notification bodies', () => {
  test('Discord and Slack URLs are recognised, anything else gets plain JSON', () => {
    assert.equal(flavorOf('https://discord.com/api/webhooks/1/abc'), 'discord');
    assert.equal(flavorOf('https://canary.discordapp.com/api/webhooks/1/abc'), 'discord');
    assert.equal(flavorOf('https://discord.com/channels/1'), 'json');
    assert.equal(flavorOf('https://hooks.slack.com/services/T/B/X'), 'slack');
    assert.equal(flavorOf('https://hooks.slack.com.evil.example/services/T'), 'json');
    assert.equal(flavorOf('http://127.0.0.1:9/hook'), 'json');
    assert.equal(flavorOf('not a url'), 'json');
  });

  test('each flavour carries one readable line', () => {
    const line = 'molt on web-1: rolled back 1.3.0 → 1.2.0: crashed 2 times during its trial';
    assert.equal(messageText(rollback), line);
    assert.deepEqual(notificationBody('https://discord.com/api/webhooks/1/x', rollback), { content: line });
    assert.deepEqual(notificationBody('https://hooks.slack.com/services/T/B/X', rollback), { text: line });
    const plain = notificationBody('http://127.0.0.1/x', rollback);
    assert.equal(plain.text, line);
    assert.equal(plain.event, 'rollback');
    assert.equal(plain.version, '1.2.0');
    assert.equal(plain.host, 'web-1');
    assert.equal(messageText({ at: '', event: 'commit', version: '2.0.0', from: '1.9.0' }), 'molt: 2.0.0 passed its trial and is now current (was 1.9.0)');
    assert.equal(messageText({ at: '', event: 'block', version: '2.0.1', detail: 'missed its ready deadline' }), 'molt: blocked 2.0.1: missed its ready deadline');
    assert.equal(messageText({ at: '', event: 'crash-loop', version: '2.0.0', detail: '5 exits in 60s' }), 'molt: 2.0.0 is crash-looping: 5 exits in 60s');
  });

  test('molt\'s own update (of: molt) names molt\'s versions as molt\'s, in the text and the JSON', () => {
    const of = 'molt' as const;
    assert.equal(messageText({ at: '', event: 'commit', version: '1.4.1', from: '1.4.0', of, host: 'box' }), 'molt on box: molt 1.4.1 passed its trial and is now current (was molt 1.4.0)');
    assert.equal(messageText({ at: '', event: 'block', version: '1.4.2', detail: 'did not re-execute', of }), 'molt: blocked molt 1.4.2: did not re-execute');
    assert.equal(messageText({ at: '', event: 'rollback', version: '1.4.1', from: '1.4.2', of }), 'molt: rolled back molt 1.4.2 → molt 1.4.1');
    const body = notificationBody('http://127.0.0.1/hook', { at: '', event: 'commit', version: '1.4.1', of });
    assert.equal(body['of'], 'molt');
    assert.equal(body['version'], '1.4.1', 'the JSON keeps the bare version');
    assert.equal(notificationBody('http://127.0.0.1/hook', { at: '', event: 'commit', version: '2.0.0' })['of'], undefined, 'the app\'s events carry no of');
  });

  test('only update, commit, rollback, block, crash-loop and the health events are sent', () => {
    assert.deepEqual(
      (['check', 'check-failed', 'download', 'update', 'commit', 'rollback', 'block', 'unblock', 'crash-loop', 'recover', 'unhealthy', 'healed', 'gave-up'] as const).filter((event) => notifiable({ at: '', event })),
      ['update', 'commit', 'rollback', 'block', 'crash-loop', 'unhealthy', 'healed', 'gave-up'],
    );
  });

  test('health events read as a sentence', () => {
    assert.equal(messageText({ at: '', event: 'unhealthy', version: '2.0.0', detail: 'its check fails (3 failed checks in a row)' }), 'molt: 2.0.0 is unhealthy: its check fails (3 failed checks in a row)');
    assert.equal(messageText({ at: '', event: 'healed', version: '2.0.0', host: 'web-1' }), 'molt on web-1: 2.0.0 failed its check and was restarted');
    assert.equal(messageText({ at: '', event: 'gave-up', version: '2.0.0' }), 'molt: 2.0.0 is still unhealthy after a restart; not restarting again');
  });
});

describe('notifier delivery', () => {
  let server: http.Server;
  let url: string;
  const got: { body: unknown; at: number }[] = [];
  let plan: number[] = [];
  const lines: string[] = [];

  before(async () => {
    setLogLevel('debug');
    setLogSink((l) => lines.push(l));
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const status = plan.shift() ?? 204;
        got.push({ body: JSON.parse(Buffer.concat(chunks).toString('utf8')), at: Date.now() });
        res.writeHead(status, status === 429 ? { 'retry-after': '0' } : {});
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook/SECRET-PART`;
  });
  after(async () => {
    setLogSink((l) => process.stderr.write(l + '\n'));
    setLogLevel('warn');
    await new Promise((r) => server.close(r));
  });

  test('a 500 and a 429 are retried until the message is delivered, in order, without blocking the caller', async () => {
    got.length = 0;
    plan = [500, 429, 204, 204];
    const n = createNotifier(url, { baseDelayMs: 10 });
    n.notify(rollback);
    n.notify({ at: rollback.at, event: 'block', version: '1.3.0', detail: 'crashed' });
    n.notify({ at: rollback.at, event: 'check' }); // not notifiable: dropped
    assert.equal(got.length, 0, 'nothing is sent from inside notify()');
    await n.idle();
    assert.equal(got.length, 4);
    assert.deepEqual(
      got.map((g) => (g.body as { event: string }).event),
      ['rollback', 'rollback', 'rollback', 'block'],
    );
    assert.ok(lines.every((l) => !l.includes('SECRET-PART')), 'the webhook URL path is never logged');
  });

  test('a 4xx other than 429 is not retried; a dead endpoint is given up after the bounded attempts', async () => {
    got.length = 0;
    plan = [400];
    const n = createNotifier(url, { baseDelayMs: 5 });
    n.notify(rollback);
    await n.idle();
    assert.equal(got.length, 1);

    const dead = http.createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const port = (dead.address() as AddressInfo).port;
    await new Promise((r) => dead.close(r));
    lines.length = 0;
    const n2 = createNotifier(`http://127.0.0.1:${port}/x`, { baseDelayMs: 5, attempts: 3 });
    n2.notify(rollback);
    await n2.idle();
    assert.ok(lines.some((l) => /molt: notify: gave up host=127\.0\.0\.1:\d+ event=rollback attempts=3/.test(l)), lines.join('\n'));
  });

  test('a hanging endpoint times out per attempt; the queue is bounded; bad or absent URLs are no-ops', async () => {
    const hang = http.createServer(() => {
      // never answers
    });
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    const port = (hang.address() as AddressInfo).port;
    lines.length = 0;
    const n = createNotifier(`http://127.0.0.1:${port}/x`, { attempts: 1, timeoutMs: 100, maxQueue: 2 });
    for (let i = 0; i < 5; i++) n.notify({ ...rollback, version: `v${i}` });
    await n.idle();
    hang.closeAllConnections();
    await new Promise((r) => hang.close(r));
    // Five notified at once with room for two: the three oldest are dropped, the two newest tried.
    assert.deepEqual(lines.filter((l) => l.includes('queue full, dropped')).map((l) => /version=(\S+)/.exec(l)![1]), ['v0', 'v1', 'v2'], lines.join('\n'));
    assert.deepEqual(lines.filter((l) => l.includes('gave up')).length, 2);

    const none = createNotifier(undefined);
    none.notify(rollback);
    await none.idle();
    const bad = createNotifier('::not a url::');
    bad.notify(rollback);
    await bad.idle();
  });
});
