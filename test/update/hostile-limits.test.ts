// The archive limits hold while the archive is unpacked, in its one pass, and every such refusal,
// from every source, is UpdateError 'hostile-archive' (the updater blocks a release on that code
// instead of retrying). What they bound is measured, not timed: the peak RSS of a child doing the
// extraction, and staging on small tmpfs mounts with room for the limits and not for the archive,
// where an entry written before its limit is checked would run out of inodes or bytes (disk-full)
// before the limit could speak. A refusal leaves nothing behind.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
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
let tiny: string;

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-limits-'));
  mnt = path.join(tmp, 'small');
  tiny = path.join(tmp, 'tiny');
  fs.mkdirSync(mnt);
  fs.mkdirSync(tiny);
  // Room for bytes, not for files: 300 inodes.
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m,nr_inodes=300', 'tmpfs', mnt]);
  // Room for files, not for bytes: 2 MiB.
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m,nr_inodes=1000', 'tmpfs', tiny]);
});
after(() => {
  spawnSync('umount', [mnt]);
  spawnSync('umount', [tiny]);
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

  test('a tarball over the entry limit is refused at the limit (staging has inodes for the limit, not for the archive)', async () => {
    const archive = path.join(tmp, 'over.tar.gz');
    fs.writeFileSync(archive, tgz(files(1_001)));
    await assert.rejects(extractArchive(archive, path.join(mnt, 'over'), { maxEntries: 250 }), isHostile(/entry "f000250": more than 250 entries/));
    assert.deepEqual(fs.readdirSync(mnt), []);
  });

  test('a tarball over the byte limit is refused before the entry over it is written (staging has room for the limit, not for the archive)', async () => {
    // 768 KiB fit in the 1 MiB limit; "big" declares 4 MiB more: writing it before the check would fill the 2 MiB tmpfs.
    const archive = path.join(tmp, 'big.tar.gz');
    fs.writeFileSync(archive, tgz([{ name: 'a', body: Buffer.alloc(768 * 1024, 1) }, { name: 'big', body: Buffer.alloc(4 << 20, 2) }]));
    await assert.rejects(extractArchive(archive, path.join(tiny, 'big'), { maxBytes: 1 << 20 }), isHostile(/entry "big": .*exceeds the limit of 1048576 bytes/));
    assert.deepEqual(fs.readdirSync(tiny), []);
    // Many small files add up the same way: the one that crosses the limit is refused before it is written.
    const many = path.join(tmp, 'many-small.tar.gz');
    fs.writeFileSync(many, tgz(Array.from({ length: 20 }, (_, i) => ({ name: `p${String(i).padStart(2, '0')}`, body: Buffer.alloc(200 * 1024, i) }))));
    await assert.rejects(extractArchive(many, path.join(tiny, 'many'), { maxBytes: 1 << 20 }), isHostile(/entry "p05": .*exceeds the limit of 1048576 bytes/));
    assert.deepEqual(fs.readdirSync(tiny), []);
  });

  test('an entry refused by itself (a device, a symlink out) after many good ones: refused, and what was made before it is removed', async () => {
    for (const [name, bad, reason] of [
      ['dev.tar.gz', { name: 'zz-dev', type: '3', body: '' }, /entry "zz-dev": character device/],
      ['link.tar.gz', { name: 'zz-link', type: '2', linkname: '../../etc/passwd' }, /entry "zz-link": symlink target .* leaves the release/],
    ] as const) {
      const archive = path.join(tmp, name);
      fs.writeFileSync(archive, tgz([...files(200), bad]));
      await assert.rejects(extractArchive(archive, path.join(mnt, 'late')), isHostile(reason));
      assert.deepEqual(fs.readdirSync(mnt), []);
    }
  });

  test('the limits cost no second pass: the archive is read once', async () => {
    // Random bytes do not compress: a second inflate over the archive would read it all again.
    const archive = path.join(tmp, 'once.tar.gz');
    fs.writeFileSync(archive, tgz([...files(10), { name: 'data', body: crypto.randomBytes(3 << 20) }]));
    const probe = await fs.promises.open(archive, 'r');
    const proto = Object.getPrototypeOf(probe) as { read: (...a: unknown[]) => Promise<{ bytesRead: number }> };
    await probe.close();
    const read = proto.read;
    let bytes = 0;
    proto.read = async function (this: unknown, ...a: unknown[]) {
      const r = await read.apply(this, a);
      bytes += r.bytesRead;
      return r;
    };
    try {
      await extractArchive(archive, path.join(tmp, 'once-out'), { maxEntries: 100, maxBytes: 4 << 20 });
    } finally {
      proto.read = read;
    }
    const size = fs.statSync(archive).size;
    assert.ok(bytes >= size && bytes < size + 4096, `read ${bytes} bytes of a ${size}-byte archive`);
    assert.equal(fs.statSync(path.join(tmp, 'once-out', 'data')).size, 3 << 20);
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
