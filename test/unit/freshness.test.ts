// The source-freshness judgment (TUF's indefinite freeze): what counts as an
// answer, as a change, how old each is, and when the source is stale.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultStaleAfterMs, judgeFreshness, noteAnswer, parseSourceRecord, releasesFingerprint } from '../../src/update/freshness.js';
import { formatFreshness } from '../../src/cli/control-format.js';
import type { Release } from '../../src/update/types.js';

const rel = (version: string, publishedAt?: string, digest?: string): Release => ({ version, tag: `v${version}`, prerelease: false, locator: { tag: `v${version}` }, ...(publishedAt ? { publishedAt } : {}), ...(digest ? { digest } : {}) });
const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();
const H = 3600_000;

describe('source freshness', () => {
  test('an answer that repeats the last one (a 304, the same old tags) is a success but not a change', () => {
    const releases = [rel('1.0.0', '2025-01-01T00:00:00Z'), rel('1.1.0', '2025-02-01T00:00:00Z')];
    const first = noteAnswer(undefined, releases, iso(T0));
    assert.equal(first.lastSuccessAt, iso(T0));
    assert.equal(first.lastChangeAt, iso(T0), 'the first answer is new');
    const same = noteAnswer(first, [...releases].reverse(), iso(T0 + H));
    assert.equal(same.lastSuccessAt, iso(T0 + H), 'the source answered');
    assert.equal(same.lastChangeAt, iso(T0), 'but said nothing new (order does not matter)');
    assert.equal(same.newestVersion, '1.1.0');
    assert.equal(same.newestPublishedAt, '2025-02-01T00:00:00.000Z');
    const moved = noteAnswer(same, [rel('1.0.0', '2025-01-01T00:00:00Z'), rel('1.1.0', '2025-02-01T00:00:00Z', 'sha256:' + 'a'.repeat(64))], iso(T0 + 2 * H));
    assert.equal(moved.lastChangeAt, iso(T0 + 2 * H), 'a changed digest is a change');
    assert.notEqual(releasesFingerprint([rel('1.0.0')]), releasesFingerprint([rel('1.0.1')]));
  });

  test('stale only past the threshold; the age counts from the start when the source never answered; a clock gone back is age 0', () => {
    const rec = noteAnswer(undefined, [rel('1.0.0')], iso(T0));
    assert.deepEqual(judgeFreshness(T0 + 10_000, rec, iso(T0 - H), 10_000), { lastSuccessAt: iso(T0), lastChangeAt: iso(T0), lastSuccessAgeSeconds: 10, stale: false, staleAfterSeconds: 10 });
    assert.equal(judgeFreshness(T0 + 10_001, rec, iso(T0 - H), 10_000).stale, true);
    const never = judgeFreshness(T0 + 5 * H, undefined, iso(T0), 4 * H);
    assert.equal(never.lastSuccessAt, undefined);
    assert.equal(never.lastSuccessAgeSeconds, 5 * 3600);
    assert.equal(never.stale, true, 'never answered for longer than the threshold is stale too');
    assert.equal(judgeFreshness(T0 - H, rec, iso(T0), 10_000).lastSuccessAgeSeconds, 0);
    assert.equal(judgeFreshness(T0, rec, iso(T0), 10_000).newestPublishedAt, undefined, 'no publish time given: none shown');
  });

  test('the default threshold: a day, or ten intervals when longer', () => {
    assert.equal(defaultStaleAfterMs(5 * 60_000), 24 * H);
    assert.equal(defaultStaleAfterMs(6 * H), 60 * H);
  });

  test('a malformed record from state.json is dropped', () => {
    const good = noteAnswer(undefined, [rel('1.0.0', '2025-01-01T00:00:00Z')], iso(T0));
    assert.deepEqual(parseSourceRecord(JSON.parse(JSON.stringify(good))), good);
    assert.equal(parseSourceRecord({ lastSuccessAt: 'yesterday', lastChangeAt: iso(T0), fingerprint: 'x' }), undefined);
    assert.equal(parseSourceRecord('x'), undefined);
  });

  test('molt status says how old each thing is, and STALE', () => {
    const rec = noteAnswer(undefined, [rel('1.0.0', iso(T0 - 40 * 24 * H))], iso(T0 - 2 * H));
    const line = formatFreshness(judgeFreshness(T0, rec, iso(T0 - 3 * H), H), T0);
    assert.equal(line, 'STALE (no answer for over 1h): answered 2h ago; last new answer 2h ago; newest release 1.0.0 published 40d ago');
    assert.equal(formatFreshness(judgeFreshness(T0, undefined, iso(T0 - 30_000), H), T0), 'no answer since the start 30s ago');
  });
});
