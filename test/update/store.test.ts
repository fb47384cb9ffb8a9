// The version store: install by rename, current/previous swapped without a
// gap, prune that never touches what is in use, and a cache that re-hashes.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { VersionStore, checkVersion } from '../../src/update/store.js';
import { downloadVerified } from '../../src/update/download.js';
import { UpdateError } from '../../src/update/types.js';

let root: string;
before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-store-'));
});
after(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

function freshStore(): VersionStore {
  return new VersionStore(fs.mkdtempSync(path.join(root, 'home-')));
}

async function stage(store: VersionStore, version: string, files: Record<string, string> = { 'bin/app': version }): Promise<string> {
  const d = await store.newStagingDir(`v${version}`);
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(d, rel)), { recursive: true });
    fs.writeFileSync(path.join(d, rel), content);
  }
  return d;
}

async function installed(store: VersionStore, ...versions: string[]): Promise<void> {
  for (const v of versions) {
    await store.install(v, await stage(store, v));
    // Install times must differ for prune's ordering to be observable.
    await new Promise((r) => setTimeout(r, 15));
  }
}

describe('VersionStore layout and install', () => {
  test('the constructor creates versions/, staging/ and cache/ (0755)', () => {
    const s = freshStore();
    for (const d of ['versions', 'staging', 'cache', 'cache/sha256']) {
      const st = fs.statSync(path.join(s.home, d));
      assert.ok(st.isDirectory(), d);
      assert.equal(st.mode & 0o777, 0o755, d);
    }
    assert.equal(s.stagingRoot(), path.join(s.home, 'staging'));
  });

  test('newStagingDir gives fresh, distinct directories under staging/', async () => {
    const s = freshStore();
    const a = await s.newStagingDir('1.0.0');
    const b = await s.newStagingDir('1.0.0');
    assert.notEqual(a, b);
    for (const d of [a, b]) assert.equal(path.dirname(d), s.stagingRoot());
    const weird = await s.newStagingDir('../../etc/x');
    assert.equal(path.dirname(weird), s.stagingRoot());
  });

  test('install renames a staging tree to versions/<v>; the staging dir is gone', async () => {
    const s = freshStore();
    const d = await stage(s, '1.2.3');
    const target = await s.install('1.2.3', d);
    assert.equal(target, path.join(s.home, 'versions', '1.2.3'));
    assert.equal(fs.readFileSync(path.join(target, 'bin/app'), 'utf8'), '1.2.3');
    assert.equal(fs.existsSync(d), false);
    assert.ok(s.has('1.2.3'));
    assert.deepEqual(s.list(), ['1.2.3']);
  });

  test('installing a version that exists keeps the existing one and removes the new dir', async () => {
    const s = freshStore();
    await s.install('1.0.0', await stage(s, '1.0.0', { f: 'first' }));
    const again = await stage(s, '1.0.0', { f: 'second' });
    await s.install('1.0.0', again);
    assert.equal(fs.readFileSync(path.join(s.home, 'versions/1.0.0/f'), 'utf8'), 'first');
    assert.equal(fs.existsSync(again), false);
  });

  test('bad version strings are refused and nothing moves', async () => {
    const s = freshStore();
    const d = await stage(s, 'x');
    for (const bad of ['../evil', 'a/b', '.hidden', '..', '', '1.0..0', 'a b', 'x'.repeat(129)]) {
      await assert.rejects(s.install(bad, d), (e: UpdateError) => e instanceof UpdateError && e.code === 'bad-input', bad);
      assert.equal(s.has(bad), false);
    }
    assert.ok(fs.existsSync(d));
    assert.deepEqual(s.list(), []);
    assert.equal(checkVersion('1.2.3-rc.1+build.5'), '1.2.3-rc.1+build.5');
    assert.equal(checkVersion('x'.repeat(128)).length, 128);
  });

  test('install of a path that is not a directory is refused', async () => {
    const s = freshStore();
    await assert.rejects(s.install('1.0.0', path.join(s.home, 'nope')), (e: UpdateError) => e.code === 'bad-input');
  });
});

describe('VersionStore current/previous', () => {
  test('activate sets current; the next activate moves the old current to previous', async () => {
    const s = freshStore();
    await installed(s, '1.0.0', '1.1.0', '2.0.0');
    assert.equal(s.current(), undefined);
    await s.activate('1.0.0');
    assert.equal(s.current(), '1.0.0');
    assert.equal(s.previous(), undefined);
    await s.activate('1.1.0');
    assert.equal(s.current(), '1.1.0');
    assert.equal(s.previous(), '1.0.0');
    // The links are relative and resolve into versions/.
    assert.equal(fs.readlinkSync(path.join(s.home, 'current')), 'versions/1.1.0');
    assert.equal(fs.readFileSync(path.join(s.home, 'current/bin/app'), 'utf8'), '1.1.0');
    assert.equal(fs.readFileSync(path.join(s.home, 'previous/bin/app'), 'utf8'), '1.0.0');
    // Activating the current version again keeps previous as it was.
    await s.activate('1.1.0');
    assert.equal(s.previous(), '1.0.0');
    // Rollback shape: back to previous.
    await s.activate('1.0.0');
    assert.equal(s.current(), '1.0.0');
    assert.equal(s.previous(), '1.1.0');
    assert.deepEqual(fs.readdirSync(s.home).filter((n) => n.includes('.tmp-')), [], 'no temporary links left');
  });

  test('activate of a version that is not installed is refused and changes nothing', async () => {
    const s = freshStore();
    await installed(s, '1.0.0');
    await s.activate('1.0.0');
    await assert.rejects(s.activate('9.9.9'), (e: UpdateError) => e.code === 'not-found');
    await assert.rejects(s.activate('../1.0.0'), (e: UpdateError) => e.code === 'bad-input');
    assert.equal(s.current(), '1.0.0');
  });

  test('setPrevious sets and clears previous', async () => {
    const s = freshStore();
    await installed(s, '1.0.0', '2.0.0');
    await s.activate('2.0.0');
    await s.setPrevious('1.0.0');
    assert.equal(s.previous(), '1.0.0');
    await s.setPrevious(undefined);
    assert.equal(s.previous(), undefined);
    assert.equal(fs.existsSync(path.join(s.home, 'previous')), false);
    await assert.rejects(s.setPrevious('3.0.0'), (e: UpdateError) => e.code === 'not-found');
  });

  test('current always resolves: 400 swaps while another thread readlink()s it without pause', async () => {
    const s = freshStore();
    await installed(s, '1.0.0', '2.0.0');
    await s.activate('1.0.0');
    const stop = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(
      `
      const { workerData, parentPort } = require('node:worker_threads');
      const fs = require('node:fs');
      const stop = new Int32Array(workerData.stop);
      const deadline = Date.now() + 30000;
      let reads = 0, missing = 0, bad = 0;
      while (Atomics.load(stop, 0) === 0 && Date.now() < deadline) {
        try {
          const t = fs.readlinkSync(workerData.link);
          if (t !== 'versions/1.0.0' && t !== 'versions/2.0.0') bad++;
          reads++;
        } catch (e) { if (e.code === 'ENOENT') missing++; else bad++; }
      }
      parentPort.postMessage({ reads, missing, bad });
      `,
      { eval: true, workerData: { link: path.join(s.home, 'current'), stop: stop.buffer } },
    );
    const result = new Promise<{ reads: number; missing: number; bad: number }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await new Promise((r) => setTimeout(r, 20)); // let the reader start
    for (let i = 0; i < 400; i++) await s.activate(i % 2 === 0 ? '2.0.0' : '1.0.0');
    Atomics.store(stop, 0, 1);
    const r = await result;
    await worker.terminate();
    assert.ok(r.reads > 1000, `reader ran concurrently (${r.reads} reads)`);
    assert.equal(r.missing, 0, 'current never vanished');
    assert.equal(r.bad, 0, 'current always pointed at a version');
    assert.equal(s.current(), '1.0.0');
  });
});

describe('VersionStore prune and cleanStaging', () => {
  test('prune keeps the newest N by install time and never current, previous or protected', async () => {
    const s = freshStore();
    // Installed in this order; note 10.0.0 is installed before 9.0.0: install time, not name, decides.
    await installed(s, '1.0.0', '2.0.0', '3.0.0', '10.0.0', '9.0.0', '4.0.0');
    assert.deepEqual(s.list(), ['1.0.0', '2.0.0', '3.0.0', '10.0.0', '9.0.0', '4.0.0']);
    await s.activate('1.0.0');
    await s.activate('2.0.0'); // current 2.0.0, previous 1.0.0
    const removed = await s.prune(2, ['3.0.0']);
    assert.deepEqual(removed.sort(), ['10.0.0']);
    assert.deepEqual(s.list(), ['1.0.0', '2.0.0', '3.0.0', '9.0.0', '4.0.0']);
    assert.deepEqual(fs.readdirSync(s.stagingRoot()), [], 'no trash left in staging');
    const again = await s.prune(0);
    assert.deepEqual(again.sort(), ['3.0.0', '4.0.0', '9.0.0']);
    assert.deepEqual(s.list().sort(), ['1.0.0', '2.0.0']);
    assert.equal(fs.readFileSync(path.join(s.home, 'current/bin/app'), 'utf8'), '2.0.0');
  });

  test('prune removes blocked versions first: they never take one of the MOLT_KEEP places', async () => {
    const s = freshStore();
    await installed(s, '1.0.0', '2.0.0', '3.0.0', '4.0.0');
    await s.activate('2.0.0');
    await s.activate('3.0.0'); // current 3.0.0, previous 2.0.0; 4.0.0 failed and is blocked
    const removed = await s.prune(3, [], ['4.0.0']);
    assert.deepEqual(removed, ['4.0.0']);
    assert.deepEqual(s.list(), ['1.0.0', '2.0.0', '3.0.0']);
    // A blocked version that is current or protected stays.
    assert.deepEqual(await s.prune(3, ['1.0.0'], ['3.0.0', '1.0.0']), []);
  });

  test('prune refuses a negative keep count', async () => {
    await assert.rejects(freshStore().prune(-1), (e: UpdateError) => e.code === 'bad-input');
  });

  test('cleanStaging removes staging debris, half-made links and interrupted cache downloads', async () => {
    const s = freshStore();
    await installed(s, '1.0.0');
    await s.activate('1.0.0');
    const half = await s.newStagingDir('2.0.0');
    fs.writeFileSync(path.join(half, 'partial'), 'x');
    fs.symlinkSync('versions/1.0.0', path.join(s.home, '.current.tmp-1-dead'));
    const digest = 'sha256:' + 'a'.repeat(64);
    fs.writeFileSync(s.cachePath(digest) + '.part', 'half');
    await s.cleanStaging();
    assert.deepEqual(fs.readdirSync(s.stagingRoot()), []);
    assert.deepEqual(fs.readdirSync(path.join(s.home, 'cache/sha256')), []);
    assert.deepEqual(fs.readdirSync(s.home).sort(), ['cache', 'current', 'staging', 'versions']);
    assert.equal(s.current(), '1.0.0');
  });
});

describe('VersionStore cache', () => {
  const data = Buffer.from('release blob\n'.repeat(1000));
  const digest = 'sha256:' + createHash('sha256').update(data).digest('hex');

  test('cachePath is cache/sha256/<hex> and refuses malformed digests', () => {
    const s = freshStore();
    assert.equal(s.cachePath(digest), path.join(s.home, 'cache/sha256', digest.slice(7)));
    for (const bad of ['sha256:../../etc', 'md5:abc', 'sha256:' + 'g'.repeat(64)]) {
      assert.throws(() => s.cachePath(bad), (e: UpdateError) => e.code === 'bad-input');
    }
  });

  test('cached() returns the path only when the content re-hashes to the digest', async () => {
    const s = freshStore();
    assert.equal(await s.cached(digest), undefined, 'absent');
    await downloadVerified({ body: Readable.from([data]), dest: s.cachePath(digest), expectedDigest: digest });
    assert.equal(await s.cached(digest), s.cachePath(digest));
  });

  test('a corrupted cache file (same name, same size, one byte changed) is refused and removed', async () => {
    const s = freshStore();
    const bad = Buffer.from(data);
    bad[10] = (bad[10] as number) ^ 0x20;
    fs.writeFileSync(s.cachePath(digest), bad); // the seed's bug: existence taken as proof
    assert.equal(await s.cached(digest), undefined);
    assert.equal(fs.existsSync(s.cachePath(digest)), false);
  });

  test('a directory squatting on a cache name is not a cache hit', async () => {
    const s = freshStore();
    fs.mkdirSync(s.cachePath(digest));
    assert.equal(await s.cached(digest), undefined);
  });
});

describe('VersionStore blob collection', () => {
  const blob = (s: VersionStore, text: string): string => {
    const hex = createHash('sha256').update(text).digest('hex');
    fs.writeFileSync(s.cachePath(`sha256:${hex}`), text);
    return `sha256:${hex}`;
  };
  const blobs = (s: VersionStore) => fs.readdirSync(path.join(s.home, 'cache', 'sha256')).sort();

  test('five releases, MOLT_KEEP=1: only the blobs of kept versions, a download in use and partial files stay', async () => {
    const s = freshStore();
    const made: Record<string, string[]> = {};
    const shared = blob(s, 'a layer every version has');
    for (const v of ['1.0.0', '2.0.0', '3.0.0', '4.0.0', '5.0.0']) {
      made[v] = [blob(s, `tarball ${v}`), shared];
      await installed(s, v);
      await s.recordBlobs(v, made[v]!);
      await s.activate(v);
      await s.prune(1);
    }
    assert.equal(blobs(s).length, 6, 'nothing is collected by prune alone (the old behaviour)');
    const inUse = blob(s, 'a download in progress');
    fs.writeFileSync(path.join(s.home, 'cache', 'sha256', `${'0'.repeat(64)}.part`), 'partial');
    const removed = await s.collectBlobs([inUse]);
    assert.deepEqual(removed.sort(), [made['1.0.0']![0], made['2.0.0']![0], made['3.0.0']![0]].sort());
    const keep = [made['4.0.0']![0]!, made['5.0.0']![0]!, shared, inUse].map((d) => d.slice(7));
    assert.deepEqual(blobs(s), [...keep, `${'0'.repeat(64)}.part`].sort());
    // The records of pruned versions are gone with them.
    assert.deepEqual(fs.readdirSync(path.join(s.home, 'cache', 'refs')).sort(), ['4.0.0', '5.0.0']);
  });

  test('a version installed without a record keeps no blob alive; recordBlobs ignores what is not a sha256 digest', async () => {
    const s = freshStore();
    await installed(s, '1.0.0');
    const d = blob(s, 'old');
    await s.recordBlobs('1.0.0', ['md5:abc', 'sha256:xyz']);
    assert.equal(fs.readFileSync(path.join(s.home, 'cache', 'refs', '1.0.0'), 'utf8'), '');
    assert.deepEqual(await s.collectBlobs(), [d]);
  });
});
