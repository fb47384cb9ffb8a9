// `molt sign`, run as the real CLI: its minisign signatures verify with Debian's
// `minisign -V` (also -H, prehashed only), its PEM signatures with openssl, and
// both with molt's own verifier; bad keys are one line and exit 2.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { loadTrustConfig } from '../../src/update/trust/config.js';
import { startTrustCheck, type ReleaseSignatures } from '../../src/update/trust/release.js';

const molt = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../src/cli/main.js');
let dir: string;

function sh(cmd: string, ...args: string[]): string {
  return execFileSync(cmd, args, { cwd: dir, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

function moltSign(...args: string[]) {
  return spawnSync(process.execPath, [molt, 'sign', ...args], { cwd: dir, encoding: 'utf8' });
}

function decide(keys: string, servedAs: string, signatures: ReleaseSignatures) {
  const c = startTrustCheck(loadTrustConfig({ MOLT_TRUST_KEYS: path.join(dir, keys) }), servedAs, signatures);
  c.hasher.update(fs.readFileSync(path.join(dir, servedAs)));
  return c.finish().decision;
}

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-trust-sign-'));
  sh('minisign', '-G', '-W', '-p', 'mini.pub', '-s', 'mini.key');
  sh('openssl', 'genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'p256.key');
  sh('openssl', 'pkey', '-in', 'p256.key', '-pubout', '-out', 'p256.pem');
  sh('openssl', 'genpkey', '-algorithm', 'ED25519', '-out', 'ed.key');
  sh('openssl', 'pkey', '-in', 'ed.key', '-pubout', '-out', 'ed.pem');
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('molt sign', () => {
  test('a minisign key: FILE.minisig that minisign -V (and -V -H) accepts, with minisign\'s trusted comment', () => {
    fs.writeFileSync(path.join(dir, 'app-1.0.tar.gz'), randomBytes(3 * 1024 * 1024 + 17));
    const r = moltSign('app-1.0.tar.gz', '--key', 'mini.key');
    assert.equal(r.status, 0, r.stderr);
    const out = sh('minisign', '-V', '-H', '-p', 'mini.pub', '-m', 'app-1.0.tar.gz');
    assert.match(out, /Signature and comment signature verified/);
    assert.match(out, /Trusted comment: timestamp:\d+\tfile:app-1\.0\.tar\.gz\thashed/);
    const minisig = fs.readFileSync(path.join(dir, 'app-1.0.tar.gz.minisig'));
    const id = /minisign public key ([0-9A-F]{1,16})/.exec(fs.readFileSync(path.join(dir, 'mini.pub'), 'utf8'))![1]!.padStart(16, '0');
    assert.deepEqual(decide('mini.pub', 'app-1.0.tar.gz', { minisig }), { ok: true, by: id });
  });

  test('minisign -V refuses molt\'s signature once the file changes (the check is real)', () => {
    fs.writeFileSync(path.join(dir, 'app-1.1.tar.gz'), 'one');
    assert.equal(moltSign('app-1.1.tar.gz', '--key', 'mini.key').status, 0);
    fs.writeFileSync(path.join(dir, 'app-1.1.tar.gz'), 'two');
    const r = spawnSync('minisign', ['-V', '-p', 'mini.pub', '-m', 'app-1.1.tar.gz'], { cwd: dir, encoding: 'utf8' });
    assert.notEqual(r.status, 0);
  });

  test('a P-256 PEM key: FILE.sig (base64 DER, as cosign writes) that openssl verifies', () => {
    fs.writeFileSync(path.join(dir, 'blob'), randomBytes(2 * 1024 * 1024 + 5));
    assert.equal(moltSign('blob', '--key', 'p256.key').status, 0);
    fs.writeFileSync(path.join(dir, 'blob.der'), Buffer.from(fs.readFileSync(path.join(dir, 'blob.sig'), 'utf8'), 'base64'));
    assert.match(sh('openssl', 'dgst', '-sha256', '-verify', 'p256.pem', '-signature', 'blob.der', 'blob'), /Verified OK/);
  });

  test('an Ed25519 PEM key: FILE.sig that openssl pkeyutl verifies', () => {
    fs.writeFileSync(path.join(dir, 'small'), randomBytes(1000));
    assert.equal(moltSign('small', '--key', 'ed.key').status, 0);
    fs.writeFileSync(path.join(dir, 'small.raw'), Buffer.from(fs.readFileSync(path.join(dir, 'small.sig'), 'utf8'), 'base64'));
    assert.match(sh('openssl', 'pkeyutl', '-verify', '-pubin', '-inkey', 'ed.pem', '-rawin', '-in', 'small', '-sigfile', 'small.raw'), /Signature Verified Successfully/);
  });

  test('sha256sum > SHA256SUMS; molt sign SHA256SUMS --key p256.key: molt installs what it lists', () => {
    fs.writeFileSync(path.join(dir, 'app-2.0.tar.gz'), randomBytes(50_000));
    fs.writeFileSync(path.join(dir, 'SHA256SUMS'), sh('sha256sum', 'app-2.0.tar.gz'));
    assert.equal(moltSign('SHA256SUMS', '--key', 'p256.key').status, 0);
    const d = decide('p256.pem', 'app-2.0.tar.gz', {
      sums: { name: 'SHA256SUMS', content: fs.readFileSync(path.join(dir, 'SHA256SUMS')), sig: fs.readFileSync(path.join(dir, 'SHA256SUMS.sig')) },
    });
    assert.equal(d.ok, true);
  });

  test('--sums: SHA256SUMS exactly as sha256sum writes it, signed; molt installs each file it lists', () => {
    fs.mkdirSync(path.join(dir, 'rel'));
    for (const n of ['app-3.0-amd64.tar.gz', 'app-3.0-arm64.tar.gz']) fs.writeFileSync(path.join(dir, 'rel', n), randomBytes(70_000));
    const r = moltSign('--sums', 'rel/app-3.0-amd64.tar.gz', 'rel/app-3.0-arm64.tar.gz', '--key', 'p256.key');
    assert.equal(r.status, 0, r.stderr);
    const list = fs.readFileSync(path.join(dir, 'rel', 'SHA256SUMS'));
    assert.equal(list.toString(), execFileSync('sha256sum', ['app-3.0-amd64.tar.gz', 'app-3.0-arm64.tar.gz'], { cwd: path.join(dir, 'rel'), encoding: 'utf8' }));
    for (const n of ['app-3.0-amd64.tar.gz', 'app-3.0-arm64.tar.gz']) {
      const c = startTrustCheck(loadTrustConfig({ MOLT_TRUST_KEYS: path.join(dir, 'p256.pem') }), n, {
        sums: { name: 'SHA256SUMS', content: list, sig: fs.readFileSync(path.join(dir, 'rel', 'SHA256SUMS.sig')) },
      });
      c.hasher.update(fs.readFileSync(path.join(dir, 'rel', n)));
      assert.equal(c.finish().decision.ok, true, n);
    }
    const two = moltSign('--sums', 'x1', 'rel/x2', '--key', 'p256.key');
    assert.equal(two.status, 2);
    assert.match(two.stderr, /--sums: the files must be in one directory/);
  });

  test('bad keys and usage: one line, exit 2, nothing written', () => {
    fs.writeFileSync(path.join(dir, 'x'), 'x');
    sh('sh', '-c', 'printf "pw\\npw\\n" | minisign -G -p enc.pub -s enc.key');
    for (const [args, want] of [
      [['x', '--key', 'enc.key'], /--key enc\.key: an encrypted minisign secret key.*minisign -C -W/],
      [['x', '--key', 'mini.pub'], /--key mini\.pub: not a minisign secret key/],
      [['x', '--key', 'p256.pem'], /--key p256\.pem: not an unencrypted PEM private key/],
      [['x', '--key', 'missing.key'], /--key missing\.key: cannot read \(ENOENT\)/],
      [['x'], /--key KEY is required/],
    ] as const) {
      const r = moltSign(...args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr.split('\n')[0]!, want);
    }
    assert.ok(!fs.existsSync(path.join(dir, 'x.minisig')) && !fs.existsSync(path.join(dir, 'x.sig')));
  });
});
