// The pure parts of extraction: path policy, symlink resolution over the
// archive's own tree, and the tar header/pax decoders.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  PolicyError,
  checkSymlinkTarget,
  dirMode,
  fileMode,
  normalizeEntryPath,
  resolveInTree,
  type TreeNode,
} from '../../src/update/archive-policy.js';
import { TarFormatError, checksumOk, decodeHeader, decodeNumber, parsePax, readTar, type TarEntry } from '../../src/update/tarstream.js';
import { header, tarBytes } from './fixtures-local/tarbuild.js';

describe('normalizeEntryPath', () => {
  test('accepts and normalises ordinary names', () => {
    assert.equal(normalizeEntryPath('./bin/app'), 'bin/app');
    assert.equal(normalizeEntryPath('bin//app/'), 'bin/app');
    assert.equal(normalizeEntryPath('./'), '');
    assert.equal(normalizeEntryPath('a/./b'), 'a/b');
    assert.equal(normalizeEntryPath('..a/b..'), '..a/b..', "'..' only as a whole component");
  });
  test('refuses absolute paths, .. components, NULs, absurd depth and name length', () => {
    for (const bad of ['/etc/passwd', '//etc', '../x', 'a/../../x', 'a/..', 'a\0b', 'd/'.repeat(129) + 'f', 'n'.repeat(256)]) {
      assert.throws(() => normalizeEntryPath(bad), PolicyError, JSON.stringify(bad.slice(0, 20)));
    }
  });
});

describe('checkSymlinkTarget (lexical)', () => {
  test('targets that stay inside', () => {
    checkSymlinkTarget('a/b/link', '../c');
    checkSymlinkTarget('a/b/link', '../../c');
    checkSymlinkTarget('link', 'x/../y');
    checkSymlinkTarget('a/link', '.');
  });
  test('targets that leave, are absolute or empty', () => {
    for (const [p, t] of [['link', '..'], ['a/b/link', '../../../c'], ['link', 'x/../../y'], ['link', '/etc'], ['link', '']]) {
      assert.throws(() => checkSymlinkTarget(p as string, t as string), PolicyError, `${p} -> ${t}`);
    }
  });
});

describe('resolveInTree (what the kernel would do)', () => {
  const tree = (entries: [string, TreeNode][]) => new Map<string, TreeNode>([['', { kind: 'dir' }], ...entries]);
  test('follows chains of inside links to their end', () => {
    const t = tree([
      ['bin', { kind: 'dir' }],
      ['bin/app', { kind: 'file' }],
      ['lib', { kind: 'symlink', target: 'bin' }],
      ['run', { kind: 'symlink', target: 'lib/app' }],
    ]);
    assert.equal(resolveInTree(t, 'run'), 'bin/app');
  });
  test('".." after a symlink is taken from its target, not lexically', () => {
    const t = tree([
      ['d', { kind: 'dir' }],
      ['d/up', { kind: 'symlink', target: '..' }],
      ['esc', { kind: 'symlink', target: 'd/up/..' }],
    ]);
    assert.equal(resolveInTree(t, 'd/up'), '');
    assert.throws(() => resolveInTree(t, 'esc'), /resolves outside/);
  });
  test('a link through an absolute symlink is outside; loops are refused', () => {
    const t = tree([
      ['abs', { kind: 'symlink', target: '/etc' }],
      ['via', { kind: 'symlink', target: 'abs/passwd' }],
      ['a', { kind: 'symlink', target: 'b' }],
      ['b', { kind: 'symlink', target: 'a' }],
    ]);
    assert.throws(() => resolveInTree(t, 'via'), /outside/);
    assert.throws(() => resolveInTree(t, 'a'), /loop/);
  });
  test('dangling components are taken lexically', () => {
    const t = tree([['l', { kind: 'symlink', target: 'missing/x' }]]);
    assert.equal(resolveInTree(t, 'l'), 'missing/x');
  });
});

describe('modes', () => {
  test('special bits never survive; the owner keeps access', () => {
    assert.equal(fileMode(0o4755), 0o755);
    assert.equal(fileMode(0o2711), 0o711 | 0o400);
    assert.equal(fileMode(0o000), 0o400);
    assert.equal(dirMode(0o1777), 0o777);
    assert.equal(dirMode(0o555), 0o755);
  });
});

describe('tar decoding', () => {
  test('decodeNumber: octal, space/NUL padding, base-256; negatives and junk refused', () => {
    assert.equal(decodeNumber(Buffer.from('0000644\0'), 0, 8, 'mode'), 0o644);
    assert.equal(decodeNumber(Buffer.from('   644 \0'), 0, 8, 'mode'), 0o644);
    assert.equal(decodeNumber(Buffer.from('\0\0\0\0\0\0\0\0'), 0, 8, 'mode'), 0);
    const b256 = Buffer.alloc(12);
    b256[0] = 0x80;
    b256[7] = 0x02;
    b256[11] = 0x01;
    assert.equal(decodeNumber(b256, 0, 12, 'size'), 2 * 2 ** 32 + 1);
    const neg = Buffer.alloc(12, 0xff);
    assert.throws(() => decodeNumber(neg, 0, 12, 'size'), TarFormatError);
    assert.throws(() => decodeNumber(Buffer.from('12a4\0'), 0, 5, 'size'), TarFormatError);
  });

  test('decodeHeader reads ustar fields and the prefix; a bad checksum throws', () => {
    const h = header({ name: 'bin/app', type: '0', mode: 0o755, size: 42 });
    assert.ok(checksumOk(h));
    assert.deepEqual(decodeHeader(h), { name: 'bin/app', mode: 0o755, size: 42, typeflag: '0', linkname: '' });
    h.write('prefix/dir\0', 345, 'latin1');
    // Recompute the checksum after editing the prefix.
    h.fill(0x20, 148, 156);
    let sum = 0;
    for (const x of h) sum += x;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
    assert.equal(decodeHeader(h).name, 'prefix/dir/bin/app');
    h[0] = (h[0] as number) ^ 1;
    assert.throws(() => decodeHeader(h), /checksum/);
  });

  test('parsePax reads records and refuses malformed ones', () => {
    const m = parsePax(Buffer.from('20 path=a/b/c/d/e/f\n15 linkpath=xy\n'));
    assert.equal(m.get('path'), 'a/b/c/d/e/f');
    assert.equal(m.get('linkpath'), 'xy');
    for (const bad of ['99 path=x\n', 'x path=y\n', '8 path\n', '9 path=x']) {
      assert.throws(() => parsePax(Buffer.from(bad)), TarFormatError, bad);
    }
  });

  test('readTar yields entries with pax overrides and consumes bodies exactly', async () => {
    const bytes = tarBytes([
      { name: 'a', body: 'hello' },
      { name: 'short', pax: { path: 'long/'.repeat(40) + 'name', linkpath: 't'.repeat(120) }, type: '2' },
      { name: 'd/', type: '5' },
    ]);
    const seen: [TarEntry, string][] = [];
    // Deliver in awkward 100-byte chunks to exercise the carry-over buffer.
    async function* chunked() {
      for (let i = 0; i < bytes.length; i += 100) yield bytes.subarray(i, i + 100);
    }
    await readTar(chunked(), {
      async onEntry(e, body) {
        let s = '';
        for await (const c of body) s += c.toString();
        seen.push([e, s]);
      },
    });
    assert.deepEqual(seen.map(([e, s]) => [e.name, e.type, e.size, e.linkname, s]), [
      ['a', 'file', 5, '', 'hello'],
      ['long/'.repeat(40) + 'name', 'symlink', 0, 't'.repeat(120), ''],
      ['d/', 'dir', 0, '', ''],
    ]);
  });

  test('readTar skips a body the handler does not read', async () => {
    const names: string[] = [];
    async function* one() {
      yield tarBytes([{ name: 'x', body: Buffer.alloc(3000, 1) }, { name: 'y', body: 'z' }]);
    }
    await readTar(one(), { async onEntry(e) { names.push(e.name); } });
    assert.deepEqual(names, ['x', 'y']);
  });
});
