// PEM-key signatures made by openssl (P-256 with SHA-256, DER; Ed25519 raw),
// raw as openssl writes them and base64 as cosign does, over the artifact
// (checked while streaming: valid but unnamed, so refused for lack of a name
// binding) and over a SHA256SUMS that names it (installed), plus a signed
// SHA256SUMS from minisign.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { loadTrustConfig, type TrustConfig } from '../../src/update/trust/config.js';
import { startTrustCheck, type ReleaseSignatures } from '../../src/update/trust/release.js';
import { TrustHasher } from '../../src/update/trust/hasher.js';
import { pemNeeds, parsePemSignature, verifyPemOverArtifact } from '../../src/update/trust/pem.js';

let dir: string;
let trust: TrustConfig;
const idOf: Record<string, string> = {};

function sh(cmd: string, ...args: string[]): Buffer {
  return execFileSync(cmd, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The signature openssl makes over `file` with `key`; base64 (cosign's .sig format) when asked. */
function opensslSign(key: 'p256' | 'ed' | 'stranger', file: string, base64 = false): Buffer {
  const raw = key === 'ed'
    ? sh('openssl', 'pkeyutl', '-sign', '-inkey', `${key}.key`, '-rawin', '-in', file)
    : sh('openssl', 'dgst', '-sha256', '-sign', `${key}.key`, file);
  return base64 ? Buffer.from(raw.toString('base64')) : raw;
}

function artifact(name: string, size = 200_000): Buffer {
  const bytes = randomBytes(size);
  fs.writeFileSync(path.join(dir, name), bytes);
  return bytes;
}

/** SHA256SUMS as sha256sum writes it, for `names` in the test dir. */
function sums(...names: string[]): Buffer {
  const text = sh('sha256sum', ...names);
  fs.writeFileSync(path.join(dir, 'SHA256SUMS'), text);
  return text;
}

function check(servedAs: string, bytes: Buffer, signatures: ReleaseSignatures, config = trust) {
  const c = startTrustCheck(config, servedAs, signatures);
  for (let off = 0; off < bytes.length; off += 65_536) c.hasher.update(bytes.subarray(off, off + 65_536));
  return c.finish().decision;
}

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-trust-pem-'));
  fs.mkdirSync(path.join(dir, 'keys'));
  for (const [name, args] of [
    ['p256', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']],
    ['stranger', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']],
    ['ed', ['-algorithm', 'ED25519']],
  ] as const) {
    sh('openssl', 'genpkey', ...args, '-out', `${name}.key`);
    sh('openssl', 'pkey', '-in', `${name}.key`, '-pubout', '-out', name === 'stranger' ? 'stranger.pem' : `keys/${name}.pem`);
  }
  sh('minisign', '-G', '-W', '-p', 'keys/mini.pub', '-s', 'mini.key');
  trust = loadTrustConfig({ MOLT_TRUST_KEYS: path.join(dir, 'keys') });
  for (const k of trust.keys) idOf[path.basename(k.source).split('.')[0]!] = k.id;
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('PEM signatures from openssl', () => {
  test('P-256 over the artifact, raw DER or base64: verified while streaming, but names no file', () => {
    const bytes = artifact('app-1.0.tar.gz');
    for (const b64 of [false, true]) {
      const sig = opensslSign('p256', 'app-1.0.tar.gz', b64);
      const parsed = parsePemSignature(sig);
      assert.ok(typeof parsed !== 'string', String(parsed));
      const h = new TrustHasher(pemNeeds(parsed, trust.keys));
      for (let off = 0; off < bytes.length; off += 1000) h.update(bytes.subarray(off, off + 1000));
      assert.deepEqual(verifyPemOverArtifact(sig, trust.keys, h.finish()), { kind: 'valid', by: idOf.p256, signedFor: null });
      assert.deepEqual(check('app-1.0.tar.gz', bytes, { sig }), { ok: false, reason: 'signed for (no name), served as app-1.0.tar.gz' });
    }
  });

  test('Ed25519 over the artifact: verified from the kept bytes, names no file', () => {
    const bytes = artifact('app-1.1.tar.gz');
    const sig = opensslSign('ed', 'app-1.1.tar.gz', true);
    const h = new TrustHasher(pemNeeds(parsePemSignature(sig) as Buffer, trust.keys));
    h.update(bytes);
    assert.deepEqual(verifyPemOverArtifact(sig, trust.keys, h.finish()), { kind: 'valid', by: idOf.ed, signedFor: null });
  });

  test('P-256 and Ed25519 over SHA256SUMS that lists the artifact: installed, by that key', () => {
    const bytes = artifact('app-2.0.tar.gz');
    const list = sums('app-2.0.tar.gz');
    for (const key of ['p256', 'ed'] as const) {
      const sig = opensslSign(key, 'SHA256SUMS', true);
      const d = check('app-2.0.tar.gz', bytes, { sums: { name: 'SHA256SUMS', content: list, sig } });
      assert.deepEqual(d, { ok: true, by: idOf[key] });
    }
  });

  test('minisign over SHA256SUMS: installed, by the minisign key', () => {
    const bytes = artifact('app-2.1.tar.gz');
    const list = sums('app-2.1.tar.gz');
    sh('minisign', '-S', '-s', 'mini.key', '-m', 'SHA256SUMS');
    const minisig = fs.readFileSync(path.join(dir, 'SHA256SUMS.minisig'));
    assert.deepEqual(check('app-2.1.tar.gz', bytes, { sums: { name: 'SHA256SUMS', content: list, minisig } }), { ok: true, by: idOf.mini });
  });

  test('a key the image does not trust: bad signature (a PEM signature carries no key id)', () => {
    const bytes = artifact('app-3.0.tar.gz');
    const list = sums('app-3.0.tar.gz');
    const sig = opensslSign('stranger', 'SHA256SUMS', true);
    const d = check('app-3.0.tar.gz', bytes, { sums: { name: 'SHA256SUMS', content: list, sig } });
    assert.equal(!d.ok && d.reason, 'bad signature');
    assert.match(!d.ok ? d.detail ?? '' : '', /none of the 2 trusted PEM key/);
  });

  test('bytes changed after signing: bad signature, directly and through SHA256SUMS', () => {
    const bytes = artifact('app-4.0.tar.gz');
    const list = sums('app-4.0.tar.gz');
    const sumsSig = opensslSign('p256', 'SHA256SUMS', true);
    const direct = opensslSign('p256', 'app-4.0.tar.gz', true);
    bytes[1234] = bytes[1234]! ^ 0x80;
    for (const signatures of [{ sig: direct }, { sums: { name: 'SHA256SUMS', content: list, sig: sumsSig } }]) {
      const d = check('app-4.0.tar.gz', bytes, signatures);
      assert.equal(!d.ok && d.reason, 'bad signature', JSON.stringify(Object.keys(signatures)));
    }
  });

  test('an old release and its signed SHA256SUMS served under a higher version: signed for <old>, served as <new>', () => {
    const bytes = artifact('app-1.5.tar.gz');
    const list = sums('app-1.5.tar.gz');
    const sig = opensslSign('p256', 'SHA256SUMS', true);
    assert.deepEqual(check('app-9.0.tar.gz', bytes, { sums: { name: 'SHA256SUMS', content: list, sig } }), {
      ok: false,
      reason: 'signed for app-1.5.tar.gz, served as app-9.0.tar.gz',
    });
  });

  test('a signed SHA256SUMS that does not list the artifact: no signature', () => {
    const bytes = artifact('app-5.0.tar.gz');
    artifact('unrelated.tar.gz');
    const list = sums('unrelated.tar.gz');
    const sig = opensslSign('p256', 'SHA256SUMS', true);
    assert.deepEqual(check('app-5.0.tar.gz', bytes, { sums: { name: 'SHA256SUMS', content: list, sig } }), { ok: false, reason: 'no signature' });
  });

  test('a SHA256SUMS edited after signing (a new line for the served file): bad signature', () => {
    const bytes = artifact('app-6.0.tar.gz');
    artifact('app-5.9.tar.gz');
    const list = sums('app-5.9.tar.gz');
    const sig = opensslSign('p256', 'SHA256SUMS', true);
    const edited = Buffer.concat([list, sh('sha256sum', 'app-6.0.tar.gz')]);
    const d = check('app-6.0.tar.gz', bytes, { sums: { name: 'SHA256SUMS', content: edited, sig } });
    assert.equal(!d.ok && d.reason, 'bad signature');
  });

  test('truncated or garbage .sig files: bad signature', () => {
    const bytes = artifact('app-7.0.tar.gz');
    const list = sums('app-7.0.tar.gz');
    const good = opensslSign('p256', 'SHA256SUMS');
    for (const sig of [good.subarray(0, good.length - 5), Buffer.from('garbage'), Buffer.alloc(0), randomBytes(64), randomBytes(300)]) {
      const d = check('app-7.0.tar.gz', bytes, { sums: { name: 'SHA256SUMS', content: list, sig } });
      assert.equal(!d.ok && d.reason, 'bad signature', sig.toString('hex').slice(0, 40));
    }
  });

  test('a bare .sig beside a signed SHA256SUMS costs nothing: no extra hash pass, and the list decides', () => {
    const bytes = artifact('app-9.0.tar.gz');
    const list = sums('app-9.0.tar.gz');
    const sums_ = { name: 'SHA256SUMS', content: list, sig: opensslSign('p256', 'SHA256SUMS', true) };
    const bare = opensslSign('p256', 'app-9.0.tar.gz', true);
    const both = startTrustCheck(trust, 'app-9.0.tar.gz', { sig: bare, sums: sums_ });
    both.hasher.update(bytes);
    const r = both.finish();
    assert.deepEqual(r.decision, { ok: true, by: idOf.p256 });
    assert.equal(r.digests.ecdsa.length, 0, 'no streaming ECDSA verifier');
    assert.equal(r.digests.bytes, undefined, 'no bytes kept');
    const alone = startTrustCheck(trust, 'app-9.0.tar.gz', { sig: bare });
    alone.hasher.update(bytes);
    assert.deepEqual(alone.finish().digests.ecdsa, [true], 'alone, it is checked (to say why it is refused)');
  });

  test('a PEM signature when only minisign keys are trusted: unknown key', () => {
    const bytes = artifact('app-8.0.tar.gz');
    const list = sums('app-8.0.tar.gz');
    const sig = opensslSign('p256', 'SHA256SUMS', true);
    const miniOnly = loadTrustConfig({ MOLT_TRUST_KEYS: path.join(dir, 'keys', 'mini.pub') });
    const d = check('app-8.0.tar.gz', bytes, { sums: { name: 'SHA256SUMS', content: list, sig } }, miniOnly);
    assert.match(!d.ok ? d.reason : '', /^unknown key /);
  });
});
