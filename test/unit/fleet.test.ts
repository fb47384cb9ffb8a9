// Fleet verdicts and waves as pure functions: the verdict format (parse, bounds, subject binding),
// signatures (minisign and PEM keys, untrusted and unsigned verdicts), the fold (block vs unblock,
// distinct commits), MOLT_CANARY's share and hash, and the gate's table.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { encodeVerdict, foldVerdicts, judgeVerdict, MAX_VERDICT_BYTES, parseVerdict, signVerdict, verifyVerdict, type Verdict } from '../../src/update/fleet/verdict.js';
import { decideGate, isCanary, parseCanary, type GateFacts } from '../../src/update/fleet/wave.js';
import { readFleetConfig } from '../../src/update/fleet/config.js';
import { parseTrustKey, type TrustKey } from '../../src/update/trust/keys.js';
import { parseSigningKey, type SigningKey } from '../../src/update/trust/sign.js';
import { tmpdir } from '../helpers/molt.js';

const D = 'sha256:' + 'ab'.repeat(32);
const v = (over: Partial<Verdict> = {}): Verdict => ({ kind: 'blocked', subject: D, version: '2.0.0', reason: 'crashed 2 times', replica: 'web-1', time: '2026-01-01T00:00:00.000Z', ...over });

function pemPair(): { key: SigningKey; pub: TrustKey } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const key = parseSigningKey(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  const pub = parseTrustKey(publicKey.export({ type: 'spki', format: 'pem' }).toString(), 'test.pem');
  assert.ok(typeof key !== 'string' && typeof pub !== 'string');
  return { key: key as SigningKey, pub: pub as TrustKey };
}

function minisignPair(): { key: SigningKey; pub: TrustKey } {
  const dir = tmpdir('fleet-mini');
  const r = spawnSync('minisign', ['-G', '-W', '-p', 'k.pub', '-s', 'k.key'], { cwd: dir, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const key = parseSigningKey(fs.readFileSync(path.join(dir, 'k.key'), 'utf8'));
  const pub = parseTrustKey(fs.readFileSync(path.join(dir, 'k.pub'), 'utf8'), 'k.pub');
  fs.rmSync(dir, { recursive: true, force: true });
  assert.ok(typeof key !== 'string' && typeof pub !== 'string');
  return { key: key as SigningKey, pub: pub as TrustKey };
}

describe('verdict format', () => {
  test('round trip: what is encoded parses back to the same verdict', () => {
    assert.deepEqual(parseVerdict(encodeVerdict(v()), D), v());
  });

  test('garbage, oversized, unknown kinds and foreign subjects are ignored with a reason', () => {
    assert.match(parseVerdict('{not json', D) as string, /not JSON/);
    assert.match(parseVerdict('[1]', D) as string, /not an object/);
    assert.match(parseVerdict(encodeVerdict(v()).replace('"blocked"', '"exploded"'), D) as string, /unknown kind/);
    assert.match(parseVerdict(encodeVerdict(v()), 'sha256:' + 'cd'.repeat(32)) as string, /not sha256:cdcd/);
    const big = JSON.stringify({ v: 1, kind: 'blocked', subject: D, reason: 'x', replica: 'a', time: '2026-01-01T00:00:00Z', pad: 'y'.repeat(MAX_VERDICT_BYTES) });
    assert.match(parseVerdict(big, D) as string, /larger than 1024 bytes/);
    assert.match(parseVerdict(encodeVerdict(v({ time: 'yesterday' })), D) as string, /valid time/);
    assert.match(parseVerdict(encodeVerdict(v({ replica: 'bad id with spaces' })), D) as string, /replica id/);
    assert.match(parseVerdict(undefined, D) as string, /no verdict/);
  });

  test('a long reason is cut, newlines flattened, so a verdict stays one line and bounded', () => {
    const text = encodeVerdict(v({ reason: 'a\nb'.repeat(500) }));
    const back = parseVerdict(text, D) as Verdict;
    assert.equal(back.reason.length, 200);
    assert.doesNotMatch(back.reason, /\n/);
  });
});

describe('verdict signatures', () => {
  for (const [name, make] of [['PEM Ed25519', pemPair], ['minisign', minisignPair]] as const) {
    test(`${name}: a signed verdict verifies; changed bytes, another key or no signature do not`, () => {
      const { key, pub } = make();
      const other = pemPair();
      const text = encodeVerdict(v());
      const sig = signVerdict(text, key);
      assert.deepEqual(verifyVerdict(text, sig, [pub]), { by: pub.id });
      assert.equal(typeof verifyVerdict(text.replace('web-1', 'web-2'), sig, [pub]), 'string');
      assert.equal(typeof verifyVerdict(text, sig, [other.pub]), 'string');
      assert.match(verifyVerdict(text, undefined, [pub]) as string, /unsigned/);
      // Required: only the signed one is accepted; not required: the unsigned one is too.
      assert.deepEqual(judgeVerdict(text, sig, D, { required: true, keys: [pub] }), v());
      assert.match(judgeVerdict(text, undefined, D, { required: true, keys: [pub] }) as string, /unsigned/);
      assert.deepEqual(judgeVerdict(text, undefined, D, { required: false, keys: [] }), v());
    });
  }
});

describe('foldVerdicts', () => {
  test('a block stands unless a newer unblock lifts it; a tie keeps the block', () => {
    const b = v({ time: '2026-01-01T00:00:01Z' });
    const u = v({ kind: 'unblocked', replica: 'ops', time: '2026-01-01T00:00:02Z' });
    assert.equal(foldVerdicts([b]).blocked, b);
    assert.equal(foldVerdicts([b, u]).blocked, undefined);
    assert.equal(foldVerdicts([b, u]).unblocked, u);
    const again = v({ replica: 'web-9', time: '2026-01-01T00:00:03Z' });
    assert.equal(foldVerdicts([b, u, again]).blocked, again, 'blocked again after the unblock');
    assert.equal(foldVerdicts([b, { ...u, time: b.time }]).blocked, b);
  });

  test('commits count distinct replicas', () => {
    const c = (r: string) => v({ kind: 'committed', replica: r });
    assert.equal(foldVerdicts([c('a'), c('a'), c('b')]).commits, 2);
    assert.equal(foldVerdicts([]).commits, 0);
  });
});

describe('MOLT_CANARY', () => {
  test('percentages parse; anything else is a one-line reason', () => {
    assert.equal(parseCanary('5%'), 0.05);
    assert.equal(parseCanary('0.5%'), 0.005);
    assert.equal(parseCanary(undefined), 0);
    assert.equal(parseCanary('100%'), 1);
    assert.match(parseCanary('5') as string, /percentage/);
    assert.match(parseCanary('150%') as string, /0% to 100%/);
  });

  test('the share is fixed per replica and close to MOLT_CANARY over a large fleet', () => {
    assert.equal(isCanary('web-1', 0.05), isCanary('web-1', 0.05));
    assert.equal(isCanary('web-1', 0), false);
    assert.equal(isCanary('web-1', 1), true);
    let n = 0;
    for (let i = 0; i < 10_000; i++) if (isCanary(`replica-${i}`, 0.05)) n++;
    // Expected 500, sd ~ 22.
    assert.ok(n > 420 && n < 580, `${n} canaries of 10000`);
    // A larger share keeps every canary of a smaller one (the first wave grows, never reshuffles).
    for (let i = 0; i < 1000; i++) if (isCanary(`r${i}`, 0.05)) assert.ok(isCanary(`r${i}`, 0.2));
  });
});

describe('decideGate', () => {
  const base: GateFacts = { canaryShare: 0.05, canary: false, needCommits: 1, elapsedMs: 10, windowMs: 1000, spreadMs: 500, view: { commits: 0 } };
  const row = (over: Partial<GateFacts>) => decideGate({ ...base, ...over });

  test('the table', () => {
    assert.deepEqual(row({ paused: 'fleet' }).action, 'wait');
    assert.match(row({ paused: 'local' }).why, /paused \(local\)/);
    // A block wins over being a canary, and over the window's end.
    assert.deepEqual(row({ canary: true, elapsedMs: 5000, view: { commits: 3, blocked: { kind: 'blocked', subject: D, reason: 'crashed', replica: 'web-2', time: 't' } } }), { action: 'block', why: 'blocked by web-2: crashed' });
    assert.deepEqual(row({ elapsedMs: -5 }), { action: 'wait', why: 'delay', retryMs: 5 });
    assert.equal(row({ canary: true }).action, 'apply');
    assert.equal(row({}).action, 'wait');
    assert.match(row({}).why, /canary wave: 0\/1 committed/);
    assert.equal(row({ view: { commits: 1 } }).action, 'apply');
    assert.equal(row({ needCommits: 2, view: { commits: 1 } }).action, 'wait');
    assert.deepEqual(row({ elapsedMs: 1000 }), { action: 'apply', why: 'rollout window ended without a block' });
    // No verdicts read (a registry fault): the window still ends.
    assert.equal(row({ view: undefined }).action, 'wait');
    assert.equal(row({ view: undefined, elapsedMs: 1000 }).action, 'apply');
    // No waves: the plain rollout spread, today's behaviour.
    assert.deepEqual(row({ canaryShare: 0, elapsedMs: 100 }), { action: 'wait', why: 'rollout', retryMs: 400 });
    assert.equal(row({ canaryShare: 0, elapsedMs: 500 }).action, 'apply');
  });
});

describe('fleet settings', () => {
  const none = { required: false, keys: [] };
  test('defaults: read verdicts, replica is the hostname, no waves, one commit', () => {
    assert.deepEqual(readFleetConfig({}, none, 'host-1'), { mode: 'read', replica: 'host-1', canaryShare: 0, needCommits: 1, trust: { required: false, keys: [] } });
    const c = readFleetConfig({ MOLT_FLEET: '1', MOLT_REPLICA_ID: 'r-7', MOLT_CANARY: '10%', MOLT_CANARY_COMMITS: '3' }, none, 'h');
    assert.deepEqual([c.mode, c.replica, c.canaryShare, c.needCommits], ['write', 'r-7', 0.1, 3]);
    assert.equal(readFleetConfig({ MOLT_FLEET: '0' }, none, 'h').mode, 'off');
  });

  test('bad values are one line naming the variable', () => {
    assert.throws(() => readFleetConfig({ MOLT_FLEET: 'yes' }, none, 'h'), /^ConfigError: MOLT_FLEET="yes"/);
    assert.throws(() => readFleetConfig({ MOLT_CANARY: 'five' }, none, 'h'), /MOLT_CANARY="five"/);
    assert.throws(() => readFleetConfig({ MOLT_CANARY_COMMITS: '0' }, none, 'h'), /MOLT_CANARY_COMMITS="0"/);
    assert.throws(() => readFleetConfig({ MOLT_REPLICA_ID: 'a b' }, none, 'h'), /MOLT_REPLICA_ID/);
    assert.throws(() => readFleetConfig({ MOLT_FLEET_KEY: '/nonexistent/key' }, none, 'h'), /MOLT_FLEET_KEY=\/nonexistent\/key: cannot read \(ENOENT\)/);
  });
});
