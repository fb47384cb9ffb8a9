import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { jitterMs, rolloutDelayMs } from '../../src/update/rollout.js';

const HOUR = 3600_000;

describe('rolloutDelayMs', () => {
  test('0 when MOLT_ROLLOUT is 0', () => {
    assert.equal(rolloutDelayMs('web-1', '1.2.3', 0), 0);
  });

  test('deterministic for a host and a version (the same answer after a restart)', () => {
    const a = rolloutDelayMs('web-1', '1.2.3', HOUR);
    for (let i = 0; i < 5; i++) assert.equal(rolloutDelayMs('web-1', '1.2.3', HOUR), a);
    assert.ok(Number.isInteger(a));
  });

  test('always within [0, ROLLOUT), also for tiny windows', () => {
    for (const r of [1, 2, 7, 1000, HOUR]) {
      for (let i = 0; i < 500; i++) {
        const d = rolloutDelayMs(`host-${i}`, '2.0.0', r);
        assert.ok(d >= 0 && d < r && Number.isInteger(d), `r=${r} i=${i} d=${d}`);
      }
    }
  });

  test('a fleet spreads roughly uniformly over the window', () => {
    const hosts = 10_000;
    const buckets = new Array<number>(10).fill(0);
    for (let i = 0; i < hosts; i++) {
      const d = rolloutDelayMs(`replica-${i}.example.internal`, '1.4.0', HOUR);
      buckets[Math.floor((d / HOUR) * 10)]!++;
    }
    // Expected 1,000 each; a fair hash stays within a few standard deviations (sd ~ 30).
    for (const [i, n] of buckets.entries()) assert.ok(n > 850 && n < 1150, `bucket ${i} holds ${n} of ${hosts}: ${buckets.join(',')}`);
    // Chi-square with 9 degrees of freedom: 27.9 is the 0.1 % tail.
    const chi = buckets.reduce((sum, n) => sum + (n - 1000) ** 2 / 1000, 0);
    assert.ok(chi < 27.9, `chi-square ${chi.toFixed(1)} for ${buckets.join(',')}`);
  });

  test('replicas with similar names do not update together', () => {
    const delays = ['app-0', 'app-1', 'app-2', 'app-3', 'app-4'].map((h) => rolloutDelayMs(h, '3.0.0', HOUR));
    assert.equal(new Set(delays).size, delays.length);
  });

  test('a host gets another place in the queue for another version', () => {
    const versions = ['1.0.0', '1.0.1', '1.1.0', '2.0.0', '2.0.1', '2.1.0'];
    const delays = versions.map((v) => rolloutDelayMs('web-1', v, HOUR));
    assert.equal(new Set(delays).size, versions.length);
    // And the first host of one version is not the first of the next.
    const hosts = Array.from({ length: 50 }, (_, i) => `node-${i}`);
    const first = (v: string) => hosts.reduce((best, h) => (rolloutDelayMs(h, v, HOUR) < rolloutDelayMs(best, v, HOUR) ? h : best));
    assert.notEqual(first('1.0.0'), first('1.0.1'));
  });

  test('hostname and version are separated: ("ab", "1.0") differs from ("a", "b1.0")', () => {
    assert.notEqual(rolloutDelayMs('ab', '1.0', HOUR), rolloutDelayMs('a', 'b1.0', HOUR));
  });

  test('the delay scales with the window: the same fraction of a longer ROLLOUT', () => {
    const short = rolloutDelayMs('web-7', '1.2.3', 1000);
    const long = rolloutDelayMs('web-7', '1.2.3', 1_000_000);
    assert.equal(Math.floor(long / 1000), short);
  });
});

describe('jitterMs', () => {
  test('0 when MOLT_JITTER is 0', () => {
    assert.equal(jitterMs(0), 0);
    assert.equal(jitterMs(0, () => 0.99), 0);
  });

  test('maps the random number onto [0, max)', () => {
    assert.equal(jitterMs(1000, () => 0), 0);
    assert.equal(jitterMs(1000, () => 0.5), 500);
    assert.equal(jitterMs(1000, () => 0.999999), 999);
  });

  test('stays below max even when the random source misbehaves', () => {
    assert.equal(jitterMs(1000, () => 1), 999);
    assert.equal(jitterMs(1000, () => 7), 999);
    assert.equal(jitterMs(1000, () => -1), 0);
    assert.equal(jitterMs(1000, () => NaN), 0);
  });

  test('with Math.random, values fall in [0, max) and are spread', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 1000; i++) {
      const v = jitterMs(60_000);
      assert.ok(v >= 0 && v < 60_000 && Number.isInteger(v));
      seen.add(Math.floor(v / 6000));
    }
    assert.equal(seen.size, 10, 'every tenth of the range is hit in 1,000 draws');
  });
});
