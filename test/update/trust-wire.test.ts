// The trust check wired into the updater, piece by piece: the download feeds
// the hasher the bytes it hashes; MOLT_DIR verifies before extracting (a signed
// SHA256SUMS, a directory release, an oversized signature file); a source that
// checks no signatures is refused outright when one is required; the refusal
// is blocked with the reason and counted; status shows what verified the
// running version; state.json stays compatible. Signatures by Debian's minisign.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { StatusCounter, UpdaterMetrics } from '../../src/api/metrics.js';
import type { HistoryEntry, UpdaterStatus } from '../../src/api/types.js';
import { formatStatus } from '../../src/cli/control-format.js';
import { downloadVerified } from '../../src/update/download.js';
import { Journal, parseJournal } from '../../src/update/journal.js';
import { LocalDirSource } from '../../src/update/sources/local.js';
import { UpdaterCore } from '../../src/update/core.js';
import { stage } from '../../src/update/stage.js';
import { VersionStore } from '../../src/update/store.js';
import { loadTrustConfig } from '../../src/update/trust/config.js';
import { readSignatureFile, SIGNATURE_MAX_BYTES, TrustRefusal, trustGate } from '../../src/update/trust/gate.js';
import { attestationBundles, MAX_ATTESTATIONS } from '../../src/update/github/signatures.js';
import { UpdateError, type Release, type ReleaseSource } from '../../src/update/types.js';
import { cli } from '../helpers/molt.js';
import { tgz } from './fixtures-local/tarbuild.js';

let dir: string;
const minisign = (cwd: string, ...args: string[]) => execFileSync('minisign', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
let keyId: string;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-trust-wire-'));
  minisign(dir, '-G', '-W', '-p', 'trusted.pub', '-s', 'trusted.key');
  keyId = /minisign public key ([0-9A-F]{1,16})/.exec(fs.readFileSync(path.join(dir, 'trusted.pub'), 'utf8'))![1]!.padStart(16, '0');
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const trust = () => loadTrustConfig({ MOLT_TRUST_KEYS: path.join(dir, 'trusted.pub') });

async function find(src: LocalDirSource, version: string): Promise<Release> {
  const r = (await src.list()).releases.find((x) => x.version === version);
  assert.ok(r, `release ${version} listed`);
  return r;
}

describe('downloadVerified: onChunk', () => {
  test('sees every byte once, in order, even when the body reuses its buffer', async () => {
    const data = randomBytes(300_000);
    const shared = Buffer.alloc(65536);
    async function* reused() {
      for (let off = 0; off < data.length; off += shared.length) {
        const n = data.copy(shared, 0, off, off + shared.length);
        yield shared.subarray(0, n);
      }
    }
    const seen = createHash('sha256');
    let n = 0;
    const r = await downloadVerified({ body: reused(), dest: path.join(dir, 'dl.bin'), onChunk: (c) => {
      seen.update(c);
      n += c.length;
    } });
    assert.equal(n, data.length);
    assert.equal(`sha256:${seen.digest('hex')}`, r.digest);
    assert.equal(r.digest, `sha256:${createHash('sha256').update(data).digest('hex')}`);
  });
});

describe('MOLT_DIR with MOLT_TRUST_KEYS', () => {
  let rel: string;
  let staging: string;
  before(() => {
    rel = path.join(dir, 'rel');
    staging = path.join(dir, 'staging');
    fs.mkdirSync(rel);
    fs.writeFileSync(path.join(rel, '1.0.0.tar.gz'), tgz([{ name: 'run', body: '#!/bin/sh\n', mode: 0o755 }]));
    fs.writeFileSync(path.join(rel, '2.0.0.tar.gz'), tgz([{ name: 'run', body: '#!/bin/sh\necho two\n', mode: 0o755 }]));
    fs.mkdirSync(path.join(rel, '3.0.0'));
    fs.writeFileSync(path.join(rel, '3.0.0', 'run'), '#!/bin/sh\n', { mode: 0o755 });
    // A hostile archive, unsigned: refused for its signature before extraction looks at it.
    fs.writeFileSync(path.join(rel, '4.0.0.tar.gz'), tgz([{ name: '../../escape', body: 'x' }]));
    const sums = ['1.0.0.tar.gz'].map((n) => `${createHash('sha256').update(fs.readFileSync(path.join(rel, n))).digest('hex')}  ${n}\n`).join('');
    fs.writeFileSync(path.join(rel, 'SHA256SUMS'), sums);
    minisign(rel, '-S', '-s', path.join(dir, 'trusted.key'), '-m', 'SHA256SUMS');
    // 2.0.0: a .minisig over the limit is refused without being read whole.
    fs.writeFileSync(path.join(rel, '2.0.0.tar.gz.minisig'), Buffer.alloc(SIGNATURE_MAX_BYTES + 1, 0x41));
  });

  test('a tarball listed in a signed SHA256SUMS is fetched, and the key is reported', async () => {
    const src = new LocalDirSource(rel);
    const f = await src.fetch(await find(src, '1.0.0'), staging, { trust: trust() });
    assert.equal(f.trustedBy, keyId);
    assert.ok(fs.existsSync(path.join(f.dir, 'run')));
  });

  test('hash once: a tarball with only minisign\'s prehashed signature gets no SHA-256, only the BLAKE2b-512 it is signed over', async () => {
    // Its own directory: a signed SHA256SUMS beside it would need the SHA-256 (to tell a renamed file).
    const only = path.join(dir, 'rel-minisig-only');
    fs.mkdirSync(only);
    fs.writeFileSync(path.join(only, '5.0.0.tar.gz'), tgz([{ name: 'run', body: '#!/bin/sh\necho five\n', mode: 0o755 }]));
    minisign(only, '-S', '-s', path.join(dir, 'trusted.key'), '-m', '5.0.0.tar.gz');
    // Count the SHA-256 hashers made on this thread (the BLAKE2b-512 runs on a worker) through node:crypto's live exports.
    const crypto = createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto');
    const real = crypto.createHash;
    let sha256 = 0;
    crypto.createHash = ((alg: string, ...rest: []) => {
      if (alg === 'sha256') sha256++;
      return real.call(crypto, alg, ...rest);
    }) as typeof real;
    syncBuiltinESMExports();
    try {
      const onlySrc = new LocalDirSource(only);
      const f = await onlySrc.fetch(await find(onlySrc, '5.0.0'), staging, { trust: trust() });
      assert.equal(f.trustedBy, keyId);
      assert.equal(fs.readFileSync(path.join(f.dir, 'run'), 'utf8'), '#!/bin/sh\necho five\n');
      assert.equal(sha256, 0, 'no SHA-256 of an artifact nothing compares it with');
      const src = new LocalDirSource(rel);
      const listed = await src.fetch(await find(src, '1.0.0'), staging, { trust: trust() });
      assert.equal(listed.trustedBy, keyId);
      assert.ok(sha256 >= 1, 'a tarball listed in SHA256SUMS is hashed with SHA-256 (and the count sees it)');
    } finally {
      crypto.createHash = real;
      syncBuiltinESMExports();
    }
  });

  test('without trust settings the same fetch reports null and reads no signature', async () => {
    const src = new LocalDirSource(rel);
    const f = await src.fetch(await find(src, '2.0.0'), staging, {});
    assert.equal(f.trustedBy, null);
  });

  for (const [version, reason, detail] of [
    ['2.0.0', 'bad signature', /larger than 1048576 bytes/],
    ['3.0.0', 'no signature', /directory release/],
    ['4.0.0', 'no signature', undefined],
  ] as const) {
    test(`${version}: refused with "${reason}" before extraction, no debris`, async () => {
      const src = new LocalDirSource(rel);
      const before = fs.existsSync(staging) ? fs.readdirSync(staging).sort() : [];
      await assert.rejects(src.fetch(await find(src, version), staging, { trust: trust() }), (e: unknown) => {
        assert.ok(e instanceof TrustRefusal, String(e));
        assert.equal(e.code, 'untrusted');
        assert.equal(e.reason, reason);
        if (detail) assert.match(e.detail ?? '', detail);
        return true;
      });
      assert.deepEqual(fs.readdirSync(staging).sort(), before, 'no debris');
    });
  }
});

describe('readSignatureFile', () => {
  test('reads the whole file, even one whose size fstat understates (procfs says 0), up to the limit', async () => {
    const small = path.join(dir, 'small.sig');
    fs.writeFileSync(small, 'abc');
    assert.equal(Buffer.from((await readSignatureFile(small))!).toString(), 'abc');
    const proc = '/proc/self/mountinfo';
    assert.equal(fs.statSync(proc).size, 0);
    const got = Buffer.from((await readSignatureFile(proc))!).toString();
    assert.ok(got.length > 0 && got.includes(' / '), 'the mount table, not nothing');
    assert.equal(await readSignatureFile(path.join(dir, 'absent.sig')), undefined);
    const big = path.join(dir, 'big.sig');
    fs.writeFileSync(big, Buffer.alloc(SIGNATURE_MAX_BYTES + 1, 0x41));
    await assert.rejects(readSignatureFile(big), (e: unknown) => e instanceof TrustRefusal && e.reason === 'bad signature');
  });
});

describe('the updater with a required signature', () => {
  test('a source that checks no signatures is refused and blocked before it fetches; counted once', async () => {
    const home = fs.mkdtempSync(path.join(dir, 'home-'));
    let fetched = 0;
    const source: ReleaseSource = {
      description: 'oci registry.example/app',
      list: async () => ({ releases: [], notModified: false }),
      fetch: async () => {
        fetched++;
        throw new UpdateError('not reached', 'network');
      },
    };
    const events: HistoryEntry[] = [];
    const metrics = new UpdaterMetrics();
    const c = new UpdaterCore({
      config: { keep: 3, intervalMs: 1000 } as never,
      source,
      store: new VersionStore(home),
      app: { send: () => undefined } as never,
      journal: new Journal(home),
      hostname: 'test',
      trust: trust(),
      hooks: { onEvent: (e) => (events.push(e), metrics.onEvent(e)) },
    });
    const release: Release = { version: '9.0.0', tag: '9.0.0', prerelease: false, locator: {} };
    await assert.rejects(stage(c, release, 'policy'), (e: unknown) => e instanceof TrustRefusal && e.reason === 'no signature');
    assert.equal(fetched, 0);
    assert.equal(c.j.state.phase, 'idle');
    assert.deepEqual(c.j.state.blocked.map((b) => [b.version, b.reason]), [['9.0.0', 'no signature']]);
    assert.ok(events.some((e) => e.event === 'block' && e.cause === 'signature'));
    assert.equal(metrics.counts.signatureFailures, 1);
    // Journaled: a new process sees the block.
    assert.ok(new Journal(home).isBlocked('9.0.0'));
  });
});

describe('reporting', () => {
  const status = (over: Partial<UpdaterStatus>): UpdaterStatus => ({ phase: 'idle', source: 'dir /r', policy: 'latest', releases: [], blocked: [], history: [], actions: [], ...over });

  test('molt status shows what verified the running version, and nothing when unknown', () => {
    assert.match(formatStatus(status({ current: '1.0.0', verifiedBy: 'ABCDEF0123456789' }), Date.now()), /signed by\s+ABCDEF0123456789/);
    assert.doesNotMatch(formatStatus(status({ current: '1.0.0' }), Date.now()), /signed by/);
  });

  test('metrics derived from status count signature blocks only', () => {
    const counter = new StatusCounter();
    const at = new Date().toISOString();
    counter.observe(status({ history: [{ at, event: 'block', version: '2', detail: 'no signature', cause: 'signature' }, { at, event: 'block', version: '3', detail: 'crashed' }] }));
    counter.observe(status({ history: [{ at, event: 'block', version: '2', detail: 'no signature', cause: 'signature' }] }));
    assert.equal(counter.counts.signatureFailures, 1);
  });

  test('state.json without verifiedBy (older molt) still parses; setVerifiedBy forgets removed versions', () => {
    const old = parseJournal(JSON.stringify({ version: 1, phase: 'idle', blocked: [], history: [], firstSeen: {} }));
    assert.equal(old.verifiedBy, undefined);
    const home = fs.mkdtempSync(path.join(dir, 'journal-'));
    const j = new Journal(home);
    j.setVerifiedBy('1.0.0', 'K1', []);
    j.setVerifiedBy('2.0.0', 'K2', ['1.0.0', '2.0.0']);
    j.setVerifiedBy('3.0.0', 'K3', ['2.0.0', '3.0.0']);
    assert.deepEqual(j.state.verifiedBy, { '2.0.0': 'K2', '3.0.0': 'K3' });
  });

  test('molt updater without trust settings logs exactly one warning line at start', async () => {
    const rel = fs.mkdtempSync(path.join(dir, 'empty-rel-'));
    const root = fs.mkdtempSync(path.join(dir, 'upd-'));
    const env: NodeJS.ProcessEnv = { ...process.env, MOLT_DIR: rel, MOLT_HOME: path.join(root, 'home'), MOLT_SOCKET: path.join(root, 'molt.sock'), MOLT_SERVICES: path.join(root, 'services'), MOLT_INTERVAL: '1h' };
    for (const k of ['MOLT_TRUST_KEYS', 'MOLT_TRUST_IDENTITY', 'MOLT_TRUST_ISSUER', 'MOLT_TRUST_ROOT']) delete env[k];
    const p = spawn(process.execPath, [cli, 'updater'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise((r) => p.on('close', r));
    for (let i = 0; i < 200 && !/updater: started/.test(err); i++) await new Promise((r) => setTimeout(r, 50));
    p.kill('SIGTERM');
    await exited;
    const warnings = err.split('\n').filter((l) => l.includes('no MOLT_TRUST_KEYS or MOLT_TRUST_IDENTITY'));
    assert.equal(warnings.length, 1, err);
  });
});

describe('property: the gate fed by the download decides as on the whole file', () => {
  test('any chunking of a signed artifact verifies; any one flipped byte is refused', async () => {
    const work = fs.mkdtempSync(path.join(dir, 'prop-'));
    const name = 'app-1.0.0.tar.gz';
    const data = randomBytes(200_000);
    fs.writeFileSync(path.join(work, name), data);
    minisign(work, '-S', '-s', path.join(dir, 'trusted.key'), '-m', name);
    const minisig = fs.readFileSync(path.join(work, `${name}.minisig`));
    // Legacy (non-prehashed) signatures need the bytes themselves: the other path of the hasher.
    fs.copyFileSync(path.join(work, name), path.join(work, 'legacy-1.0.0.tar.gz'));
    minisign(work, '-S', '-l', '-s', path.join(dir, 'trusted.key'), '-m', 'legacy-1.0.0.tar.gz');
    const legacySig = fs.readFileSync(path.join(work, 'legacy-1.0.0.tar.gz.minisig'));
    let seed = 12345;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const split = (buf: Buffer): Buffer[] => {
      const out: Buffer[] = [];
      for (let off = 0; off < buf.length; ) {
        const n = 1 + rnd(40_000);
        out.push(buf.subarray(off, off + n));
        off += n;
      }
      return out;
    };
    const run = async (bytes: Buffer, served: string, sig: Buffer): Promise<string | null | TrustRefusal> => {
      const gate = trustGate(trust(), served, '1.0.0', { minisig: sig });
      const { digest } = await downloadVerified({ body: Readable.from(split(bytes)), dest: path.join(work, 'out.bin'), onChunk: gate.onChunk });
      try {
        return await gate.finish(digest);
      } catch (e) {
        if (e instanceof TrustRefusal) return e;
        throw e;
      }
    };
    for (let i = 0; i < 25; i++) {
      for (const [served, sig] of [[name, minisig], ['legacy-1.0.0.tar.gz', legacySig]] as const) {
        assert.equal(await run(data, served, sig), keyId, `chunking ${i} of ${served}`);
        const flipped = Buffer.from(data);
        flipped[rnd(flipped.length)]! ^= 1 << rnd(8);
        const r = await run(flipped, served, sig);
        assert.ok(r instanceof TrustRefusal && r.reason === 'bad signature', `flipped byte ${i} of ${served}: ${String(r)}`);
      }
    }
  });
});

describe('GitHub attestations answer', () => {
  test('bundles are taken from attestations[].bundle, bounded in number and size; anything else is no evidence', () => {
    const b = { mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json' };
    assert.deepEqual(attestationBundles({ attestations: [{ bundle: b }] }).map((x) => JSON.parse(Buffer.from(x).toString())), [b]);
    for (const junk of [null, 'x', [], {}, { attestations: 'no' }, { attestations: [null, 1, { bundle: 'text' }, { nobundle: {} }] }]) {
      assert.deepEqual(attestationBundles(junk), [], JSON.stringify(junk));
    }
    assert.equal(attestationBundles({ attestations: Array.from({ length: 50 }, () => ({ bundle: b })) }).length, MAX_ATTESTATIONS);
    assert.deepEqual(attestationBundles({ attestations: [{ bundle: { big: 'x'.repeat(SIGNATURE_MAX_BYTES) } }] }), []);
  });
});
