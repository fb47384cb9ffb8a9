import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nextRestart, type Throttle } from '../../src/supervise/backoff.js';

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
