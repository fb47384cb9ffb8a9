// End to end through a real OCI registry (Debian's docker-registry on loopback):
// molt init as PID 1 of a PID namespace runs the example app and updater
// services; releases of the hello app are pushed with `molt publish` and the
// updater follows the semver tags of MOLT_OCI=127.0.0.1:<port>/hello.
// v1 runs; v2 is taken within about one interval; v3 crashes and is rolled back
// to v2 and blocked, durably (a killed and restarted updater still refuses it,
// where dockward kept its blocks in memory); v4 is taken. A cached layer that
// was corrupted on disk is fetched again, never trusted (dockerloader trusted a
// blob because its file existed).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { repoRoot, tmpdir } from '../helpers/molt.js';
import { startRegistry, type Registry } from '../helpers/registry.js';
import { oneToFour, packHello, Stack } from './updater-stack.js';

const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describe('updater end to end: OCI registry', { timeout: 240_000 }, () => {
  let reg: Registry;
  let work: string;
  const stacks: Stack[] = [];

  before(async () => {
    reg = await startRegistry();
    work = tmpdir('reg-releases');
  });

  after(async () => {
    for (const s of stacks) await s.dispose();
    await reg?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  async function publish(stack: Stack, tag: string, ...files: string[]): Promise<void> {
    const r = await stack.cli(['publish', `${reg.host}/${tag}`, ...files]);
    assert.equal(r.code, 0, `molt publish ${tag} failed: ${r.stderr}`);
  }

  test('v1 runs; v2 is taken within an interval; v3 crashes: rolled back to v2 and blocked across an updater restart; v4 is taken', async () => {
    const stack = await Stack.create({ label: 'e2e-oci', env: { MOLT_OCI: `${reg.host}/hello` } });
    stacks.push(stack);
    const rel = path.join(work, 'main');

    await oneToFour(stack, async (v, behaviour) => publish(stack, `hello:${v}`, packHello(v, rel, behaviour)), new RegExp(`${reg.host}/hello`), 'registry');

    const r = await stack.stop();
    assert.equal(r?.code, 0, 'molt exits 0 on TERM');
  });

  test('a cached layer corrupted on disk is fetched again, never trusted', async () => {
    const stack = await Stack.create({ label: 'e2e-oci-cache', env: { MOLT_OCI: `${reg.host}/layered` } });
    stacks.push(stack);
    // Releases of two layers: a shared one (server + run script) and a small one per version.
    const dir = path.join(work, 'layered');
    const common = path.join(dir, 'common');
    fs.mkdirSync(common, { recursive: true });
    fs.copyFileSync(path.join(repoRoot, 'examples/hello/server.mjs'), path.join(common, 'server.mjs'));
    fs.writeFileSync(path.join(common, 'run'), '#!/bin/sh\nexec node ./server.mjs\n', { mode: 0o755 });
    const commonTgz = path.join(dir, 'common.tar.gz');
    assert.equal(spawnSync('tar', ['-C', common, '-czf', commonTgz, '.']).status, 0);
    const meta = (v: string) => {
      const d = path.join(dir, `meta-${v}`);
      fs.mkdirSync(d, { recursive: true });
      fs.writeFileSync(path.join(d, 'VERSION'), `${v}\n`);
      const f = path.join(dir, `version-${v}.tar.gz`);
      assert.equal(spawnSync('tar', ['-C', d, '-czf', f, '.']).status, 0);
      return f;
    };
    const commonHex = sha256(commonTgz);

    await publish(stack, 'layered:1.0.0', commonTgz, meta('1.0.0'));
    stack.start();
    await stack.waitAppVersion('1.0.0', 60_000);
    await stack.waitStatus('1.0.0 committed', (x) => x.phase === 'idle' && x.history.some((h) => h.event === 'commit' && h.version === '1.0.0'));
    const cached = path.join(stack.home, 'cache', 'sha256', commonHex);
    assert.ok(fs.existsSync(cached), 'the shared layer is in the blob cache under its digest');

    // Corrupt it in place: same size, different bytes (a torn write, a bad disk).
    const bytes = fs.readFileSync(cached);
    for (let i = 0; i < bytes.length; i += 7) bytes[i] = bytes[i]! ^ 0xff;
    fs.writeFileSync(cached, bytes);
    assert.notEqual(sha256(cached), commonHex);

    await publish(stack, 'layered:2.0.0', commonTgz, meta('2.0.0'));
    await stack.waitAppVersion('2.0.0', 30_000);
    await stack.waitStatus('2.0.0 committed', (x) => x.phase === 'idle' && x.history.some((h) => h.event === 'commit' && h.version === '2.0.0'));
    assert.match(stack.m!.out() + stack.m!.err(), /cache entry corrupt, removing/, 'the corrupt entry was noticed');
    assert.equal(sha256(cached), commonHex, 'the cache holds the right bytes again');
    assert.equal(
      fs.readFileSync(path.join(stack.home, 'versions', '2.0.0', 'server.mjs'), 'utf8'),
      fs.readFileSync(path.join(common, 'server.mjs'), 'utf8'),
      'the release was built from the re-fetched layer',
    );
    assert.equal(stack.versionFileText(), '2.0.0');
    assert.equal((await stack.stop())?.code, 0);
  });
});
