// The archive limits fail fast and cheap, and every such refusal, from every source, is
// UpdateError 'hostile-archive' (the updater blocks a release on that code instead of retrying).
// "Cheap" is measured, not timed: the peak RSS of a child doing the extraction, and staging on a
// tmpfs with a few hundred inodes, where storing the entries before counting them would run out
// of inodes (disk-full) before the limit could speak.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { extractArchive } from '../../src/update/extract.js';
import { LocalDirSource } from '../../src/update/sources/local.js';
import { UpdateError } from '../../src/update/types.js';
import { tgz } from './fixtures-local/tarbuild.js';

const here = path.dirname(fileURLToPath(import.meta.url));
let tmp: string;
let mnt: string;

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-limits-'));
  mnt = path.join(tmp, 'small');
  fs.mkdirSync(mnt);
  // Room for bytes, not for files: 300 inodes.
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m,nr_inodes=300', 'tmpfs', mnt]);
});
after(() => {
  spawnSync('umount', [mnt]);
  fs.rmSync(tmp, { recursive: true, force: true });
});

function isHostile(re: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof UpdateError, `not an UpdateError: ${String(e)}`);
    assert.equal(e.code, 'hostile-archive', e.message);
    assert.match(e.message, re);
    return true;
  };
}

const files = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `f${String(i).padStart(6, '0')}`, body: '' }));

describe('archive limits', () => {
  test('100,001 entries: refused as hostile-archive, with the extracting process staying small', () => {
    const archive = path.join(tmp, 'many.tar.gz');
    fs.writeFileSync(archive, tgz(files(100_001)));
    const dest = path.join(tmp, 'many-out');
    const extract = path.resolve(here, '../../src/update/extract.js');
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', `
      import { extractArchive } from ${JSON.stringify(extract)};
      let code;
      try { await extractArchive(${JSON.stringify(archive)}, ${JSON.stringify(dest)}); code = 'accepted'; } catch (e) { code = e.code + ': ' + e.message; }
      process.stdout.write(JSON.stringify({ code, rssMiB: process.resourceUsage().maxRSS / 1024 }));
    `], { encoding: 'utf8', timeout: 300_000 });
    assert.equal(child.status, 0, child.stderr);
    const r = JSON.parse(child.stdout) as { code: string; rssMiB: number };
    assert.match(r.code, /^hostile-archive: hostile archive many\.tar\.gz: entry "f100000": more than 100000 entries$/);
    // Storing the entries before counting them peaked at 256-335 MiB; a bare node is about 45.
    assert.ok(r.rssMiB < 150, `peak RSS ${r.rssMiB.toFixed(0)} MiB`);
    assert.equal(fs.existsSync(dest), false, 'no debris');
  });

  test('a tarball over the entry limit is refused before a file is made (staging has too few inodes to store it first)', async () => {
    const archive = path.join(tmp, 'over.tar.gz');
    fs.writeFileSync(archive, tgz(files(1_001)));
    await assert.rejects(extractArchive(archive, path.join(mnt, 'over'), { maxEntries: 1000 }), isHostile(/entry "f001000": more than 1000 entries/));
    assert.deepEqual(fs.readdirSync(mnt), []);
  });

  test('a tarball over the byte limit is refused from its headers', async () => {
    const archive = path.join(tmp, 'big.tar.gz');
    fs.writeFileSync(archive, tgz([...files(400), { name: 'big', body: 'x'.repeat(4096) }]));
    await assert.rejects(extractArchive(archive, path.join(mnt, 'big'), { maxBytes: 4000 }), isHostile(/entry "big": .*exceeds the limit of 4000 bytes/));
    assert.deepEqual(fs.readdirSync(mnt), []);
  });

  test('an entry refused by itself (a device, a symlink out) is refused before the entries ahead of it are made', async () => {
    for (const [name, bad, reason] of [
      ['dev.tar.gz', { name: 'zz-dev', type: '3', body: '' }, /entry "zz-dev": character device/],
      ['link.tar.gz', { name: 'zz-link', type: '2', linkname: '../../etc/passwd' }, /entry "zz-link": symlink target .* leaves the release/],
    ] as const) {
      const archive = path.join(tmp, name);
      fs.writeFileSync(archive, tgz([...files(1_000), bad]));
      await assert.rejects(extractArchive(archive, path.join(mnt, 'late')), isHostile(reason));
      assert.deepEqual(fs.readdirSync(mnt), []);
    }
  });

  test('removing a refused tree of 100,000 files stays in bounded memory', () => {
    const tree = path.join(tmp, 'wide');
    const rmtree = path.resolve(here, '../../src/update/rmtree.js');
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', `
      import fs from 'node:fs';
      import { removeTree } from ${JSON.stringify(rmtree)};
      fs.mkdirSync(${JSON.stringify(tree)} + '/sub', { recursive: true });
      for (let i = 0; i < 100000; i++) fs.writeFileSync(${JSON.stringify(tree)} + '/f' + i, '');
      for (let i = 0; i < 100; i++) fs.writeFileSync(${JSON.stringify(tree)} + '/sub/g' + i, '');
      const before = process.resourceUsage().maxRSS / 1024;
      await removeTree(${JSON.stringify(tree)});
      process.stdout.write(JSON.stringify({ before, after: process.resourceUsage().maxRSS / 1024, gone: !fs.existsSync(${JSON.stringify(tree)}) }));
    `], { encoding: 'utf8', timeout: 300_000 });
    assert.equal(child.status, 0, child.stderr);
    const r = JSON.parse(child.stdout) as { before: number; after: number; gone: boolean };
    assert.equal(r.gone, true);
    // Node's recursive fs.promises.rm peaked at about 260 MiB here.
    assert.ok(r.after < 150, `peak RSS ${r.after.toFixed(0)} MiB (before removing: ${r.before.toFixed(0)} MiB)`);
  });

  test('a directory release over the entry limit is refused before it is copied', async () => {
    const releases = path.join(tmp, 'releases');
    const rel = path.join(releases, '1.0.0');
    fs.mkdirSync(rel, { recursive: true });
    for (const f of files(1_001)) fs.writeFileSync(path.join(rel, f.name), '');
    const src = new LocalDirSource(releases, { limits: { maxEntries: 1000 } });
    const [release] = (await src.list()).releases;
    await assert.rejects(src.fetch(release!, mnt), isHostile(/more than 1000 entries/));
    assert.deepEqual(fs.readdirSync(mnt), []);
  });
});
