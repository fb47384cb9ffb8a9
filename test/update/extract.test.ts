// Extraction: a normal release tree comes out exactly, and every hostile
// archive is refused whole, naming the entry, with nothing written anywhere.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { extractArchive, installBareFile } from '../../src/update/extract.js';
import { UpdateError } from '../../src/update/types.js';
import { tarBytes, tgz, type RawEntry } from './fixtures-local/tarbuild.js';

let root: string;
before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-extract-'));
});
after(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

/** Every path under dir (recursive, with type), for before/after comparison. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      out.push(`${path.relative(dir, p)}:${e.isDirectory() ? 'd' : e.isSymbolicLink() ? 'l' : 'f'}`);
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

/** A box per case: box/outside holds a sentinel file; the archive goes to box/staging/rel. */
function box(): { dir: string; staging: string; dest: string; outside: string } {
  const dir = fs.mkdtempSync(path.join(root, 'box-'));
  const outside = path.join(dir, 'outside');
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'victim'), 'original\n');
  const staging = path.join(dir, 'staging');
  fs.mkdirSync(staging);
  return { dir, staging, dest: path.join(staging, 'rel'), outside };
}

function write(dir: string, name: string, data: Buffer): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, data);
  return f;
}

/** Extract the archive, expect a refusal naming `entry`, and prove that nothing was written anywhere. */
async function expectRefused(
  archive: Buffer,
  entry: string | RegExp,
  opts: { code?: UpdateError['code']; reason?: RegExp; limits?: Parameters<typeof extractArchive>[2] } = {},
): Promise<UpdateError> {
  const b = box();
  // The archive itself sits outside the box so the before/after snapshot covers everything else.
  const file = write(root, `a-${path.basename(b.dir)}.tar.gz`, archive);
  const before = snapshot(b.dir);
  let caught: unknown;
  try {
    await extractArchive(file, b.dest, opts.limits);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof UpdateError, `expected an UpdateError, got ${String(caught)}`);
  assert.equal(caught.code, opts.code ?? 'hostile-archive', caught.message);
  if (typeof entry === 'string') assert.ok(caught.message.includes(JSON.stringify(entry)), `message names ${entry}: ${caught.message}`);
  else assert.match(caught.message, entry);
  if (opts.reason) assert.match(caught.message, opts.reason);
  assert.equal(fs.existsSync(b.dest), false, 'destDir removed');
  assert.deepEqual(snapshot(b.dir), before.filter((p) => !p.startsWith('staging/rel')), 'nothing written anywhere in the box');
  assert.equal(fs.readFileSync(path.join(b.outside, 'victim'), 'utf8'), 'original\n');
  return caught;
}

describe('extractArchive: normal releases', () => {
  test('a tree with dirs, an inside symlink, a hardlink and a long pax name comes out exactly', async () => {
    const b = box();
    const long = 'l'.repeat(180) + '.txt';
    const file = write(b.dir, 'r.tar.gz', tgz([
      { name: './', type: '5' },
      { name: './bin/', type: '5' },
      { name: './bin/app', mode: 0o755, body: '#!/bin/sh\necho hi\n' },
      { name: './lib/deep/data.bin', body: Buffer.alloc(70_000, 7) }, // parents implied
      { name: './bin/data', type: '2', linkname: '../lib/deep/data.bin' },
      { name: './lib/same', type: '1', linkname: 'lib/deep/data.bin' },
      { name: 'PaxHeader', pax: { path: `docs/${long}` }, body: 'long\n' },
    ]));
    const r = await extractArchive(file, b.dest);
    assert.deepEqual(r, { entries: 7, bytes: 18 + 70_000 + 5 });
    assert.equal(fs.readFileSync(path.join(b.dest, 'bin/app'), 'utf8'), '#!/bin/sh\necho hi\n');
    assert.equal(fs.statSync(path.join(b.dest, 'bin/app')).mode & 0o7777, 0o755);
    assert.equal(fs.readlinkSync(path.join(b.dest, 'bin/data')), '../lib/deep/data.bin');
    assert.equal(fs.readFileSync(path.join(b.dest, 'bin/data')).length, 70_000);
    assert.equal(fs.statSync(path.join(b.dest, 'lib/same')).ino, fs.statSync(path.join(b.dest, 'lib/deep/data.bin')).ino);
    assert.equal(fs.readFileSync(path.join(b.dest, 'docs', long), 'utf8'), 'long\n');
  });

  test('an archive made by GNU tar (plain .tar and .tar.gz) matches its source tree', async () => {
    const b = box();
    const src = path.join(b.dir, 'src');
    fs.mkdirSync(path.join(src, 'a/b/c'), { recursive: true });
    fs.writeFileSync(path.join(src, 'a/b/c/file'), 'x'.repeat(5000));
    fs.writeFileSync(path.join(src, 'n'.repeat(150)), 'gnu long name');
    fs.symlinkSync('b/c/file', path.join(src, 'a/link'));
    execFileSync('tar', ['-czf', path.join(b.dir, 'g.tgz'), '-C', src, '.']);
    execFileSync('tar', ['--format=gnu', '-cf', path.join(b.dir, 'g.tar'), '-C', src, '.']);
    for (const f of ['g.tgz', 'g.tar']) {
      const dest = path.join(b.staging, f);
      await extractArchive(path.join(b.dir, f), dest);
      execFileSync('diff', ['-r', '--no-dereference', src, dest]); // throws on any difference
    }
  });

  test('ownership never comes from the archive, and setuid/setgid/sticky bits are stripped', async () => {
    const b = box();
    const file = write(b.dir, 'm.tar', tarBytes([
      { name: 'suid', mode: 0o4755, uid: 4242, body: 'a' },
      { name: 'sgid', mode: 0o2750, uid: 4242, body: 'b' },
      { name: 'tmp/', type: '5', mode: 0o1777, uid: 4242 },
      { name: 'private', mode: 0o600, body: 'c' },
    ]));
    await extractArchive(file, b.dest);
    const mode = (p: string) => fs.statSync(path.join(b.dest, p)).mode & 0o7777;
    assert.equal(mode('suid'), 0o755);
    assert.equal(mode('sgid'), 0o750);
    assert.equal(mode('tmp'), 0o777);
    assert.equal(mode('private'), 0o600);
    for (const p of ['suid', 'sgid', 'tmp', 'private']) {
      assert.equal(fs.statSync(path.join(b.dest, p)).uid, process.getuid?.(), `${p} owned by us, not uid 4242`);
    }
  });

  test('destDir that exists and is not empty is refused before anything is read', async () => {
    const b = box();
    fs.mkdirSync(b.dest);
    fs.writeFileSync(path.join(b.dest, 'old'), 'x');
    const file = write(b.dir, 'ok.tar', tarBytes([{ name: 'f', body: 'y' }]));
    await assert.rejects(extractArchive(file, b.dest), (e: UpdateError) => e.code === 'bad-input' && /not empty/.test(e.message));
    assert.equal(fs.readFileSync(path.join(b.dest, 'old'), 'utf8'), 'x');
  });
});

describe('extractArchive: hostile archives are refused whole', () => {
  // Each case: a harmless file first, so a refusal must also undo work already done.
  const ok: RawEntry = { name: 'good.txt', body: 'fine\n' };

  test('path traversal ../x', async () => {
    await expectRefused(tgz([ok, { name: '../../x', body: 'pwned' }]), '../../x', { reason: /'\.\.'/ });
  });

  test('traversal hidden in the middle: a/../../x', async () => {
    await expectRefused(tgz([ok, { name: 'a/../../x', body: 'pwned' }]), 'a/../../x');
  });

  test('traversal smuggled through a pax path header', async () => {
    await expectRefused(tgz([ok, { name: 'innocent', pax: { path: '../../x' }, body: 'pwned' }]), '../../x');
  });

  test('absolute path /etc/x', async () => {
    await expectRefused(tgz([ok, { name: '/etc/molt-test-pwned', body: 'pwned' }]), '/etc/molt-test-pwned', { reason: /absolute/ });
    assert.equal(fs.existsSync('/etc/molt-test-pwned'), false);
  });

  test('symlink whose target leaves the release', async () => {
    await expectRefused(tgz([ok, { name: 'esc', type: '2', linkname: '../../outside' }]), 'esc', { reason: /leaves the release/ });
  });

  test('absolute symlink, then a write through it', async () => {
    const b = box();
    await expectRefused(tgz([ok, { name: 'abs', type: '2', linkname: b.outside }, { name: 'abs/victim', body: 'pwned' }]), 'abs', { reason: /absolute/ });
    assert.equal(fs.readFileSync(path.join(b.outside, 'victim'), 'utf8'), 'original\n');
  });

  test('an inside symlink used as a path component is refused (no write through any symlink)', async () => {
    await expectRefused(tgz([ok, { name: 'd/', type: '5' }, { name: 'ln', type: '2', linkname: 'd' }, { name: 'ln/f', body: 'x' }]), 'ln/f', {
      reason: /through the symlink "ln"/,
    });
  });

  test('a chain that is inside lexically but escapes through another symlink (d/up -> .., esc -> d/up/..)', async () => {
    await expectRefused(
      tgz([ok, { name: 'd/', type: '5' }, { name: 'd/up', type: '2', linkname: '..' }, { name: 'esc', type: '2', linkname: 'd/up/..' }]),
      'esc',
      { reason: /resolves outside/ },
    );
  });

  test('the same chain built in the opposite order (the escape becomes real only later)', async () => {
    await expectRefused(
      tgz([ok, { name: 'esc', type: '2', linkname: 'd/up/..' }, { name: 'd/', type: '5' }, { name: 'd/up', type: '2', linkname: '..' }]),
      'esc',
      { reason: /resolves outside/ },
    );
  });

  test('symlink loop', async () => {
    await expectRefused(tgz([ok, { name: 'a', type: '2', linkname: 'b' }, { name: 'b', type: '2', linkname: 'a' }]), /entry "(a|b)"/, { reason: /loop/ });
  });

  test('hardlink to a file outside (relative and absolute)', async () => {
    await expectRefused(tgz([ok, { name: 'hl', type: '1', linkname: '../outside/victim' }]), 'hl');
    await expectRefused(tgz([ok, { name: 'hl2', type: '1', linkname: '/etc/passwd' }]), 'hl2', { reason: /absolute/ });
  });

  test('hardlink to a symlink or to a name not in the archive', async () => {
    await expectRefused(tgz([ok, { name: 's', type: '2', linkname: 'good.txt' }, { name: 'hl', type: '1', linkname: 's' }]), 'hl', { reason: /not a file earlier/ });
    await expectRefused(tgz([ok, { name: 'hl', type: '1', linkname: 'etc/passwd' }]), 'hl');
  });

  test('a hardlink then a file of the same name (CVE-2018-20834 shape) is a duplicate entry', async () => {
    await expectRefused(tgz([ok, { name: 'hl', type: '1', linkname: 'good.txt' }, { name: 'hl', body: 'overwrite' }]), 'hl', { reason: /duplicate/ });
  });

  test('character device, block device and FIFO', async () => {
    await expectRefused(tgz([ok, { name: 'tty', type: '3', devmajor: 5 }]), 'tty', { reason: /character device/ });
    await expectRefused(tgz([ok, { name: 'sda', type: '4', devmajor: 8 }]), 'sda', { reason: /block device/ });
    await expectRefused(tgz([ok, { name: 'pipe', type: '6' }]), 'pipe', { reason: /FIFO/ });
  });

  test("a GNU sparse 'S' entry whose map does not hold its data is refused, not guessed at", async () => {
    // An empty map (no ranges, real size 0) with one stored byte: sparse files are unpacked (sparse.test.ts), a bad map is damage.
    await expectRefused(tgz([ok, { name: 'sparse', type: 'S', body: 'x' }]), /corrupt archive .*GNU sparse map lists 0 bytes of data but the entry stores 1/, { code: 'integrity' });
  });

  test('unsupported entry types are refused, not guessed at', async () => {
    await expectRefused(tgz([ok, { name: 'volume', type: 'V', body: '' }]), 'volume', { reason: /unsupported entry type "V"/ });
  });

  test('size bomb: a file over maxBytes (2 MiB of zeros, 2 KiB compressed) is refused before it is written', async () => {
    const bomb = tgz([ok, { name: 'bomb', body: Buffer.alloc(2 * 1024 * 1024) }]);
    assert.ok(bomb.length < 16 * 1024);
    await expectRefused(bomb, 'bomb', { reason: /exceeds the limit of 1048576/, limits: { maxBytes: 1024 * 1024 } });
  });

  test('size bomb by header: one entry declaring 10 GiB against the default 2 GiB limit', async () => {
    // Only the header exists; the refusal must come from the declared size, not after reading 2 GiB.
    await expectRefused(tgz([ok, { name: 'huge', size: 10 * 1024 ** 3 }], { end: false }), 'huge', { reason: /exceeds the limit/ });
  });

  test('entry count over maxEntries', async () => {
    const many: RawEntry[] = Array.from({ length: 50 }, (_, i) => ({ name: `f${i}`, body: '' }));
    await expectRefused(tgz(many), 'f20', { reason: /more than 20 entries/, limits: { maxEntries: 20 } });
  });

  test('corrupt gzip (bytes flipped mid-stream)', async () => {
    const good = tgz([ok, { name: 'big', body: Buffer.from(Array.from({ length: 20000 }, (_, i) => i % 251)) }]);
    const bad = Buffer.from(good);
    for (let i = 40; i < 60; i++) bad[i] = (bad[i] as number) ^ 0xff;
    await expectRefused(bad, /corrupt archive/, { code: 'integrity' });
  });

  test('gzip with a damaged CRC trailer', async () => {
    const bad = Buffer.from(tgz([ok]));
    bad[bad.length - 6] = (bad[bad.length - 6] as number) ^ 0xff;
    await expectRefused(bad, /corrupt archive .*gzip/, { code: 'integrity' });
  });

  test('truncated tar: cut in the middle of a body names the entry', async () => {
    const t = tarBytes([ok, { name: 'cut', body: Buffer.alloc(4096, 1) }]);
    await expectRefused(t.subarray(0, 1536 + 1000), /after entry "cut"/, { code: 'integrity', reason: /unexpected end/ });
  });

  test('truncated tar: cut at a header boundary (no end-of-archive marker)', async () => {
    const t = tarBytes([ok, { name: 'last', body: 'z' }], { end: false });
    await expectRefused(zlib.gzipSync(t), /after entry "last"/, { code: 'integrity', reason: /end-of-archive/ });
  });

  test('a header with a bad checksum is damage, not something to skip', async () => {
    const t = tarBytes([ok, { name: 'next', body: 'n' }]);
    t[512 * 2 + 5] = 0x41; // inside the second header's name field
    await expectRefused(t, /after entry "good.txt"/, { code: 'integrity', reason: /checksum/ });
  });

  test('not an archive at all', async () => {
    await expectRefused(Buffer.from('<html>rate limited</html>\n'.repeat(50)), /corrupt archive/, { code: 'integrity' });
  });
});

describe('installBareFile', () => {
  test('copies a bare binary asset as an executable file', async () => {
    const b = box();
    const src = write(b.dir, 'asset', Buffer.from('\x7fELF fake'));
    fs.chmodSync(src, 0o600);
    await installBareFile(src, b.dest, 'app');
    assert.equal(fs.readFileSync(path.join(b.dest, 'app'), 'latin1'), '\x7fELF fake');
    assert.equal(fs.statSync(path.join(b.dest, 'app')).mode & 0o7777, 0o755);
  });

  test('refuses a name with a path in it', async () => {
    const b = box();
    const src = write(b.dir, 'asset', Buffer.from('x'));
    for (const bad of ['../app', 'a/b', '..', '']) {
      await assert.rejects(installBareFile(src, b.dest, bad), (e: UpdateError) => e.code === 'bad-input');
    }
    assert.equal(fs.existsSync(path.join(b.staging, 'app')), false);
  });
});
