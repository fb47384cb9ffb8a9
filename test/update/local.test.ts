// MOLT_DIR source: which entries are releases, fetch of directory and tarball
// releases into staging, SHA256SUMS enforcement, and no debris on refusal.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { LocalDirSource, parseEntryName } from '../../src/update/sources/local.js';
import { parseSha256Sums } from '../../src/update/sha256sums.js';
import { VersionStore } from '../../src/update/store.js';
import { UpdateError, type Release } from '../../src/update/types.js';
import { tgz } from './fixtures-local/tarbuild.js';

let root: string;
before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-local-'));
});
after(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

const hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A MOLT_DIR as an admin would fill it: directories, tarballs, and things that are not releases. */
function moltDir(): { dir: string; tarball: Buffer; sums: string } {
  const dir = fs.mkdtempSync(path.join(root, 'molt-dir-'));
  // 1.0.0: a directory release with an inside symlink and an executable.
  fs.mkdirSync(path.join(dir, '1.0.0/bin'), { recursive: true });
  fs.writeFileSync(path.join(dir, '1.0.0/bin/app'), '#!/bin/sh\necho 1.0.0\n');
  fs.chmodSync(path.join(dir, '1.0.0/bin/app'), 0o4755);
  fs.symlinkSync('bin/app', path.join(dir, '1.0.0/run'));
  // v1.1.0.tar.gz: a tarball made by GNU tar, listed in SHA256SUMS.
  const src = path.join(root, `src-${path.basename(dir)}`);
  fs.mkdirSync(path.join(src, 'bin'), { recursive: true });
  fs.writeFileSync(path.join(src, 'bin/app'), '#!/bin/sh\necho 1.1.0\n', { mode: 0o755 });
  fs.symlinkSync('bin/app', path.join(src, 'run'));
  execFileSync('tar', ['-czf', path.join(dir, 'v1.1.0.tar.gz'), '-C', src, '.']);
  const tarball = fs.readFileSync(path.join(dir, 'v1.1.0.tar.gz'));
  // 2.0.0-rc.1.tgz: a prerelease, not listed in SHA256SUMS.
  fs.writeFileSync(path.join(dir, '2.0.0-rc.1.tgz'), tgz([{ name: 'bin/app', body: 'rc', mode: 0o755 }]));
  // Not releases: a note, a "latest" directory, a non-semver tarball.
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'hello');
  fs.mkdirSync(path.join(dir, 'latest'));
  fs.writeFileSync(path.join(dir, 'nightly.tar.gz'), 'x');
  const sums = `${hex(tarball)}  v1.1.0.tar.gz\n${'0'.repeat(64)}  other-file\n`;
  fs.writeFileSync(path.join(dir, 'SHA256SUMS'), sums);
  return { dir, tarball, sums };
}

function freshStaging(): string {
  return fs.mkdtempSync(path.join(root, 'staging-'));
}

async function find(src: LocalDirSource, version: string): Promise<Release> {
  const { releases } = await src.list();
  const r = releases.find((x) => x.version === version);
  assert.ok(r, `release ${version} listed`);
  return r;
}

describe('pure helpers', () => {
  test('parseEntryName: semver names, leading v stripped, others ignored', () => {
    assert.deepEqual(parseEntryName('1.2.3', true), { version: '1.2.3', prerelease: false, kind: 'dir', suffix: 'dir' });
    assert.deepEqual(parseEntryName('v1.2.3.tar.gz', false), { version: '1.2.3', prerelease: false, kind: 'tarball', suffix: '.tar.gz' });
    assert.deepEqual(parseEntryName('2.0.0-rc.1.tgz', false), { version: '2.0.0-rc.1', prerelease: true, kind: 'tarball', suffix: '.tgz' });
    assert.equal(parseEntryName('1.2.3+build.7', true)?.version, '1.2.3+build.7');
    for (const [name, isDir] of [['1.2', true], ['latest', true], ['1.2.3.zip', false], ['=1.2.3', true], ['1.2.3', false], ['v1.2.3.tar.gz', true], ['01.2.3', true]] as const) {
      assert.equal(parseEntryName(name, isDir), undefined, name);
    }
  });

  test('parseSha256Sums: text and binary mode, BSD form, ./ prefix', () => {
    const a = 'a'.repeat(64);
    const B = 'B'.repeat(64);
    const m = parseSha256Sums(`${a}  one.tar.gz\n${B} *two.tgz\r\nSHA256 (three) = ${a}\n# comment\ngarbage line\n${a}  ./four\n`);
    assert.deepEqual([...m.entries()], [
      ['one.tar.gz', a],
      ['two.tgz', 'b'.repeat(64)],
      ['three', a],
      ['four', a],
    ]);
  });
});

describe('LocalDirSource', () => {
  test('list: releases newest first, prerelease flagged, digest from SHA256SUMS, non-releases ignored', async () => {
    const { dir, tarball } = moltDir();
    const src = new LocalDirSource(dir);
    assert.equal(src.description, `dir ${dir}`);
    const { releases, notModified } = await src.list();
    assert.equal(notModified, false);
    assert.deepEqual(
      releases.map((r) => [r.version, r.tag, r.prerelease, r.digest ?? null, r.locator]),
      [
        ['2.0.0-rc.1', '2.0.0-rc.1.tgz', true, null, { kind: 'tarball', name: '2.0.0-rc.1.tgz' }],
        ['1.1.0', 'v1.1.0.tar.gz', false, `sha256:${hex(tarball)}`, { kind: 'tarball', name: 'v1.1.0.tar.gz' }],
        ['1.0.0', '1.0.0', false, null, { kind: 'dir', name: '1.0.0' }],
      ],
    );
    for (const r of releases) assert.ok(r.publishedAt && !Number.isNaN(Date.parse(r.publishedAt)));
    assert.deepEqual(JSON.parse(JSON.stringify(releases)), releases, 'releases survive state.json');
  });

  test('list of a missing MOLT_DIR is a configuration error naming it', async () => {
    const missing = path.join(root, 'no-such-dir');
    await assert.rejects(new LocalDirSource(missing).list(), (e: UpdateError) => e.code === 'config' && e.message.includes(missing));
  });

  test('fetch of a directory release copies the tree into a fresh staging dir', async () => {
    const { dir } = moltDir();
    const staging = freshStaging();
    const src = new LocalDirSource(dir);
    const r = await find(src, '1.0.0');
    const progress: number[] = [];
    const f = await src.fetch(r, staging, { onProgress: (p) => progress.push(p.bytes) });
    assert.equal(path.dirname(f.dir), staging);
    assert.deepEqual(fs.readdirSync(staging), [path.basename(f.dir)]);
    assert.equal(fs.readFileSync(path.join(f.dir, 'run'), 'utf8'), '#!/bin/sh\necho 1.0.0\n');
    assert.equal(fs.readlinkSync(path.join(f.dir, 'run')), 'bin/app');
    assert.equal(fs.statSync(path.join(dir, '1.0.0/bin/app')).mode & 0o7777, 0o4755, 'the source is setuid');
    assert.equal(fs.statSync(path.join(f.dir, 'bin/app')).mode & 0o7777, 0o755, 'setuid stripped');
    assert.deepEqual(f.verified, []);
    assert.equal(f.downloaded, 21);
    assert.equal(progress.at(-1), 21);
    assert.equal(f.release, r);
  });

  test('the release root is 0755 for directory and tarball releases alike (an app that dropped root can enter it)', async () => {
    const { dir } = moltDir();
    const src = new LocalDirSource(dir);
    const fromDir = await src.fetch(await find(src, '1.0.0'), freshStaging());
    assert.equal(fs.statSync(fromDir.dir).mode & 0o7777, 0o755, 'directory release');
    const fromTar = await src.fetch(await find(src, '1.1.0'), freshStaging());
    assert.equal(fs.statSync(fromTar.dir).mode & 0o7777, 0o755, 'tarball release');
  });

  test('fetch of a tarball listed in SHA256SUMS verifies and extracts it', async () => {
    const { dir, tarball } = moltDir();
    const staging = freshStaging();
    const src = new LocalDirSource(dir);
    const f = await src.fetch(await find(src, '1.1.0'), staging);
    assert.deepEqual(f.verified, [`sha256:${hex(tarball)}`]);
    assert.equal(f.downloaded, tarball.length);
    assert.equal(fs.readFileSync(path.join(f.dir, 'run'), 'utf8'), '#!/bin/sh\necho 1.1.0\n');
    assert.deepEqual(fs.readdirSync(staging), [path.basename(f.dir)], 'the copy of the tarball is gone');
  });

  test('a tarball whose SHA256SUMS entry does not match is refused, with no debris', async () => {
    const { dir, tarball } = moltDir();
    // The tarball was replaced after SHA256SUMS was written (a corrupted copy on the volume).
    const bad = Buffer.from(tarball);
    bad[bad.length - 10] = (bad[bad.length - 10] as number) ^ 0xff;
    fs.writeFileSync(path.join(dir, 'v1.1.0.tar.gz'), bad);
    const staging = freshStaging();
    const src = new LocalDirSource(dir);
    const r = await find(src, '1.1.0');
    await assert.rejects(src.fetch(r, staging), (e: UpdateError) => {
      assert.equal(e.code, 'integrity');
      assert.match(e.message, /v1\.1\.0\.tar\.gz .* does not match SHA256SUMS: expected sha256:[0-9a-f]{64}, got sha256:[0-9a-f]{64}/);
      return true;
    });
    assert.deepEqual(fs.readdirSync(staging), []);
  });

  test('requireChecksum: an unlisted tarball and a directory release are refused', async () => {
    const { dir } = moltDir();
    const staging = freshStaging();
    const src = new LocalDirSource(dir, { requireChecksum: true });
    await assert.rejects(src.fetch(await find(src, '2.0.0-rc.1'), staging), (e: UpdateError) => e.code === 'integrity' && /not listed in .*SHA256SUMS/.test(e.message));
    await assert.rejects(src.fetch(await find(src, '1.0.0'), staging), (e: UpdateError) => e.code === 'integrity' && /cannot be verified/.test(e.message));
    assert.deepEqual(fs.readdirSync(staging), []);
    // The listed one still works.
    const ok = await src.fetch(await find(src, '1.1.0'), staging);
    assert.equal(ok.verified.length, 1);
  });

  test('without requireChecksum an unlisted tarball is fetched unverified', async () => {
    const { dir } = moltDir();
    const src = new LocalDirSource(dir);
    const f = await src.fetch(await find(src, '2.0.0-rc.1'), freshStaging());
    assert.deepEqual(f.verified, []);
    assert.equal(fs.readFileSync(path.join(f.dir, 'bin/app'), 'utf8'), 'rc');
  });

  test('a hostile tarball in MOLT_DIR is refused through extract, with no debris', async () => {
    const { dir } = moltDir();
    fs.writeFileSync(path.join(dir, '3.0.0.tar.gz'), tgz([{ name: 'ok', body: 'x' }, { name: '../../escape', body: 'pwned' }]));
    const staging = freshStaging();
    const src = new LocalDirSource(dir);
    await assert.rejects(src.fetch(await find(src, '3.0.0'), staging), (e: UpdateError) => e.code === 'hostile-archive' && /3\.0\.0\.tar\.gz: entry "\.\.\/\.\.\/escape"/.test(e.message));
    assert.deepEqual(fs.readdirSync(staging), []);
    assert.equal(fs.existsSync(path.join(root, 'escape')), false);
  });

  test('a directory release with a symlink leaving it, or a FIFO, is refused', async () => {
    const { dir } = moltDir();
    fs.mkdirSync(path.join(dir, '4.0.0'));
    fs.symlinkSync('../../../etc/passwd', path.join(dir, '4.0.0/passwd'));
    fs.mkdirSync(path.join(dir, '5.0.0'));
    execFileSync('mkfifo', [path.join(dir, '5.0.0/pipe')]);
    const staging = freshStaging();
    const src = new LocalDirSource(dir);
    await assert.rejects(src.fetch(await find(src, '4.0.0'), staging), (e: UpdateError) => e.code === 'hostile-archive' && /entry "passwd": symlink target .* leaves the release/.test(e.message));
    await assert.rejects(src.fetch(await find(src, '5.0.0'), staging), (e: UpdateError) => e.code === 'hostile-archive' && /entry "pipe": FIFO/.test(e.message));
    assert.deepEqual(fs.readdirSync(staging), []);
  });

  test('a locator from state.json that points elsewhere is refused', async () => {
    const { dir } = moltDir();
    const src = new LocalDirSource(dir);
    const r = await find(src, '1.0.0');
    for (const locator of [{ kind: 'dir', name: '../1.0.0' }, { kind: 'dir', name: 'latest' }, { kind: 'tarball', name: '1.0.0' }, {}]) {
      await assert.rejects(src.fetch({ ...r, locator }, freshStaging()), (e: UpdateError) => e.code === 'bad-input', JSON.stringify(locator));
    }
    fs.rmSync(path.join(dir, '1.0.0'), { recursive: true });
    await assert.rejects(src.fetch(r, freshStaging()), (e: UpdateError) => e.code === 'not-found');
  });

  test('end to end: fetch into the store staging, install, activate', async () => {
    const { dir } = moltDir();
    const store = new VersionStore(fs.mkdtempSync(path.join(root, 'home-')));
    const src = new LocalDirSource(dir);
    for (const v of ['1.0.0', '1.1.0']) {
      const f = await src.fetch(await find(src, v), store.stagingRoot());
      await store.install(v, f.dir);
      await store.activate(v);
    }
    assert.equal(store.current(), '1.1.0');
    assert.equal(store.previous(), '1.0.0');
    assert.equal(execFileSync(path.join(store.home, 'current/run'), { encoding: 'utf8' }), '1.1.0\n');
    assert.deepEqual(fs.readdirSync(store.stagingRoot()), []);
  });
});
