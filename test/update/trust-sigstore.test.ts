// Keyless bundles built by test/helpers/sigstore.ts, no network: a test CA
// (openssl) issues Fulcio-style leaf certificates (SAN URI + OIDC issuer
// extension), a test transparency log (a P-256 key) signs each entry's SET,
// and a trusted root lists both. molt verifies DSSE/in-toto bundles through
// @sigstore/verify and pins identity, issuer and the statement's subject name
// and digest.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { keylessTrust, verifySigstoreBundle, identityMatches, type KeylessTrust } from '../../src/update/trust/sigstore.js';
import { decideTrust } from '../../src/update/trust/decide.js';
import { loadTrustConfig } from '../../src/update/trust/config.js';
import { startTrustCheck } from '../../src/update/trust/release.js';
import { testSigstore, GHA, WORKFLOW, type TestSigstore } from '../helpers/sigstore.js';

let dir: string;
let trust: KeylessTrust;
let sigstore: TestSigstore;
// A log the trusted root does not list.
const strangerLog = generateKeyPairSync('ec', { namedCurve: 'P-256' });

const artifact = randomBytes(4096);
const sha = createHash('sha256').update(artifact).digest('hex');
const NAME = 'app-1.2.0.tar.gz';

function verdict(bundle: string, servedAs = NAME, digest = sha, t = trust) {
  return verifySigstoreBundle(bundle, t, servedAs, digest);
}

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-trust-sigstore-'));
  sigstore = testSigstore(dir);
  sigstore.ca('otherca');
  trust = keylessTrust(sigstore.root(), { identity: 'https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v*', issuer: GHA });
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('Sigstore bundles against a test trusted root', () => {
  test('a bundle from the pinned workflow for this file: installed, by that identity', (t) => {
    const bundle = sigstore.bundleWith({ subjects: [{ name: NAME, sha256: sha }] });
    const v = verdict(bundle);
    // For the benchmark notes only (no assertion on speed): one check with the root already loaded.
    const start = performance.now();
    for (let i = 0; i < 20; i++) verdict(bundle);
    t.diagnostic(`keyless verification with a loaded root: ${((performance.now() - start) / 20).toFixed(2)} ms`);
    assert.deepEqual(v, { kind: 'valid', by: WORKFLOW, signedFor: NAME });
    assert.deepEqual(decideTrust({ required: true }, { servedAs: NAME, verdicts: [v] }), { ok: true, by: WORKFLOW });
  });

  test('the older issuer extension (1.3.6.1.4.1.57264.1.1) is read too', () => {
    const v = verdict(sigstore.bundleWith({ leaf: sigstore.leaf({ issuerOid: '1' }), subjects: [{ name: NAME, sha256: sha }] }));
    assert.equal(v.kind, 'valid');
  });

  test('another identity, or the pinned one from another issuer: identity <x> not trusted', () => {
    const evil = 'https://github.com/acme/app/.github/workflows/release.yml@refs/heads/evil';
    const a = verdict(sigstore.bundleWith({ leaf: sigstore.leaf({ identity: evil }), subjects: [{ name: NAME, sha256: sha }] }));
    assert.deepEqual(decideTrust({ required: true }, { servedAs: NAME, verdicts: [a] }), { ok: false, reason: `identity ${evil} not trusted` });
    const b = verdict(sigstore.bundleWith({ leaf: sigstore.leaf({ issuer: 'https://evil.example' }), subjects: [{ name: NAME, sha256: sha }] }));
    assert.deepEqual(b, { kind: 'untrusted-identity', identity: `${WORKFLOW} (issuer https://evil.example)` });
  });

  test('a certificate that is expired, or not yet valid, at the log\'s time: bad signature', () => {
    const now = Math.floor(Date.now() / 1000);
    for (const integratedTime of [now + 3 * 86400, now - 3 * 86400]) {
      const v = verdict(sigstore.bundleWith({ integratedTime, subjects: [{ name: NAME, sha256: sha }] }));
      assert.equal(v.kind, 'bad');
      assert.match(v.kind === 'bad' ? v.detail : '', /not valid or expired at the specified date/);
    }
  });

  test('no timestamp at all (no tlog entry): bad signature', () => {
    const v = verdict(sigstore.bundleWith({ tlog: false, subjects: [{ name: NAME, sha256: sha }] }));
    assert.equal(v.kind, 'bad');
    assert.match(v.kind === 'bad' ? v.detail : '', /expected 1 timestamps, got 0/);
  });

  test('a certificate from a CA the root does not list, or a SET from another log: bad signature', () => {
    assert.equal(verdict(sigstore.bundleWith({ leaf: sigstore.leaf({ ca: 'otherca' }), subjects: [{ name: NAME, sha256: sha }] })).kind, 'bad');
    assert.equal(verdict(sigstore.bundleWith({ logKey: strangerLog.privateKey, subjects: [{ name: NAME, sha256: sha }] })).kind, 'bad');
  });

  test('a statement edited after signing (another digest for this name): bad signature', () => {
    const other = createHash('sha256').update('evil').digest('hex');
    const b = sigstore.bundleWith({ subjects: [{ name: NAME, sha256: sha }], tamperPayload: (p) => Buffer.from(p.toString().replace(sha, other)) });
    assert.equal(verdict(b, NAME, other).kind, 'bad');
  });

  test('an old attested release renamed to a higher version: signed for <old>, served as <new>', () => {
    const v = verdict(sigstore.bundleWith({ subjects: [{ name: 'app-1.0.0.tar.gz', sha256: sha }] }), 'app-9.0.0.tar.gz');
    assert.deepEqual(decideTrust({ required: true }, { servedAs: 'app-9.0.0.tar.gz', verdicts: [v] }), {
      ok: false,
      reason: 'signed for app-1.0.0.tar.gz, served as app-9.0.0.tar.gz',
    });
  });

  test('bytes changed after attesting: bad signature; an attestation of other files: no signature', () => {
    const changed = createHash('sha256').update('changed').digest('hex');
    assert.equal(verdict(sigstore.bundleWith({ subjects: [{ name: NAME, sha256: sha }] }), NAME, changed).kind, 'bad');
    const v = verdict(sigstore.bundleWith({ subjects: [{ name: 'other.tar.gz', sha256: changed }] }));
    assert.deepEqual(decideTrust({ required: true }, { servedAs: NAME, verdicts: [v] }), { ok: false, reason: 'no signature' });
  });

  test('truncated or garbage bundles: bad signature, never a throw', () => {
    const good = sigstore.bundleWith({ subjects: [{ name: NAME, sha256: sha }] });
    for (const b of [good.slice(0, good.length / 2), '{}', 'garbage', '', JSON.stringify({ mediaType: 'x' })]) {
      assert.equal(verdict(b).kind, 'bad', b.slice(0, 40));
    }
  });

  test('MOLT_TRUST_IDENTITY + MOLT_TRUST_ROOT through the updater\'s API: the pinned workflow\'s bundle installs, a bad one beside it does not matter', () => {
    fs.writeFileSync(path.join(dir, 'trusted_root.json'), JSON.stringify(sigstore.root()));
    const config = loadTrustConfig({
      MOLT_TRUST_IDENTITY: 'https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v*',
      MOLT_TRUST_ROOT: path.join(dir, 'trusted_root.json'),
    });
    assert.equal(config.issuer, GHA, 'GitHub Actions is the default issuer');
    const good = Buffer.from(sigstore.bundleWith({ subjects: [{ name: NAME, sha256: sha }] }));
    const evil = Buffer.from(sigstore.bundleWith({ leaf: sigstore.leaf({ identity: 'https://github.com/evil/x/.github/workflows/x.yml@refs/heads/main' }), subjects: [{ name: NAME, sha256: sha }] }));
    const run = (bundles: Buffer[]) => {
      const c = startTrustCheck(config, NAME, { bundles });
      c.hasher.update(artifact);
      return c.finish().decision;
    };
    assert.deepEqual(run([evil, good]), { ok: true, by: WORKFLOW });
    assert.deepEqual(run([evil]), { ok: false, reason: 'identity https://github.com/evil/x/.github/workflows/x.yml@refs/heads/main not trusted' });
    assert.deepEqual(run([]), { ok: false, reason: 'no signature' });
  });

  test('identity patterns: * matches a run of characters, the rest is literal', () => {
    assert.ok(identityMatches('https://github.com/a/b/.github/workflows/r.yml@refs/tags/v*', 'https://github.com/a/b/.github/workflows/r.yml@refs/tags/v2.0.1'));
    assert.ok(!identityMatches('https://github.com/a/b/.github/workflows/r.yml@refs/tags/v*', 'https://github.com/a/b/.github/workflows/r.yml@refs/heads/main'));
    assert.ok(!identityMatches('https://github.com/a/b/x.yml', 'https://github.com/a/bbx.yml'), 'the dot is literal');
    // `*` stays inside one path segment and never crosses into the ref.
    const anyWorkflow = 'https://github.com/a/b/.github/workflows/*.yml@refs/tags/v*';
    assert.ok(identityMatches(anyWorkflow, 'https://github.com/a/b/.github/workflows/release.yml@refs/tags/v1.0.0'));
    assert.ok(!identityMatches(anyWorkflow, 'https://github.com/a/b/.github/workflows/release.yml@refs/heads/x.yml@refs/tags/v1'), 'a branch named like a tag');
    assert.ok(!identityMatches('https://github.com/a/*/.github/workflows/r.yml@refs/tags/v*', 'https://github.com/a/b/c/.github/workflows/r.yml@refs/tags/v1'), 'a nested path');
    assert.ok(!identityMatches('https://github.com/a/b/.github/workflows/r.yml@refs/tags/v*', 'https://github.com/a/b/.github/workflows/r.yml@refs/tags/v1/../x'), 'a tag with a slash');
    assert.ok(identityMatches('https://github.com/a/b/.github/workflows/r.yml@refs/tags/v1.2.0', 'https://github.com/a/b/.github/workflows/r.yml@refs/tags/v1.2.0'), 'no star: exact');
    assert.ok(!identityMatches('https://github.com/a/b/.github/workflows/r.yml@refs/tags/v1.2.0', 'https://github.com/a/b/.github/workflows/r.yml@refs/tags/v1.2.0-evil'));
  });
});
