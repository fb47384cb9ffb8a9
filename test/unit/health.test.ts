import { test } from 'node:test';
import assert from 'node:assert/strict';
import { afterCheck, formatHealth, initialHealth, onRestart, parseHealth, parseNotificationFd, type HealthState } from '../../src/supervise/health.js';

const policy = { failures: 3, cooldownMs: 300_000, noHeal: false };

function run(results: boolean[], start: HealthState = initialHealth(), now = 0, p = policy) {
  let s = start;
  const actions: string[] = [];
  for (const r of results) {
    const out = afterCheck(s, r, now, p);
    s = out.state;
    actions.push(out.action);
  }
  return { s, actions };
}

test('three failures in a row heal; a pass in between resets the count', () => {
  assert.deepEqual(run([false, false, true, false, false]).actions, ['none', 'none', 'none', 'none', 'none']);
  const r = run([false, false, false]);
  assert.deepEqual(r.actions, ['none', 'none', 'heal']);
  assert.equal(r.s.heals, 1);
  assert.equal(r.s.healthy, false);
});

test('unhealthy again within the cooldown: give up once, never loop', () => {
  const healed = run([false, false, false], initialHealth(), 1000).s;
  const again = run([false, false, false, false, false, false], onRestart(healed), 60_000);
  assert.deepEqual(again.actions, ['none', 'none', 'give-up', 'none', 'none', 'none']);
  assert.equal(again.s.heals, 1, 'no second restart inside the cooldown');
  const later = run([false, false, false], onRestart(healed), 1000 + 300_000);
  assert.deepEqual(later.actions, ['none', 'none', 'heal'], 'after the cooldown a heal is allowed again');
});

test('no-heal reports unhealthy once and never restarts', () => {
  const r = run([false, false, false, false], initialHealth(), 0, { ...policy, noHeal: true });
  assert.deepEqual(r.actions, ['none', 'none', 'unhealthy', 'none']);
  assert.equal(r.s.heals, 0);
});

test('a pass makes it healthy and clears a give-up', () => {
  const r = run([true]);
  assert.equal(r.s.healthy, true);
  const s = afterCheck({ ...initialHealth(), gaveUp: true, failures: 4, healthy: false }, true, 0, policy).state;
  assert.equal(s.gaveUp, false);
  assert.equal(s.failures, 0);
});

test('a restart forgets readiness and the last result, keeps the heal history', () => {
  const s = onRestart({ ...initialHealth(), ready: true, healthy: false, failures: 2, heals: 1, lastHealMono: 5 });
  assert.deepEqual([s.ready, s.healthy, s.failures, s.heals, s.lastHealMono], [false, undefined, 0, 1, 5]);
});

test('health file round-trips; notification-fd must be 3..255', () => {
  const text = formatHealth({ ...initialHealth(), ready: true }, { pid: 9, hasCheck: false, notificationFd: 3, lastCheck: undefined });
  assert.deepEqual(parseHealth(text), { pid: 9, ready: true, healthy: null, failures: 0, checks: 0, heals: 0, gaveUp: false, hasCheck: false, notificationFd: 3, lastCheck: null, failed: false });
  assert.equal(parseHealth('garbage'), undefined);
  assert.equal(parseNotificationFd('3\n'), 3);
  for (const bad of ['1', '2', 'x', '', '256', '3.5']) assert.equal(parseNotificationFd(bad), undefined, bad);
});
