// minisign signatures made by Debian's minisign, checked by molt through the
// API the updater uses (startTrustCheck fed chunk by chunk), and each way a
// release can be refused: stranger's key, no signature, changed bytes, another
// file's signature, an old release renamed, truncated or garbage files.
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
import { verifyMinisign } from '../../src/update/trust/minisign.js';

let dir: string;
let trust: TrustConfig;
let trustedId: string;
let strangerId: string;

function minisign(...args: string[]): string {
  return execFileSync('minisign', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function keyId(pubFile: string): string {
  return /minisign public key ([0-9A-F]{1,16})/.exec(fs.readFileSync(path.join(dir, pubFile), 'utf8'))![1]!.padStart(16, '0');
}

/** A release file of `size` random bytes, signed by `key` unless null; extra minisign flags after -S. */
function release(name: string, size: number, key: string | null, ...flags: string[]): Buffer {
  const bytes = randomBytes(size);
  fs.writeFileSync(path.join(dir, name), bytes);
  if (key) minisign('-S', ...flags, '-s', key, '-m', name);
  return bytes;
}

const sigOf = (name: string): Buffer => fs.readFileSync(path.join(dir, `${name}.minisig`));

/** What the updater will do: feed the artifact in small chunks through one reused buffer, then decide. */
function check(servedAs: string, bytes: Buffer, signatures: ReleaseSignatures, config = trust) {
  const c = startTrustCheck(config, servedAs, signatures);
  const reused = Buffer.alloc(4096);
  for (let off = 0; off < bytes.length; off += reused.length) {
    const n = bytes.copy(reused, 0, off, off + reused.length);
    c.hasher.update(reused.subarray(0, n));
    reused.fill(0xee); // a caller that reuses its buffer must not corrupt what the hasher kept
  }
  return c.finish().decision;
}

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-trust-minisign-'));
  minisign('-G', '-W', '-p', 'trusted.pub', '-s', 'trusted.key');
  minisign('-G', '-W', '-p', 'stranger.pub', '-s', 'stranger.key');
  trustedId = keyId('trusted.pub');
  strangerId = keyId('stranger.pub');
  trust = loadTrustConfig({ MOLT_TRUST_KEYS: path.join(dir, 'trusted.pub') });
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('minisign signatures from Debian minisign', () => {
  test('the default (prehashed) signature verifies and names the key', () => {
    const bytes = release('app-1.0.tar.gz', 300_000, 'trusted.key');
    assert.match(sigOf('app-1.0.tar.gz').toString(), /^[^\n]*\nRU/, 'prehashed: alg "ED", base64 "RU..."');
    assert.deepEqual(check('app-1.0.tar.gz', bytes, { minisig: sigOf('app-1.0.tar.gz') }), { ok: true, by: trustedId });
  });

  test('a legacy (-l) signature over the raw bytes verifies', () => {
    const bytes = release('app-1.1.tar.gz', 100_000, 'trusted.key', '-l');
    assert.match(sigOf('app-1.1.tar.gz').toString(), /^[^\n]*\nRW/, 'legacy: alg "Ed", base64 "RW..."');
    assert.deepEqual(check('app-1.1.tar.gz', bytes, { minisig: sigOf('app-1.1.tar.gz') }), { ok: true, by: trustedId });
  });

  test('signed by a key the image does not trust: unknown key <id>', () => {
    const bytes = release('app-2.0.tar.gz', 10_000, 'stranger.key');
    assert.deepEqual(check('app-2.0.tar.gz', bytes, { minisig: sigOf('app-2.0.tar.gz') }), { ok: false, reason: `unknown key ${strangerId}` });
  });

  test('unsigned: no signature', () => {
    const bytes = release('app-2.1.tar.gz', 10_000, null);
    assert.deepEqual(check('app-2.1.tar.gz', bytes, {}), { ok: false, reason: 'no signature' });
  });

  test('bytes changed after signing: bad signature (prehashed and legacy)', () => {
    for (const flags of [[], ['-l']]) {
      const name = `app-3.0${flags.join('')}.tar.gz`;
      const bytes = release(name, 50_000, 'trusted.key', ...flags);
      bytes[25_000] = bytes[25_000]! ^ 1;
      const d = check(name, bytes, { minisig: sigOf(name) });
      assert.equal(d.ok, false);
      assert.equal(!d.ok && d.reason, 'bad signature');
    }
  });

  test("another file's signature served beside this file: bad signature", () => {
    const bytes = release('app-3.1.tar.gz', 20_000, null);
    release('other.tar.gz', 20_000, 'trusted.key');
    const d = check('app-3.1.tar.gz', bytes, { minisig: sigOf('other.tar.gz') });
    assert.equal(!d.ok && d.reason, 'bad signature');
  });

  test('a signed old release renamed to a higher version: signed for <old>, served as <new>', () => {
    const bytes = release('app-1.2.tar.gz', 20_000, 'trusted.key');
    const d = check('app-9.0.tar.gz', bytes, { minisig: sigOf('app-1.2.tar.gz') });
    assert.deepEqual(d, { ok: false, reason: 'signed for app-1.2.tar.gz, served as app-9.0.tar.gz' });
  });

  test('a file named the same in every release, signed for an old one, served under a new version: refused', () => {
    const bytes = release('app-linux.tar.gz', 20_000, 'trusted.key');
    const c = startTrustCheck(trust, 'app-linux.tar.gz', { minisig: sigOf('app-linux.tar.gz') }, { version: '9.0.0' });
    c.hasher.update(bytes);
    assert.deepEqual(c.finish().decision, { ok: false, reason: 'signed for app-linux.tar.gz, served as app-linux.tar.gz (version 9.0.0)' });
  });

  test('the rename with the trusted comment edited to match: the global signature fails', () => {
    const bytes = release('app-1.3.tar.gz', 20_000, 'trusted.key');
    const forged = sigOf('app-1.3.tar.gz').toString().replace('file:app-1.3.tar.gz', 'file:app-9.1.tar.gz');
    assert.match(forged, /file:app-9\.1\.tar\.gz/);
    const d = check('app-9.1.tar.gz', bytes, { minisig: Buffer.from(forged) });
    assert.equal(!d.ok && d.reason, 'bad signature');
  });

  test('a signature whose trusted comment names no file does not bind: refused', () => {
    const bytes = release('app-4.0.tar.gz', 5_000, 'trusted.key', '-t', 'release of the year');
    assert.deepEqual(check('app-4.0.tar.gz', bytes, { minisig: sigOf('app-4.0.tar.gz') }), {
      ok: false,
      reason: 'signed for (no name), served as app-4.0.tar.gz',
    });
  });

  test('truncated or garbage signature files: bad signature, never a throw', () => {
    const bytes = release('app-5.0.tar.gz', 5_000, 'trusted.key');
    const good = sigOf('app-5.0.tar.gz').toString();
    const lines = good.split('\n');
    const variants = [
      good.slice(0, good.length / 2),
      lines.slice(0, 3).join('\n'),
      lines[0] + '\n' + lines[1]!.slice(0, 40) + '\n' + lines.slice(2).join('\n'),
      lines.slice(0, 3).join('\n') + '\n' + lines[3]!.slice(0, 20) + '\n',
      'garbage\n',
      '',
      randomBytes(200).toString('latin1'),
    ];
    for (const v of variants) {
      const d = check('app-5.0.tar.gz', bytes, { minisig: Buffer.from(v, 'latin1') });
      assert.equal(!d.ok && d.reason, 'bad signature', JSON.stringify(v.slice(0, 60)));
    }
  });

  test('with no trust setting the signature is not consulted (today\'s behaviour)', () => {
    const bytes = release('app-6.0.tar.gz', 5_000, null);
    assert.deepEqual(check('app-6.0.tar.gz', bytes, {}, loadTrustConfig({})), { ok: true, by: null });
  });

  test('a legacy signature over more than the raw bound is refused without buffering it', () => {
    const bytes = release('app-7.0.tar.gz', 9_000, 'trusted.key', '-l');
    const h = new TrustHasher({ bytes: true }, 8_192);
    h.update(bytes.subarray(0, 5_000));
    h.update(bytes.subarray(5_000));
    const digests = h.finish();
    assert.equal(digests.bytes, 'too-big');
    const v = verifyMinisign(sigOf('app-7.0.tar.gz').toString(), trust.keys, digests);
    assert.equal(v.kind, 'bad');
    assert.match(v.kind === 'bad' ? v.detail : '', /legacy minisign signature over more than 64 MiB/);
  });
});
