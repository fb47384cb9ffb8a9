// Keyless bundles built here, no network: a test CA (openssl) issues
// Fulcio-style leaf certificates (SAN URI + OIDC issuer extension), a test
// transparency log (a P-256 key) signs each entry's SET, and a trusted root
// lists both. molt verifies DSSE/in-toto bundles through @sigstore/verify and
// pins identity, issuer and the statement's subject name and digest.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { keylessTrust, verifySigstoreBundle, identityMatches, type KeylessTrust } from '../../src/update/trust/sigstore.js';
import { decideTrust } from '../../src/update/trust/decide.js';
import { loadTrustConfig } from '../../src/update/trust/config.js';
import { startTrustCheck } from '../../src/update/trust/release.js';

const WORKFLOW = 'https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.2.0';
const GHA = 'https://token.actions.githubusercontent.com';
let dir: string;
let trust: KeylessTrust;
const log = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const strangerLog = generateKeyPairSync('ec', { namedCurve: 'P-256' });

function sh(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A PEM certificate file's DER bytes. */
const der = (pemFile: string): Buffer => Buffer.from(fs.readFileSync(path.join(dir, pemFile), 'utf8').replace(/-----[^-]+-----|\s/g, ''), 'base64');
const spki = (k: KeyObject): Buffer => k.export({ type: 'spki', format: 'der' });
const logId = (k: KeyObject): Buffer => createHash('sha256').update(spki(k)).digest();

function makeCa(name: string): void {
  sh('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`);
  sh('req', '-x509', '-new', '-key', `${name}.key`, '-subj', `/O=molt-test/CN=${name}`, '-days', '3650',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', `${name}.pem`);
}

let leafCount = 0;
/** A Fulcio-style leaf: SAN URI, the OIDC issuer in extension .1.8 (DER UTF8String) or the old .1.1 (raw). */
function makeLeaf(opts: { identity?: string; issuer?: string; issuerOid?: '1' | '8'; ca?: string } = {}): { key: KeyObject; cert: string } {
  const n = `leaf${++leafCount}`;
  const issuer = opts.issuer ?? GHA;
  const issuerExt = opts.issuerOid === '1'
    ? `1.3.6.1.4.1.57264.1.1=DER:${Buffer.from(issuer).toString('hex')}`
    : `1.3.6.1.4.1.57264.1.8=ASN1:UTF8String:${issuer}`;
  fs.writeFileSync(path.join(dir, `${n}.cnf`), [
    '[ext]', 'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=codeSigning',
    `subjectAltName=critical,URI:${opts.identity ?? WORKFLOW}`, 'authorityKeyIdentifier=keyid', issuerExt, '',
  ].join('\n'));
  sh('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${n}.key`);
  sh('req', '-new', '-key', `${n}.key`, '-subj', '/CN=sigstore', '-out', `${n}.csr`);
  const ca = opts.ca ?? 'ca';
  sh('x509', '-req', '-in', `${n}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '1',
    '-extfile', `${n}.cnf`, '-extensions', 'ext', '-out', `${n}.pem`);
  return { key: createPrivateKey(fs.readFileSync(path.join(dir, `${n}.key`))), cert: `${n}.pem` };
}

const pae = (type: string, payload: Buffer): Buffer =>
  Buffer.concat([Buffer.from(`DSSEv1 ${Buffer.byteLength(type)} ${type} ${payload.length} `), payload]);

interface BundleOpts {
  leaf?: { key: KeyObject; cert: string };
  subjects?: Array<{ name: string; sha256: string }>;
  integratedTime?: number;
  logKey?: KeyObject;
  tlog?: boolean;
  tamperPayload?: (p: Buffer) => Buffer;
}

/**
 * The entry as the only leaf of the log: root = SHA-256(0x00 || body), and a
 * checkpoint (a signed note) over it, named for the log's base URL and signed
 * with a key hint of the log id's first 4 bytes, as Rekor writes them.
 */
function inclusionProof(body: Buffer, key: KeyObject) {
  const root = createHash('sha256').update(Buffer.concat([Buffer.from([0]), body])).digest();
  const note = `log.molt.invalid\n1\n${root.toString('base64')}\n`;
  const sig = Buffer.concat([logId(log.publicKey).subarray(0, 4), sign('sha256', Buffer.from(note), key)]);
  return {
    logIndex: '0',
    rootHash: root.toString('base64'),
    treeSize: '1',
    hashes: [],
    checkpoint: { envelope: `${note}\n\u2014 log.molt.invalid ${sig.toString('base64')}\n` },
  };
}

/** A v0.3 DSSE bundle with one tlog entry, its SET and inclusion proof signed by the test log. */
function makeBundle(o: BundleOpts): string {
  const leaf = o.leaf ?? makeLeaf();
  const statement = {
    _type: 'https://in-toto.io/Statement/v1',
    subject: (o.subjects ?? []).map((s) => ({ name: s.name, digest: { sha256: s.sha256 } })),
    predicateType: 'https://slsa.dev/provenance/v1',
    predicate: {},
  };
  const payload = Buffer.from(JSON.stringify(statement));
  const type = 'application/vnd.in-toto+json';
  const sig = sign('sha256', pae(type, payload), leaf.key);
  const signedPayload = o.tamperPayload ? o.tamperPayload(payload) : payload;
  const body = Buffer.from(JSON.stringify({
    apiVersion: '0.0.1',
    kind: 'dsse',
    spec: {
      payloadHash: { algorithm: 'sha256', value: createHash('sha256').update(signedPayload).digest('hex') },
      signatures: [{ signature: sig.toString('base64'), verifier: Buffer.from(fs.readFileSync(path.join(dir, leaf.cert))).toString('base64') }],
    },
  }));
  const integratedTime = o.integratedTime ?? Math.floor(Date.now() / 1000);
  const id = logId(log.publicKey);
  const set = `{"body":"${body.toString('base64')}","integratedTime":${integratedTime},"logID":"${id.toString('hex')}","logIndex":0}`;
  const entry = {
    logIndex: '0',
    logId: { keyId: id.toString('base64') },
    kindVersion: { kind: 'dsse', version: '0.0.1' },
    integratedTime: String(integratedTime),
    inclusionPromise: { signedEntryTimestamp: sign('sha256', Buffer.from(set), o.logKey ?? log.privateKey).toString('base64') },
    canonicalizedBody: body.toString('base64'),
    inclusionProof: inclusionProof(body, o.logKey ?? log.privateKey),
  };
  return JSON.stringify({
    mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
    verificationMaterial: { certificate: { rawBytes: der(leaf.cert).toString('base64') }, tlogEntries: o.tlog === false ? [] : [entry], timestampVerificationData: {} },
    dsseEnvelope: { payload: signedPayload.toString('base64'), payloadType: type, signatures: [{ sig: sig.toString('base64'), keyid: '' }] },
  });
}

function trustedRoot(): unknown {
  return {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [{
      baseUrl: 'https://log.molt.invalid',
      hashAlgorithm: 'SHA2_256',
      publicKey: { rawBytes: spki(log.publicKey).toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start: '2000-01-01T00:00:00Z' } },
      logId: { keyId: logId(log.publicKey).toString('base64') },
    }],
    certificateAuthorities: [{
      subject: { organization: 'molt-test', commonName: 'ca' },
      uri: 'https://ca.molt.invalid',
      certChain: { certificates: [{ rawBytes: der('ca.pem').toString('base64') }] },
      validFor: { start: '2000-01-01T00:00:00Z' },
    }],
    ctlogs: [],
    timestampAuthorities: [],
  };
}

const artifact = randomBytes(4096);
const sha = createHash('sha256').update(artifact).digest('hex');
const NAME = 'app-1.2.0.tar.gz';

function verdict(bundle: string, servedAs = NAME, digest = sha, t = trust) {
  return verifySigstoreBundle(bundle, t, servedAs, digest);
}

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-trust-sigstore-'));
  makeCa('ca');
  makeCa('otherca');
  trust = keylessTrust(trustedRoot(), { identity: 'https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v*', issuer: GHA });
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('Sigstore bundles against a test trusted root', () => {
  test('a bundle from the pinned workflow for this file: installed, by that identity', (t) => {
    const bundle = makeBundle({ subjects: [{ name: NAME, sha256: sha }] });
    const v = verdict(bundle);
    // For the benchmark notes only (no assertion on speed): one check with the root already loaded.
    const start = performance.now();
    for (let i = 0; i < 20; i++) verdict(bundle);
    t.diagnostic(`keyless verification with a loaded root: ${((performance.now() - start) / 20).toFixed(2)} ms`);
    assert.deepEqual(v, { kind: 'valid', by: WORKFLOW, signedFor: NAME });
    assert.deepEqual(decideTrust({ required: true }, { servedAs: NAME, verdicts: [v] }), { ok: true, by: WORKFLOW });
  });

  test('the older issuer extension (1.3.6.1.4.1.57264.1.1) is read too', () => {
    const v = verdict(makeBundle({ leaf: makeLeaf({ issuerOid: '1' }), subjects: [{ name: NAME, sha256: sha }] }));
    assert.equal(v.kind, 'valid');
  });

  test('another identity, or the pinned one from another issuer: identity <x> not trusted', () => {
    const evil = 'https://github.com/acme/app/.github/workflows/release.yml@refs/heads/evil';
    const a = verdict(makeBundle({ leaf: makeLeaf({ identity: evil }), subjects: [{ name: NAME, sha256: sha }] }));
    assert.deepEqual(decideTrust({ required: true }, { servedAs: NAME, verdicts: [a] }), { ok: false, reason: `identity ${evil} not trusted` });
    const b = verdict(makeBundle({ leaf: makeLeaf({ issuer: 'https://evil.example' }), subjects: [{ name: NAME, sha256: sha }] }));
    assert.deepEqual(b, { kind: 'untrusted-identity', identity: `${WORKFLOW} (issuer https://evil.example)` });
  });

  test('a certificate that is expired, or not yet valid, at the log\'s time: bad signature', () => {
    const now = Math.floor(Date.now() / 1000);
    for (const integratedTime of [now + 3 * 86400, now - 3 * 86400]) {
      const v = verdict(makeBundle({ integratedTime, subjects: [{ name: NAME, sha256: sha }] }));
      assert.equal(v.kind, 'bad');
      assert.match(v.kind === 'bad' ? v.detail : '', /not valid or expired at the specified date/);
    }
  });

  test('no timestamp at all (no tlog entry): bad signature', () => {
    const v = verdict(makeBundle({ tlog: false, subjects: [{ name: NAME, sha256: sha }] }));
    assert.equal(v.kind, 'bad');
    assert.match(v.kind === 'bad' ? v.detail : '', /expected 1 timestamps, got 0/);
  });

  test('a certificate from a CA the root does not list, or a SET from another log: bad signature', () => {
    assert.equal(verdict(makeBundle({ leaf: makeLeaf({ ca: 'otherca' }), subjects: [{ name: NAME, sha256: sha }] })).kind, 'bad');
    assert.equal(verdict(makeBundle({ logKey: strangerLog.privateKey, subjects: [{ name: NAME, sha256: sha }] })).kind, 'bad');
  });

  test('a statement edited after signing (another digest for this name): bad signature', () => {
    const other = createHash('sha256').update('evil').digest('hex');
    const b = makeBundle({ subjects: [{ name: NAME, sha256: sha }], tamperPayload: (p) => Buffer.from(p.toString().replace(sha, other)) });
    assert.equal(verdict(b, NAME, other).kind, 'bad');
  });

  test('an old attested release renamed to a higher version: signed for <old>, served as <new>', () => {
    const v = verdict(makeBundle({ subjects: [{ name: 'app-1.0.0.tar.gz', sha256: sha }] }), 'app-9.0.0.tar.gz');
    assert.deepEqual(decideTrust({ required: true }, { servedAs: 'app-9.0.0.tar.gz', verdicts: [v] }), {
      ok: false,
      reason: 'signed for app-1.0.0.tar.gz, served as app-9.0.0.tar.gz',
    });
  });

  test('bytes changed after attesting: bad signature; an attestation of other files: no signature', () => {
    const changed = createHash('sha256').update('changed').digest('hex');
    assert.equal(verdict(makeBundle({ subjects: [{ name: NAME, sha256: sha }] }), NAME, changed).kind, 'bad');
    const v = verdict(makeBundle({ subjects: [{ name: 'other.tar.gz', sha256: changed }] }));
    assert.deepEqual(decideTrust({ required: true }, { servedAs: NAME, verdicts: [v] }), { ok: false, reason: 'no signature' });
  });

  test('truncated or garbage bundles: bad signature, never a throw', () => {
    const good = makeBundle({ subjects: [{ name: NAME, sha256: sha }] });
    for (const b of [good.slice(0, good.length / 2), '{}', 'garbage', '', JSON.stringify({ mediaType: 'x' })]) {
      assert.equal(verdict(b).kind, 'bad', b.slice(0, 40));
    }
  });

  test('MOLT_TRUST_IDENTITY + MOLT_TRUST_ROOT through the updater\'s API: the pinned workflow\'s bundle installs, a bad one beside it does not matter', () => {
    fs.writeFileSync(path.join(dir, 'trusted_root.json'), JSON.stringify(trustedRoot()));
    const config = loadTrustConfig({
      MOLT_TRUST_IDENTITY: 'https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v*',
      MOLT_TRUST_ROOT: path.join(dir, 'trusted_root.json'),
    });
    assert.equal(config.issuer, GHA, 'GitHub Actions is the default issuer');
    const good = Buffer.from(makeBundle({ subjects: [{ name: NAME, sha256: sha }] }));
    const evil = Buffer.from(makeBundle({ leaf: makeLeaf({ identity: 'https://github.com/evil/x/.github/workflows/x.yml@refs/heads/main' }), subjects: [{ name: NAME, sha256: sha }] }));
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
  });
});
