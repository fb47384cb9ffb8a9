// MOLT_TRUST_KEYS: minisign public keys written by Debian's minisign, PEM keys
// written by openssl, key ids as the tools show them, and one-line errors that
// name the variable and the file for anything else.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createHash, createPublicKey } from 'node:crypto';
import { loadTrustKeys, minisignKeyId, parseTrustKey, TrustConfigError } from '../../src/update/trust/keys.js';
import { loadTrustConfig, trustStartupWarning } from '../../src/update/trust/config.js';

let dir: string;
let minisignPub: string;
let minisignId: string;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-trust-keys-'));
  execFileSync('minisign', ['-G', '-W', '-p', path.join(dir, 'mini.pub'), '-s', path.join(dir, 'mini.key')], { stdio: 'pipe' });
  minisignPub = fs.readFileSync(path.join(dir, 'mini.pub'), 'utf8');
  // minisign names its key in the public key's comment: "minisign public key <ID>".
  minisignId = /minisign public key ([0-9A-F]{1,16})/.exec(minisignPub)![1]!.padStart(16, '0');
  for (const [name, args] of [
    ['p256', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']],
    ['ed', ['-algorithm', 'ED25519']],
    ['p384', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384']],
    ['rsa', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048']],
  ] as const) {
    execFileSync('openssl', ['genpkey', ...args, '-out', path.join(dir, `${name}.key`)], { stdio: 'pipe' });
    execFileSync('openssl', ['pkey', '-in', path.join(dir, `${name}.key`), '-pubout', '-out', path.join(dir, `${name}.pem`)], { stdio: 'pipe' });
  }
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function keysDir(files: Record<string, string>): string {
  const d = fs.mkdtempSync(path.join(dir, 'keys-'));
  for (const [n, c] of Object.entries(files)) fs.writeFileSync(path.join(d, n), c);
  return d;
}

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof TrustConfigError, `expected TrustConfigError, got ${String(err)}`);
    assert.doesNotMatch(err.message, /\n/, 'one line');
    return err.message;
  }
  assert.fail('expected a TrustConfigError');
}

describe('trust keys', () => {
  test('a minisign public key file gets the key id minisign shows', () => {
    const k = parseTrustKey(minisignPub, 'mini.pub');
    assert.ok(typeof k !== 'string' && k.kind === 'minisign');
    assert.equal(k.id, minisignId);
  });

  test('key ids are always 16 digits; minisign prints them without leading zeros', () => {
    // minisign's "%" PRIX64 drops leading zeros (1 key in 16); molt pads so ids compare as strings.
    assert.equal(minisignKeyId(Buffer.from([0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01])), '0123456789ABCDEF');
    assert.equal(minisignKeyId(Buffer.alloc(8)), '0000000000000000');
  });

  test('the bare RW... string is the same key', () => {
    const bare = minisignPub.trim().split('\n')[1]!;
    assert.match(bare, /^RW/);
    const k = parseTrustKey(bare + '\n', 'env');
    assert.ok(typeof k !== 'string' && k.kind === 'minisign');
    assert.equal(k.id, minisignId);
  });

  test('PEM P-256 and Ed25519 keys; the id is the sha256 of the SPKI DER', () => {
    for (const [name, alg] of [['p256', 'ecdsa-p256'], ['ed', 'ed25519']] as const) {
      const pem = fs.readFileSync(path.join(dir, `${name}.pem`), 'utf8');
      const k = parseTrustKey(pem, name);
      assert.ok(typeof k !== 'string' && k.kind === 'pem', String(k));
      assert.equal(k.algorithm, alg);
      const der = createPublicKey(pem).export({ type: 'spki', format: 'der' });
      assert.equal(k.id, createHash('sha256').update(der).digest('hex').slice(0, 16));
    }
  });

  test('a directory of keys loads every key and skips hidden entries (ConfigMap ..data)', () => {
    const d = keysDir({
      'release.pub': minisignPub,
      'cosign.pub': fs.readFileSync(path.join(dir, 'p256.pem'), 'utf8'),
      '..data': 'not a key',
    });
    const keys = loadTrustKeys(d);
    assert.deepEqual(keys.map((k) => k.kind).sort(), ['minisign', 'pem']);
  });

  test('malformed key files are one-line errors naming MOLT_TRUST_KEYS and the file', () => {
    const cases: Record<string, string> = {
      'garbage.pub': 'hello world\n',
      'short.pub': 'untrusted comment: x\nRWQfoo\n',
      'p384.pem': fs.readFileSync(path.join(dir, 'p384.pem'), 'utf8'),
      'rsa.pem': fs.readFileSync(path.join(dir, 'rsa.pem'), 'utf8'),
      'private.pem': fs.readFileSync(path.join(dir, 'p256.key'), 'utf8'),
      'broken.pem': '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n',
    };
    for (const [name, content] of Object.entries(cases)) {
      const file = path.join(keysDir({ [name]: content }), name);
      const msg = configError(() => loadTrustKeys(file));
      assert.ok(msg.startsWith(`MOLT_TRUST_KEYS: ${file}: `), msg);
    }
    // One bad file in a directory fails the whole setting: a half-loaded trust set is not what was asked for.
    const d = keysDir({ 'good.pub': minisignPub, 'bad.pub': 'nope' });
    assert.match(configError(() => loadTrustKeys(d)), /^MOLT_TRUST_KEYS: .*bad\.pub: /);
  });

  test('a missing path or an empty directory is an error, not an empty trust set', () => {
    assert.match(configError(() => loadTrustKeys(path.join(dir, 'nope'))), /MOLT_TRUST_KEYS: .*nope: cannot read \(ENOENT\)/);
    assert.match(configError(() => loadTrustKeys(keysDir({}))), /no public keys/);
  });

  test('config: none set is not required and warns once; any set requires signatures', () => {
    const none = loadTrustConfig({});
    assert.equal(none.required, false);
    assert.match(trustStartupWarning(none)!, /without a signature check/);
    const keyed = loadTrustConfig({ MOLT_TRUST_KEYS: path.join(dir, 'mini.pub') });
    assert.equal(keyed.required, true);
    assert.equal(keyed.keys.length, 1);
    assert.equal(trustStartupWarning(keyed), null);
    // Keyless settings without MOLT_TRUST_ROOT take the public-good root through TUF (trust-tuf.test.ts); with one, see trust-sigstore.test.ts.
    const identity = 'https://github.com/o/r/.github/workflows/release.yml@refs/tags/v*';
    const viaTuf = loadTrustConfig({ MOLT_TRUST_IDENTITY: identity });
    assert.equal(viaTuf.required, true);
    assert.deepEqual(viaTuf.tuf, {}, 'the root comes through TUF, from the public-good repository');
    assert.equal(viaTuf.keyless, undefined, 'not before TUF answered (or a cache was loaded)');
    fs.writeFileSync(path.join(dir, 'root.json'), '{"mediaType": ');
    assert.match(configError(() => loadTrustConfig({ MOLT_TRUST_IDENTITY: identity, MOLT_TRUST_ROOT: path.join(dir, 'root.json') })), /^MOLT_TRUST_ROOT: .*root\.json: not a readable JSON file/);
    fs.writeFileSync(path.join(dir, 'root.json'), '{"mediaType": "x"}');
    assert.match(configError(() => loadTrustConfig({ MOLT_TRUST_IDENTITY: identity, MOLT_TRUST_ROOT: path.join(dir, 'root.json') })), /^MOLT_TRUST_ROOT: .*: not a Sigstore trusted root/);
    assert.match(configError(() => loadTrustConfig({ MOLT_TRUST_ROOT: path.join(dir, 'root.json') })), /^MOLT_TRUST_ROOT: set without MOLT_TRUST_IDENTITY/);
    assert.match(configError(() => loadTrustConfig({ MOLT_TRUST_ISSUER: 'https://x' })), /^MOLT_TRUST_ISSUER: /);
  });
});
