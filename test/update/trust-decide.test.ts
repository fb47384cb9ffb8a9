// The trust decision as a table: verdicts in, one answer out, with the reason
// that points at the most deliberate tampering when several signatures fail.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { decideTrust, nameHasVersion, type SignatureVerdict } from '../../src/update/trust/decide.js';

const required = { required: true };
const served = 'app-2.0.tar.gz';
const V = {
  good: { kind: 'valid', by: 'ABCDEF0123456789', signedFor: served },
  old: { kind: 'valid', by: 'ABCDEF0123456789', signedFor: 'app-1.0.tar.gz' },
  unnamed: { kind: 'valid', by: 'ABCDEF0123456789', signedFor: null },
  stranger: { kind: 'unknown-key', keyId: '1111222233334444' },
  identity: { kind: 'untrusted-identity', identity: 'https://github.com/evil/repo/.github/workflows/x.yml@refs/heads/main' },
  bad: { kind: 'bad', detail: 'does not match' },
  absent: { kind: 'absent' },
} satisfies Record<string, SignatureVerdict>;

const decide = (...verdicts: SignatureVerdict[]) => decideTrust(required, { servedAs: served, verdicts });

describe('decideTrust', () => {
  test('not required: installed, verified by nothing, whatever the verdicts', () => {
    assert.deepEqual(decideTrust({ required: false }, { servedAs: served, verdicts: [V.bad] }), { ok: true, by: null });
  });

  test('one reason per single verdict: the closed set of refusals', () => {
    const table: Array<[SignatureVerdict[], unknown]> = [
      [[], { ok: false, reason: 'no signature' }],
      [[V.absent], { ok: false, reason: 'no signature' }],
      [[V.good], { ok: true, by: 'ABCDEF0123456789' }],
      [[V.old], { ok: false, reason: 'signed for app-1.0.tar.gz, served as app-2.0.tar.gz' }],
      [[V.unnamed], { ok: false, reason: 'signed for (no name), served as app-2.0.tar.gz' }],
      [[V.stranger], { ok: false, reason: 'unknown key 1111222233334444' }],
      [[V.identity], { ok: false, reason: `identity ${V.identity.identity} not trusted` }],
      [[V.bad], { ok: false, reason: 'bad signature', detail: 'does not match' }],
    ];
    for (const [verdicts, want] of table) assert.deepEqual(decide(...verdicts), want, JSON.stringify(verdicts));
  });

  test('one good, bound signature is enough, whatever else is served beside it', () => {
    for (const other of [V.bad, V.stranger, V.old, V.identity, V.absent]) {
      assert.deepEqual(decide(other, V.good), { ok: true, by: V.good.by });
      assert.deepEqual(decide(V.good, other), { ok: true, by: V.good.by });
    }
  });

  test('several failures: named binding > unnamed > bad > identity > unknown key > none, in any order', () => {
    const ranked = [V.old, V.unnamed, V.bad, V.identity, V.stranger, V.absent];
    for (let i = 0; i < ranked.length; i++) {
      const weaker = ranked.slice(i + 1);
      const want = decide(ranked[i]!);
      assert.deepEqual(decide(...weaker, ranked[i]!), want);
      assert.deepEqual(decide(ranked[i]!, ...weaker.reverse()), want);
    }
  });

  test('with a version, the signed name must carry it: a same-named file from an old release is refused', () => {
    const same = { kind: 'valid', by: 'K', signedFor: 'app-linux.tar.gz' } satisfies SignatureVerdict;
    assert.deepEqual(decideTrust(required, { servedAs: 'app-linux.tar.gz', version: '9.0.0', verdicts: [same] }), {
      ok: false,
      reason: 'signed for app-linux.tar.gz, served as app-linux.tar.gz (version 9.0.0)',
    });
    const versioned = { kind: 'valid', by: 'K', signedFor: 'app-9.0.0-linux.tar.gz' } satisfies SignatureVerdict;
    assert.deepEqual(decideTrust(required, { servedAs: 'app-9.0.0-linux.tar.gz', version: 'v9.0.0', verdicts: [versioned] }), { ok: true, by: 'K' });
  });

  test('nameHasVersion: whole tokens only', () => {
    for (const [name, version, want] of [
      ['app-1.2.0.tar.gz', '1.2.0', true],
      ['app_v1.2.0_linux.tgz', 'v1.2.0', true],
      ['1.2.0.tar.gz', '1.2.0', true],
      ['app-1.2.0', '1.2.0', true],
      ['app-11.2.0.tgz', '1.2.0', false],
      ['app-1.2.0.1.tgz', '1.2.0', false],
      ['app-1.2.00.tgz', '1.2.0', false],
      ['app-1x2y0.tgz', '1.2.0', false],
      ['app-linux.tar.gz', '1.2.0', false],
    ] as const) {
      assert.equal(nameHasVersion(name, version), want, `${name} ${version}`);
    }
  });
});
