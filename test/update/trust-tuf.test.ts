// The keyless trust root through TUF (src/update/trust/tuf.ts), no network: a
// test TUF repository (test/helpers/tuf.ts) on loopback serves the test
// Sigstore's trusted_root.json (test/helpers/sigstore.ts). tuf-js does the
// client checks; these tests prove molt wires them: the root is fetched and
// cached under MOLT_HOME, a restart without the repository uses the cache, and
// each of TUF's attacks on the root channel (rollback, freeze, arbitrary
// target, endless data, slow retrieval) is refused with one log line while the
// root already in use stays in use. Keyed trust never touches TUF.
import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { setLogSink } from '../../src/common/log.js';
import { loadTrustConfig, type TrustConfig } from '../../src/update/trust/config.js';
import { startTrustCheck } from '../../src/update/trust/release.js';
import { keepTrustRoot, TufTrustRoot } from '../../src/update/trust/tuf.js';
import { NO_TRUSTED_ROOT, refuseWithoutRoot, TrustRefusal, trustGate } from '../../src/update/trust/gate.js';
import { isReleaseFault } from '../../src/update/stage.js';
import { TrustConfigError } from '../../src/update/trust/keys.js';
import { ApiMetrics } from '../../src/api/metrics.js';
import { testSigstore, WORKFLOW, type TestSigstore } from '../helpers/sigstore.js';
import { TestTufRepo } from '../helpers/tuf.js';

const IDENTITY = 'https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v*';
const NAME = 'app-1.2.0.tar.gz';
const artifact = randomBytes(4096);
const sha = createHash('sha256').update(artifact).digest('hex');

let dir: string;
let sigstore: TestSigstore;
let other: TestSigstore;
let rootA: Buffer;
let rootB: Buffer;
let lines: string[] = [];

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-trust-tuf-'));
  fs.mkdirSync(path.join(dir, 'a'));
  fs.mkdirSync(path.join(dir, 'b'));
  sigstore = testSigstore(path.join(dir, 'a'));
  // A second test Sigstore: its root is what a later (or an attacker's) target carries.
  other = testSigstore(path.join(dir, 'b'));
  rootA = Buffer.from(JSON.stringify(sigstore.root()));
  rootB = Buffer.from(JSON.stringify(other.root()));
  setLogSink((l) => lines.push(l));
});
after(() => {
  setLogSink((l) => process.stderr.write(l + '\n'));
  fs.rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  lines = [];
});

let homes = 0;
const newHome = () => fs.mkdtempSync(path.join(dir, `home${++homes}-`));

/** MOLT_TRUST_IDENTITY through the loopback repository, as `molt updater` reads it. */
function keylessEnv(url: string, repo: TestTufRepo): NodeJS.ProcessEnv {
  const rootFile = path.join(dir, `tuf-root-${createHash('sha256').update(repo.rootJson()).digest('hex').slice(0, 8)}.json`);
  fs.writeFileSync(rootFile, repo.rootJson());
  return { MOLT_TRUST_IDENTITY: IDENTITY, MOLT_TRUST_TUF_URL: url, MOLT_TRUST_TUF_ROOT: rootFile };
}

/** What molt decides for a release carrying `bundles` (the artifact above, served as NAME). */
function decide(trust: TrustConfig, bundles: string[]) {
  const c = startTrustCheck(trust, NAME, { bundles: bundles.map((b) => Buffer.from(b)) });
  c.hasher.update(artifact);
  return c.finish().decision;
}

const bundleA = () => sigstore.bundleWith({ subjects: [{ name: NAME, sha256: sha }] });
const bundleB = () => other.bundleWith({ subjects: [{ name: NAME, sha256: sha }] });

/** A fresh keeper for `home`, as at a start of `molt updater`. */
function start(env: NodeJS.ProcessEnv, home: string, timeoutMs = 5000): { trust: TrustConfig; keeper: TufTrustRoot } {
  const trust = loadTrustConfig(env);
  const keeper = keepTrustRoot(trust, home, { timeoutMs });
  assert.ok(keeper, 'keyless without MOLT_TRUST_ROOT has a TUF keeper');
  return { trust, keeper };
}

const warnings = () => lines.filter((l) => l.includes('Sigstore trusted root') || l.includes('no Sigstore trusted root'));

describe('the Sigstore trusted root through TUF', () => {
  test('fetched through TUF and cached under MOLT_HOME: a keyless bundle verifies; a restart without the repository uses the cache', async () => {
    const repo = new TestTufRepo(rootA);
    const url = await repo.serve();
    const home = newHome();
    const { trust, keeper } = start(keylessEnv(url, repo), home);
    assert.equal(trust.keyless, undefined, 'no root before TUF answered and nothing cached');
    await keeper.refreshIfDue();
    assert.ok(trust.keyless, 'the root TUF vouched for is in use');
    assert.deepEqual(decide(trust, [bundleA()]), { ok: true, by: WORKFLOW });
    const cache = path.join(home, 'trust', 'tuf', encodeURIComponent(new URL(url).host));
    for (const f of ['root.json', 'timestamp.json', 'snapshot.json', 'targets.json', 'targets/trusted_root.json', 'last-good.json']) {
      assert.ok(fs.existsSync(path.join(cache, f)), `${f} cached under MOLT_HOME/trust/tuf/`);
    }
    const info = keeper.info();
    assert.equal(info.mirror, url);
    assert.ok(info.verifiedAt && info.ageSeconds !== undefined && info.lastError === undefined, JSON.stringify(info));
    assert.deepEqual(repo.requests, ['/2.root.json', '/timestamp.json', '/snapshot.json', '/targets.json', '/targets/trusted_root.json']);
    // Fresh: the next poll does not ask again.
    await keeper.refreshIfDue();
    assert.equal(repo.requests.length, 5, 'a fresh root is not asked for at every poll');

    await repo.close();
    lines = [];
    const again = start(keylessEnv(url, repo), home);
    assert.ok(again.trust.keyless, 'the cached root is in use at start, before any network');
    assert.deepEqual(decide(again.trust, [bundleA()]), { ok: true, by: WORKFLOW });
    assert.equal(await again.keeper.refresh(), false, 'the repository is unreachable');
    assert.deepEqual(decide(again.trust, [bundleA()]), { ok: true, by: WORKFLOW }, 'the cached root is kept');
    const w = warnings();
    assert.equal(w.length, 1, w.join('\n'));
    assert.match(w[0]!, /Sigstore trusted root not refreshed; keeping the cached one .*ECONNREFUSED/);
    assert.equal(again.keeper.info().verifiedAt, info.verifiedAt, 'its freshness is the last time TUF vouched for it');
    assert.match(again.keeper.info().lastError!, /ECONNREFUSED/);
  });

  test('a newer root published through TUF replaces the one in use', async () => {
    const repo = new TestTufRepo(rootA);
    const { trust, keeper } = start(keylessEnv(await repo.serve(), repo), newHome());
    try {
      assert.equal(await keeper.refresh(), true);
      assert.equal(decide(trust, [bundleB()]).ok, false, "the other Sigstore's bundle is not trusted by root A");
      repo.publish({ target: rootB });
      assert.equal(await keeper.refresh(), true);
      assert.deepEqual(decide(trust, [bundleB()]), { ok: true, by: WORKFLOW });
      assert.ok(lines.some((l) => l.includes('Sigstore trusted root updated through TUF')), lines.join('\n'));
    } finally {
      await repo.close();
    }
  });

  test('rollback: an older timestamp, or a timestamp naming an older snapshot, is refused and the newer root kept', async () => {
    const repo = new TestTufRepo(rootA);
    const { trust, keeper } = start(keylessEnv(await repo.serve(), repo), newHome());
    try {
      const old = repo.publish();
      repo.publish({ target: rootB });
      assert.equal(await keeper.refresh(), true);
      assert.deepEqual(decide(trust, [bundleB()]), { ok: true, by: WORKFLOW }, 'root B (version 3) in use');
      // The attacker serves the whole older, validly signed repository (root A).
      repo.files = old;
      lines = [];
      assert.equal(await keeper.refresh(), false);
      assert.deepEqual(decide(trust, [bundleB()]), { ok: true, by: WORKFLOW }, 'root B still in use');
      assert.equal(decide(trust, [bundleA()]).ok, false, 'root A did not come back');
      assert.equal(warnings().length, 1, warnings().join('\n'));
      assert.match(warnings()[0]!, /keeping the cached one .*timestamp version 2 is less than current version 3/);
      // A new timestamp that names an older snapshot.
      repo.publish({ timestampVersion: 9, snapshotVersion: 1 });
      lines = [];
      assert.equal(await keeper.refresh(), false);
      assert.match(warnings()[0]!, /snapshot version 1 is less than current version/);
      assert.deepEqual(decide(trust, [bundleB()]), { ok: true, by: WORKFLOW });
    } finally {
      await repo.close();
    }
  });

  test('freeze: an expired timestamp is refused with one line; the cached root stays and its age is reported in status and metrics', async () => {
    const repo = new TestTufRepo(rootA);
    const { trust, keeper } = start(keylessEnv(await repo.serve(), repo), newHome());
    try {
      assert.equal(await keeper.refresh(), true);
      const fresh = keeper.info().verifiedAt!;
      repo.publish({ target: rootB, timestampExpires: new Date(Date.now() - 3600_000) });
      lines = [];
      assert.equal(await keeper.refresh(), false);
      assert.equal(warnings().length, 1);
      assert.match(warnings()[0]!, /keeping the cached one .*error="ExpiredMetadataError: Final timestamp\.json is expired".* verified_at=/);
      assert.deepEqual(decide(trust, [bundleA()]), { ok: true, by: WORKFLOW }, 'root A in use, not the frozen repository\'s B');
      // An hour later, the repository still frozen: status says how old the root is.
      const later = keeper.info(Date.parse(fresh) + 3600_000);
      assert.equal(later.verifiedAt, fresh);
      assert.equal(later.ageSeconds, 3600);
      assert.match(later.lastError!, /expired/);
      const m = new ApiMetrics();
      const text = await m.render({ phase: 'idle', source: 'dir /x', policy: 'latest', releases: [], blocked: [], history: [], actions: [], trustRoot: later }, []);
      assert.match(text, /^molt_trust_root_age_seconds 3600$/m);
    } finally {
      await repo.close();
    }
  });

  test('arbitrary target: bytes other than the listed ones are refused; with nothing cached, keyless releases are retried, not blocked', async () => {
    const repo = new TestTufRepo(rootA);
    const { trust, keeper } = start(keylessEnv(await repo.serve(), repo), newHome());
    try {
      // Same length, other bytes: what a compromised mirror without the targets key can do.
      const forged = Buffer.from(rootA.toString().replace(/"molt-test"/, '"molt-evil"'));
      assert.equal(forged.length, rootA.length);
      repo.files.set('/targets/trusted_root.json', forged);
      assert.equal(await keeper.refresh(), false);
      assert.equal(trust.keyless, undefined, 'no root in use');
      assert.equal(warnings().length, 1);
      assert.match(warnings()[0]!, /no Sigstore trusted root: TUF repository unreachable.* error=.*(hash|Hash)/);
      // The updater's side: refused before any download, with a reason from the closed set, and not a release fault.
      let refusal: unknown;
      try {
        refuseWithoutRoot(trust);
      } catch (err) {
        refusal = err;
      }
      assert.ok(refusal instanceof TrustRefusal, String(refusal));
      assert.equal(refusal.reason, 'no signature');
      assert.equal(refusal.detail, NO_TRUSTED_ROOT);
      assert.equal(isReleaseFault(refusal), false, 'retried at a later poll, never blocked');
      // With a key pinned too, the download happens; a release carrying only a bundle is not blocked either.
      const gate = trustGate({ ...trust, keys: [{ id: 'X', kind: 'minisign' } as never] }, NAME, '1.2.0', { bundles: [Buffer.from(bundleA())] });
      gate.onChunk!(artifact);
      assert.throws(() => gate.finish(), (e: unknown) => e instanceof TrustRefusal && e.transient && e.message === `no signature (${NO_TRUSTED_ROOT})`);
      // The repository fixed: the next poll fetches the root and the same bundle verifies.
      repo.publish();
      assert.equal(await keeper.refreshIfDue(), undefined);
      assert.deepEqual(decide(trust, [bundleA()]), { ok: true, by: WORKFLOW });
      assert.doesNotThrow(() => refuseWithoutRoot(trust));
    } finally {
      await repo.close();
    }
  });

  test('endless data: a target longer than its listed length is cut off and refused', async () => {
    const repo = new TestTufRepo(rootA);
    const { trust, keeper } = start(keylessEnv(await repo.serve(), repo), newHome());
    try {
      assert.equal(await keeper.refresh(), true);
      repo.publish({ target: rootB });
      repo.files.set('/targets/trusted_root.json', Buffer.concat([rootB, Buffer.alloc(4 << 20, 0x20)]));
      lines = [];
      assert.equal(await keeper.refresh(), false);
      assert.match(warnings()[0]!, /keeping the cached one .*Max length reached/);
      assert.deepEqual(decide(trust, [bundleA()]), { ok: true, by: WORKFLOW }, 'root A kept');
    } finally {
      await repo.close();
    }
  });

  test('a torn cache: an unreadable root.json starts again from the initial root; an unreadable last-good.json waits for TUF', async () => {
    const repo = new TestTufRepo(rootA);
    const url = await repo.serve();
    const home = newHome();
    try {
      assert.equal(await start(keylessEnv(url, repo), home).keeper.refresh(), true);
      const cache = path.join(home, 'trust', 'tuf', encodeURIComponent(new URL(url).host));
      fs.writeFileSync(path.join(cache, 'root.json'), '{"signed": ');
      fs.writeFileSync(path.join(cache, 'last-good.json'), '{"mirror": ');
      lines = [];
      const again = start(keylessEnv(url, repo), home);
      assert.equal(again.trust.keyless, undefined, 'a torn last-good.json is not used');
      assert.equal(lines.filter((l) => l.includes('cached Sigstore trusted root unusable; waiting for TUF')).length, 1, lines.join('\n'));
      repo.publish();
      assert.equal(await again.keeper.refresh(), true);
      assert.equal(lines.filter((l) => l.includes('cached TUF root.json unreadable; starting from the initial root')).length, 1, lines.join('\n'));
      assert.deepEqual(decide(again.trust, [bundleA()]), { ok: true, by: WORKFLOW });
    } finally {
      await repo.close();
    }
  });

  test('slow retrieval: a repository that stalls is given up on after the timeout, and the cached root kept', async () => {
    const repo = new TestTufRepo(rootA);
    const { trust, keeper } = start(keylessEnv(await repo.serve(), repo), newHome(), 300);
    try {
      assert.equal(await keeper.refresh(), true);
      repo.publish({ target: rootB });
      for (const p of ['/timestamp.json', '/targets/trusted_root.json']) {
        repo.stall.clear();
        repo.stall.add(p);
        lines = [];
        assert.equal(await keeper.refresh(), false, `${p} stalls`);
        assert.equal(warnings().length, 1);
        assert.match(warnings()[0]!, /keeping the cached one .*(timeout|aborted)/i);
        assert.deepEqual(decide(trust, [bundleA()]), { ok: true, by: WORKFLOW }, 'root A kept');
      }
    } finally {
      await repo.close();
    }
  });
});

describe('TUF settings', () => {
  test('keyed trust never touches TUF; keyless with MOLT_TRUST_ROOT neither', () => {
    const home = newHome();
    const pub = path.join(dir, 'k.pem');
    fs.writeFileSync(pub, generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }));
    const keyed = loadTrustConfig({ MOLT_TRUST_KEYS: pub });
    assert.equal(keyed.keys.length, 1);
    assert.equal(keyed.tuf, undefined);
    assert.equal(keepTrustRoot(keyed, home), undefined);
    const rootFile = path.join(dir, 'trusted_root.json');
    fs.writeFileSync(rootFile, rootA);
    const fixed = loadTrustConfig({ MOLT_TRUST_IDENTITY: IDENTITY, MOLT_TRUST_ROOT: rootFile });
    assert.ok(fixed.keyless);
    assert.equal(keepTrustRoot(fixed, home), undefined);
    assert.ok(!fs.existsSync(path.join(home, 'trust')), 'nothing under MOLT_HOME/trust');
  });

  test('bad TUF settings stop the updater with one line naming them', () => {
    const err = (env: NodeJS.ProcessEnv) => {
      try {
        const t = loadTrustConfig(env);
        keepTrustRoot(t, newHome());
      } catch (e) {
        assert.ok(e instanceof TrustConfigError, String(e));
        return e.message;
      }
      return 'no error';
    };
    assert.match(err({ MOLT_TRUST_TUF_URL: 'http://127.0.0.1:1' }), /^MOLT_TRUST_TUF_URL: set without MOLT_TRUST_IDENTITY/);
    assert.match(err({ MOLT_TRUST_IDENTITY: IDENTITY, MOLT_TRUST_ROOT: '/x.json', MOLT_TRUST_TUF_ROOT: '/y.json' }), /^MOLT_TRUST_TUF_ROOT: set with MOLT_TRUST_ROOT/);
    assert.match(err({ MOLT_TRUST_IDENTITY: IDENTITY, MOLT_TRUST_TUF_URL: 'ftp://x' }), /^MOLT_TRUST_TUF_URL: ftp:\/\/x: not an http\(s\) URL/);
    assert.match(err({ MOLT_TRUST_IDENTITY: IDENTITY, MOLT_TRUST_TUF_URL: 'https://tuf.example.invalid' }), /^MOLT_TRUST_TUF_URL: .*no initial root\.json known for it \(set MOLT_TRUST_TUF_ROOT\)/);
    assert.match(err({ MOLT_TRUST_IDENTITY: IDENTITY, MOLT_TRUST_TUF_URL: 'https://tuf.example.invalid', MOLT_TRUST_TUF_ROOT: path.join(dir, 'nope.json') }), /^MOLT_TRUST_TUF_ROOT: .*nope\.json: cannot read \(ENOENT\)/);
    assert.equal(err({ MOLT_TRUST_IDENTITY: IDENTITY }), 'no error', "the public-good repository's initial root comes with @sigstore/tuf");
  });
});
