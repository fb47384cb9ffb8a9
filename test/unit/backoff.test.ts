import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nextRestart, parseDeathLimit, recordDeath, type Throttle } from '../../src/supervise/backoff.js';

test('quick deaths space starts 1, 2, 4, 8 ... seconds apart up to the maximum', () => {
  let t: Throttle = { delayMs: 0 };
  const delays: number[] = [];
  for (let i = 0; i < 8; i++) {
    const r = nextRestart(t, 0, 30_000);
    t = r.throttle;
    delays.push(r.waitMs);
  }
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
});

test('the wait counts from the last start: a run of 600 ms waits 400 ms more', () => {
  assert.equal(nextRestart({ delayMs: 0 }, 600, 30_000).waitMs, 400);
  assert.equal(nextRestart({ delayMs: 4000 }, 3000, 30_000).waitMs, 5000);
});

test('a service that stayed up 10 s resets the delay and restarts at once', () => {
  const r = nextRestart({ delayMs: 16_000 }, 10_000, 30_000);
  assert.deepEqual(r.throttle, { delayMs: 1000 });
  assert.equal(r.waitMs, 0);
});

test('never less than 1 s between starts, even with a tiny maximum', () => {
  assert.equal(nextRestart({ delayMs: 1000 }, 0, 10).waitMs, 1000);
});

test('max-deaths: COUNT [WINDOW] parsed; a bad value is refused', () => {
  const sec = (w: string) => (/^\d+$/.test(w) ? Number(w) * 1000 : w === '2m' ? 120_000 : undefined);
  assert.deepEqual(parseDeathLimit('5\n', sec), { count: 5, windowMs: 60_000 });
  assert.deepEqual(parseDeathLimit('3 10', sec), { count: 3, windowMs: 10_000 });
  assert.deepEqual(parseDeathLimit('3 2m', sec), { count: 3, windowMs: 120_000 });
  for (const bad of ['', '0', '-1', 'x', '3 soon', '3 10 20', '2.5']) assert.equal(parseDeathLimit(bad, sec), undefined, bad);
});

test('recordDeath: failed once COUNT deaths fall within the window; older ones are forgotten', () => {
  const limit = { count: 3, windowMs: 10_000 };
  let d: number[] = [];
  let r = recordDeath(d, 0, limit);
  assert.equal(r.failed, false);
  r = recordDeath(r.deaths, 4_000, limit);
  assert.equal(r.failed, false);
  // the first death is out of the window by now
  r = recordDeath(r.deaths, 12_000, limit);
  assert.deepEqual({ deaths: r.deaths, failed: r.failed }, { deaths: [4_000, 12_000], failed: false });
  r = recordDeath(r.deaths, 13_000, limit);
  assert.equal(r.failed, true);
  d = r.deaths;
  assert.equal(d.length, 3);
});
