// Sparse files as GNU tar writes them (--sparse): pax 1.0 (the --format=posix default), pax 0.1
// and the old GNU 'S' header (with extension blocks past 4 ranges) are unpacked byte for byte,
// holes as holes; pax 0.0 is refused by name; the real size counts against the limits.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { extractArchive } from '../../src/update/extract.js';
import { UpdateError } from '../../src/update/types.js';

let tmp: string;
let src: string;
const MiB = 1024 * 1024;

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-sparse-'));
  src = path.join(tmp, 'src');
  fs.mkdirSync(src);
  // holes: 3 ranges of data in 8 MiB, ending in a hole. many: 30 ranges (past the 4 an 'S' header holds), ending in data.
  const holes = fs.openSync(path.join(src, 'holes'), 'w');
  for (const [at, n] of [[0, 5000], [2 * MiB + 17, 70_000], [5 * MiB, 1]] as const) fs.writeSync(holes, crypto.randomBytes(n), 0, n, at);
  fs.ftruncateSync(holes, 8 * MiB);
  fs.closeSync(holes);
  const many = fs.openSync(path.join(src, 'many'), 'w');
  for (let i = 0; i < 30; i++) fs.writeSync(many, crypto.randomBytes(100 + i), 0, 100 + i, i * 64 * 1024 + 4096);
  fs.closeSync(many);
  fs.writeFileSync(path.join(src, 'plain'), 'not sparse\n');
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function archive(name: string, args: string[]): string {
  const file = path.join(tmp, name);
  execFileSync('tar', [...args, '-cf', file, '-C', src, 'holes', 'many', 'plain']);
  return file;
}

function assertSameTree(dir: string): void {
  for (const f of ['holes', 'many', 'plain']) {
    const want = fs.readFileSync(path.join(src, f));
    const got = fs.readFileSync(path.join(dir, f));
    assert.equal(got.length, want.length, `${f}: size`);
    assert.ok(got.equals(want), `${f}: content`);
  }
  const st = fs.statSync(path.join(dir, 'holes'));
  assert.ok(st.blocks * 512 < MiB, `holes stay holes (${st.blocks} blocks for ${st.size} bytes)`);
}

describe('GNU sparse files', () => {
  const forms: [string, string[]][] = [
    ['pax 1.0 (tar --sparse --format=posix)', ['--sparse', '--format=posix']],
    ['pax 1.0, gzip', ['--sparse', '--format=posix', '-z']],
    ['pax 0.1', ['--sparse', '--sparse-version=0.1', '--format=posix']],
    ["old GNU 'S' headers (tar --sparse --format=gnu)", ['--sparse', '--format=gnu']],
  ];
  for (const [i, [what, args]] of forms.entries()) {
    test(`${what}: unpacked byte for byte under the file's own name`, async () => {
      const dest = path.join(tmp, `out-${i}`);
      await extractArchive(archive(`a${i}.tar`, args), dest);
      assert.deepEqual(fs.readdirSync(dest).sort(), ['holes', 'many', 'plain']);
      assertSameTree(dest);
    });
  }

  test('pax 0.0 is refused in one line naming the format', async () => {
    const dest = path.join(tmp, 'out-00');
    await assert.rejects(extractArchive(archive('a00.tar', ['--sparse', '--sparse-version=0.0', '--format=posix']), dest), (e: unknown) => {
      assert.ok(e instanceof UpdateError);
      assert.equal(e.code, 'hostile-archive');
      assert.match(e.message, /^hostile archive a00\.tar: GNU sparse format 0\.0 is not supported/);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
    assert.equal(fs.existsSync(dest), false);
  });

  test('the real size, not the stored data, counts against the byte limit', async () => {
    const file = archive('limit.tar', ['--sparse', '--format=posix']);
    assert.ok(fs.statSync(file).size < MiB, 'the archive itself is small');
    await assert.rejects(extractArchive(file, path.join(tmp, 'out-limit'), { maxBytes: 4 * MiB }), (e: unknown) => e instanceof UpdateError && e.code === 'hostile-archive' && /exceeds the limit of 4194304 bytes/.test(e.message));
  });
});
