import { test } from 'node:test';
import assert from 'node:assert/strict';
import { previousAfterRollback } from '../../src/update/bookkeeping.js';
import { healthEvents } from '../../src/update/health-events.js';
import { judgeTrial, type TrialObservation } from '../../src/update/phases.js';
import type { HealthFile } from '../../src/supervise/health.js';

test('after a rollback, previous is the newest install before the good one that is neither failed nor blocked', () => {
  const installed = ['1.0.0', '1.1.0', '1.2.0', '1.3.0'];
  assert.equal(previousAfterRollback(installed, '1.2.0', '1.3.0', []), '1.1.0');
  assert.equal(previousAfterRollback(installed, '1.2.0', '1.3.0', ['1.1.0']), '1.0.0');
  assert.equal(previousAfterRollback(installed, '1.0.0', '1.1.0', []), undefined, 'nothing older kept');
  assert.equal(previousAfterRollback(installed, '9.9.9', '1.3.0', []), undefined, 'the good one is not installed');
  // A manual rollback to 1.1.0 from 1.2.0: the failed one is newer, never a candidate.
  assert.equal(previousAfterRollback(installed, '1.1.0', '1.2.0', ['1.3.0']), '1.0.0');
  // Installed later but failed (a rollback to a version installed after it is not possible; still never chosen).
  assert.equal(previousAfterRollback(['1.3.0', '1.0.0', '1.2.0'], '1.2.0', '1.3.0', []), '1.0.0');
});

const h = (o: Partial<HealthFile> = {}): HealthFile => ({
  pid: 10, ready: false, healthy: true, failures: 0, checks: 3, heals: 0, gaveUp: false, hasCheck: true, notificationFd: null, lastCheck: null, ...o,
});

test('health events: a baseline first, then healed, gave up and unhealthy once per change', () => {
  assert.deepEqual(healthEvents(undefined, h({ healthy: false })), [], 'the first read is a baseline');
  assert.deepEqual(healthEvents(h(), h({ checks: 4 })), []);
  assert.deepEqual(healthEvents(h(), h({ healthy: false, heals: 1 })).map((e) => e.event), ['healed']);
  assert.deepEqual(healthEvents(h({ heals: 1, healthy: null, pid: 11 }), h({ heals: 1, pid: 11, healthy: false, gaveUp: true, failures: 1 })).map((e) => e.event), ['gave-up']);
  assert.deepEqual(healthEvents(h(), h({ healthy: false, failures: 3 })).map((e) => e.event), ['unhealthy'], 'no-heal');
  assert.match(healthEvents(h(), h({ healthy: false, failures: 3 }))[0]!.detail, /3 failed checks in a row/);
  assert.deepEqual(healthEvents(h({ healthy: false, failures: 3 }), h({ healthy: false, failures: 4 })), [], 'still unhealthy: said once');
  assert.deepEqual(healthEvents(h({ healthy: false, gaveUp: true }), h({ healthy: false, gaveUp: true, failures: 2 })), [], 'gave up: said once');
  assert.deepEqual(healthEvents(h({ healthy: false }), h({ healthy: true })), [], 'recovering is not news');
  assert.deepEqual(healthEvents(h(), undefined), [], 'no file (no supervisor): nothing');
});

const obs = (o: Partial<TrialObservation> = {}): TrialObservation => ({
  nowMs: 1000, startMs: 0, trialMs: 30_000, upSinceMs: 0, crashes: 0, crashLimit: 2, ready: false, readyMode: 'auto', ...o,
});

test('a check failing during the trial fails it at once, in either ready mode', () => {
  assert.deepEqual(judgeTrial(obs({ checkFailed: true })), { verdict: 'fail', reason: 'its check failed during its trial' });
  assert.deepEqual(judgeTrial(obs({ checkFailed: true, readyMode: 'explicit' })), { verdict: 'fail', reason: 'its check failed during its trial' });
  assert.deepEqual(judgeTrial(obs({ checkFailed: false })), { verdict: 'continue' });
  assert.equal(judgeTrial(obs({ crashes: 2, checkFailed: true })).verdict, 'fail');
});

test('a service up for the whole trial without running the release fails it then, not at the trial cap', () => {
  const waiting = obs({ upSinceMs: undefined, nowMs: 29_000, notRunningSinceMs: 0 });
  assert.deepEqual(judgeTrial(waiting), { verdict: 'continue' });
  assert.deepEqual(judgeTrial({ ...waiting, nowMs: 30_000 }), { verdict: 'fail', reason: 'its service ran for the whole trial without running it' });
  assert.deepEqual(judgeTrial(obs({ upSinceMs: undefined, nowMs: 30_000, notRunningSinceMs: 5_000 })), { verdict: 'continue' }, 'a new process starts that clock again');
});
