// The user's image with its first release baked in (examples/hello/Dockerfile,
// MOLT_BUNDLED), built for real with Debian's buildah on molt's image (itself
// built from docker/Dockerfile on a local glibc Node base, as in
// image-build.test.ts), then run as `docker run --network none` would: molt init
// as PID 1 of PID, mount and network namespaces (loopback only), chrooted into
// the image's root. The source (GitHub) cannot be reached, and the bundled app
// answers anyway.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { repoRoot, tmpdir, waitFor } from '../helpers/molt.js';
import type { UpdaterStatus } from '../../src/api/types.js';
import { appVersionIn, Buildah, buildMoltImage, execIn, imageEnv, nodeBaseImage, runContainer, type Container } from './buildah.js';

const BASE = `localhost/molt-bundled-node:${process.versions.node.split('.')[0]}`;
const MOLT = 'localhost/molt-bundled-molt:latest';
const HELLO = 'localhost/molt-bundled-hello:latest';
const STEP_MS = 60_000;

describe('examples/hello/Dockerfile: the first release baked into the image, run with no network', { timeout: 600_000 }, () => {
  let work: string;
  let b: Buildah;
  let container = '';
  let root = '';
  let c: Container | undefined;

  before(() => {
    work = tmpdir('ship-bundled');
    b = new Buildah(path.join(work, 'buildah'));
    nodeBaseImage(b, work, BASE);
  });

  after(async () => {
    await c?.kill();
    if (container) b.run(['umount', container]);
    b?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('builds: molt image, then the example Dockerfile with a packed release as its context', () => {
    buildMoltImage(b, BASE, MOLT, '0.1.0');
    const ctx = path.join(work, 'out');
    const r = spawnSync(path.join(repoRoot, 'examples/hello/pack.sh'), ['1.0.0', ctx], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    // The command docs/deploy.md gives, with the molt image built here.
    b.ok(['bud', '--isolation', 'chroot', '--pull=never', '--format', 'docker', '--build-arg', `MOLT_IMAGE=${MOLT}`, '--build-arg', 'RELEASE=1.0.0.tar.gz', '-f', path.join(repoRoot, 'examples/hello/Dockerfile'), '-t', HELLO, ctx], 120_000);
    const env = imageEnv(b, HELLO);
    assert.equal(env.MOLT_BUNDLED, '/opt/molt-bundled/release.tar.gz');
    assert.match(env.MOLT_GITHUB ?? '', /^[^/]+\/[^/]+$/, 'a source is configured (the network just is not there)');
  });

  test('docker run --network none: the bundled app answers, the source is unreachable, and TERM ends it with 0', async () => {
    container = b.ok(['from', '--pull=never', HELLO]);
    root = b.ok(['mount', container]);
    assert.ok(fs.statSync(path.join(root, 'opt/molt-bundled/release.tar.gz')).isFile(), 'the release is in the image');
    const port = 8080;
    const env = { ...imageEnv(b, HELLO), MOLT_INTERVAL: '1s', MOLT_TRIAL: '3s', HELLO_PORT: String(port) };
    c = await runContainer(root, env, { network: false });
    const tail = () => c!.output().slice(-3000);
    // Loopback only: no way out of the container.
    const ifaces = fs.readFileSync(`/proc/${c.pid1}/net/dev`, 'utf8').split('\n').slice(2).map((l) => l.trim().split(':')[0]).filter(Boolean);
    assert.deepEqual(ifaces, ['lo']);

    await waitFor(`the bundled app answering 1.0.0\n${tail()}`, async () => (await appVersionIn(c!.pid1, port)) === '1.0.0', STEP_MS, 500);
    const status = async (): Promise<UpdaterStatus | undefined> => {
      const r = await execIn(c!.pid1, ['molt', 'status', '--json']);
      try {
        return r.code === 0 ? (JSON.parse(r.stdout) as UpdaterStatus) : undefined;
      } catch {
        return undefined;
      }
    };
    const s = await waitFor(`current 1.0.0 and a failed poll of the source\n${tail()}`, async () => {
      const x = await status();
      return x && x.current === '1.0.0' && x.lastCheck?.ok === false ? x : undefined;
    }, STEP_MS, 500);
    assert.match(s.source, /^github /, `the source it follows: ${s.source}`);
    assert.match(c.output(), /installing the bundled release version=1\.0\.0 current=none/);
    assert.equal(fs.readFileSync(path.join(root, 'version'), 'utf8'), '1.0.0\n', '/version names the bundled release in use');

    process.kill(c.pid1, 'SIGTERM');
    const killer = setTimeout(() => process.kill(c!.pid1, 'SIGKILL'), 10_000);
    const r = await c.exited;
    clearTimeout(killer);
    assert.deepEqual(r, { code: 0, signal: null }, `molt exited by itself with 0\n${tail()}`);
  });
});
