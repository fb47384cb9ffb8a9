// MOLT_BUNDLED's reader (sources/bundled.ts): where a bundled release's version
// comes from (VERSION in a directory or inside a tarball, its name, the seed's
// version file), and one-line refusals for a missing or damaged release that
// never block its version.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { BundledSource, readBundled, versionFromText } from '../../src/update/sources/bundled.js';
import { isReleaseFault } from '../../src/update/stage.js';
import { UpdateError } from '../../src/update/types.js';

let root: string;
before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-bundled-'));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

let n = 0;
/** A release tree (run + optional VERSION) in a fresh directory named `name`. */
function tree(name: string, version?: string): string {
  const dir = path.join(root, `t${++n}`, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'run'), '#!/bin/sh\nexec sleep 1\n', { mode: 0o755 });
  if (version !== undefined) fs.writeFileSync(path.join(dir, 'VERSION'), version);
  return dir;
}

function tarball(name: string, version?: string): string {
  const src = tree('src', version);
  const out = path.join(path.dirname(src), name);
  execFileSync('tar', ['-czf', out, '-C', src, '.']);
  return out;
}

const noVersionFile = path.join(os.tmpdir(), 'molt-no-such-version-file');

async function refusal(p: Promise<unknown>): Promise<UpdateError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof UpdateError, String(err));
    assert.doesNotMatch(err.message, /\n/, 'one line');
    return err;
  }
  assert.fail('accepted');
}

describe('the bundled release version', () => {
  test('a VERSION file: first line, trimmed, a leading v dropped', () => {
    assert.equal(versionFromText('1.2.3\n'), '1.2.3');
    assert.equal(versionFromText('  v2.0.0-rc.1 \nnotes\n'), '2.0.0-rc.1');
    assert.equal(versionFromText('\n'), undefined);
    assert.equal(versionFromText('../etc'), undefined);
  });

  test('a directory: its VERSION file wins over its name and the version file', async () => {
    const dir = tree('9.9.9', '1.4.0\n');
    assert.deepEqual(await readBundled(dir, noVersionFile), { version: '1.4.0', kind: 'dir', versionFrom: 'VERSION' });
  });

  test('a tarball: the VERSION inside it, read without extracting', async () => {
    assert.deepEqual(await readBundled(tarball('app.tar.gz', 'v1.5.0\n'), noVersionFile), { version: '1.5.0', kind: 'tarball', versionFrom: 'VERSION' });
    // Uncompressed too.
    const src = tree('plain', '1.5.1\n');
    const plain = path.join(root, 'plain.tar');
    execFileSync('tar', ['-cf', plain, '-C', src, '.']);
    assert.equal((await readBundled(plain, noVersionFile)).version, '1.5.1');
  });

  test('no VERSION: its name when that is a version (as in MOLT_DIR)', async () => {
    assert.deepEqual(await readBundled(tree('v1.6.0'), noVersionFile), { version: '1.6.0', kind: 'dir', versionFrom: 'name' });
    assert.deepEqual(await readBundled(tarball('1.7.0.tgz'), noVersionFile), { version: '1.7.0', kind: 'tarball', versionFrom: 'name' });
  });

  test("neither: MOLT_VERSION_FILE (the seed's /version baked into its image)", async () => {
    const vf = path.join(root, 'version');
    fs.writeFileSync(vf, '1.8.0\n');
    assert.deepEqual(await readBundled(tree('app'), vf), { version: '1.8.0', kind: 'dir', versionFrom: vf });
  });

  test('no version anywhere, a bad VERSION, a missing path, a damaged tarball: one line each', async () => {
    assert.match((await refusal(readBundled(tree('app'), noVersionFile))).message, /no version \(no VERSION file in it, its name is not a version/);
    assert.match((await refusal(readBundled(tree('app', 'not a version'), noVersionFile))).message, /its VERSION file does not hold a version/);
    const gone = await refusal(readBundled(path.join(root, 'nothing-here'), noVersionFile));
    assert.match(gone.message, /^MOLT_BUNDLED .*nothing-here cannot be read: ENOENT$/);
    const good = fs.readFileSync(tarball('x.tar.gz', '1.9.0\n'));
    const cut = path.join(root, 'cut.tar.gz');
    fs.writeFileSync(cut, good.subarray(0, Math.floor(good.length / 2)));
    assert.match((await refusal(readBundled(cut, noVersionFile))).message, /^MOLT_BUNDLED .*cut\.tar\.gz cannot be read: /);
  });
});

describe('fetching the bundled release', () => {
  test('a directory and a tarball are copied or extracted into staging', async () => {
    for (const where of [tree('d', '2.0.0'), tarball('t.tar.gz', '2.0.0')]) {
      const src = new BundledSource(where, noVersionFile);
      const { releases } = await src.list();
      assert.equal(releases.length, 1);
      const staging = fs.mkdtempSync(path.join(root, 'staging-'));
      const f = await src.fetch(releases[0]!, staging);
      assert.equal(fs.readFileSync(path.join(f.dir, 'VERSION'), 'utf8'), '2.0.0');
      assert.ok(fs.statSync(path.join(f.dir, 'run')).mode & 0o100, 'run stays executable');
    }
  });

  test('a hostile or corrupt bundled tarball is refused without debris, and never as a fault of the release (no block)', async () => {
    const src = tree('h', '3.0.0');
    fs.symlinkSync('/etc/passwd', path.join(src, 'escape'));
    const hostile = path.join(root, 'hostile.tar.gz');
    execFileSync('tar', ['-czf', hostile, '-C', src, '.']);
    const s = new BundledSource(hostile, noVersionFile);
    const { releases } = await s.list();
    const staging = fs.mkdtempSync(path.join(root, 'staging-'));
    const err = await refusal(s.fetch(releases[0]!, staging));
    assert.match(err.message, /^the bundled release .*hostile\.tar\.gz cannot be installed: hostile archive/);
    assert.equal(isReleaseFault(err), false, 'the image copy is damaged, the version is not blocked');
    assert.deepEqual(fs.readdirSync(staging), []);
  });
});
