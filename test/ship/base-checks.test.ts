// The two checks docker/Dockerfile asks of its base image (NODE_IMAGE), run here
// on both answers: docker/libc.sh says musl or glibc for koffi's binary (never
// assumed), and docker/check-node.sh stops a base without node, or with a node
// older than package.json's engines, with one line.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot, tmpdir } from '../helpers/molt.js';

const libcScript = path.join(repoRoot, 'docker/libc.sh');
const checkScript = path.join(repoRoot, 'docker/check-node.sh');
const pkgJson = path.join(repoRoot, 'package.json');
const engines = (JSON.parse(fs.readFileSync(pkgJson, 'utf8')) as { engines: { node: string } }).engines.node;

describe('the base image checks', () => {
  let work: string;
  /** A PATH directory with sh, sed and a `node` that is a script of ours (or none). */
  let fakeBin: (node: string | undefined) => string;

  before(() => {
    work = tmpdir('ship-base-checks');
    let n = 0;
    fakeBin = (node) => {
      const bin = path.join(work, `bin${n++}`);
      fs.mkdirSync(bin);
      for (const tool of ['sh', 'sed']) fs.symlinkSync(path.join('/bin', tool), path.join(bin, tool));
      if (node !== undefined) fs.writeFileSync(path.join(bin, 'node'), `#!/bin/sh\n${node}\n`, { mode: 0o755 });
      return bin;
    };
  });
  after(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  const sh = (script: string, args: string[], pathDirs?: string) =>
    spawnSync('/bin/sh', [script, ...args], { encoding: 'utf8', timeout: 20_000, env: pathDirs === undefined ? process.env : { PATH: pathDirs } });

  test('libc.sh: glibc for this machine\'s node (it reports the glibc it runs on)', () => {
    const r = sh(libcScript, [], `${path.dirname(process.execPath)}:/usr/bin:/bin`);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'glibc\n');
  });

  test('libc.sh: musl where node reports no glibc and the musl loader is there', () => {
    const root = path.join(work, 'alpine');
    fs.mkdirSync(path.join(root, 'lib'), { recursive: true });
    fs.writeFileSync(path.join(root, `lib/ld-musl-${process.arch === 'x64' ? 'x86_64' : 'aarch64'}.so.1`), '');
    // Node on musl: process.report's header has no glibcVersionRuntime; -p prints an empty line.
    const r = sh(libcScript, [root], fakeBin('echo'));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'musl\n');
  });

  test('libc.sh: neither answer: one line and exit 1, nothing assumed', () => {
    const root = path.join(work, 'unknown');
    fs.mkdirSync(path.join(root, 'lib'), { recursive: true });
    const r = sh(libcScript, [root], fakeBin('echo'));
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /cannot tell the base image's C library/);
  });

  test('check-node.sh: this machine\'s node passes (engines allows it)', () => {
    const r = sh(checkScript, [pkgJson]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout + r.stderr, '');
  });

  test('check-node.sh: no node on PATH: one line naming what NODE_IMAGE must be', () => {
    const r = sh(checkScript, [pkgJson], fakeBin(undefined));
    assert.equal(r.status, 1);
    assert.equal(r.stderr, `molt: the base image has no node on PATH: NODE_IMAGE must be a Node image with node ${engines} (e.g. node:24-alpine)\n`);
  });

  test('check-node.sh: a node older than engines: one line with both versions', () => {
    const r = sh(checkScript, [pkgJson], fakeBin('echo v18.20.4'));
    assert.equal(r.status, 1);
    assert.equal(r.stderr.split('\n').filter(Boolean).length, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`node is v18\\.20\\.4, molt needs node ${engines}`));
    const garbled = sh(checkScript, [pkgJson], fakeBin('echo hello'));
    assert.equal(garbled.status, 1);
    assert.match(garbled.stderr, /does not say its version/);
  });

  test('check-node.sh: a node at the engines minimum or later passes', () => {
    const min = /(\d+)/.exec(engines)![1]!;
    for (const v of [`v${min}.0.0`, `v${Number(min) + 4}.1.0`]) {
      const r = sh(checkScript, [pkgJson], fakeBin(`echo ${v}`));
      assert.equal(r.status, 0, `${v}: ${r.stderr}`);
    }
  });

  test('the scripts pass shellcheck', () => {
    const r = spawnSync('shellcheck', ['-s', 'sh', libcScript, checkScript], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });
});
