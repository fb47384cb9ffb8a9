// docker/Dockerfile built for real by an OCI builder (Debian's buildah: vfs
// storage in a temp directory, chroot isolation) on a glibc Node base image
// made here from this machine's node, so no network is used but the npm
// registry the Dockerfile's `npm ci` needs. Then the built image runs as a
// container: its ENTRYPOINT, `molt init`, as PID 1 of a PID and mount namespace
// chrooted into the image's root (proc and dev mounted), with the image's ENV;
// the updater follows MOLT_DIR, a release directory inside that root, and the
// example app (examples/hello/pack.sh) is installed at 1.0.0 and updated to 1.1.0.
// A base without node, or with too old a node, stops the build with one line. (Under chroot isolation
// buildah's RUN always shares the host's network: it refuses any other.)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { childrenOf, repoRoot, tmpdir, waitFor } from '../helpers/molt.js';
import { freePort } from '../helpers/registry.js';
import type { UpdaterStatus } from '../../src/api/types.js';
import { baseRootfs, Buildah, execIn, nodeBaseImage } from './buildah.js';
import { LIB } from './layout.js';

const BASE = `localhost/molt-test-node:${process.versions.node.split('.')[0]}`;
const IMAGE = 'localhost/molt-test-image:latest';
const STEP_MS = 60_000;
const engines = (JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;

function appVersion(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => {
        try {
          resolve((JSON.parse(body) as { version?: string }).version);
        } catch {
          resolve(undefined);
        }
      });
    });
    req.on('error', () => resolve(undefined));
    req.on('timeout', () => req.destroy());
  });
}

describe('docker/Dockerfile built with buildah and run as a container', { timeout: 600_000 }, () => {
  let work: string;
  let b: Buildah;
  let root = '';
  let container = '';
  let imageEnv: string[] = [];
  let proc: ChildProcess | undefined;
  let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  let pid1 = 0;
  let output = '';
  let helloPort = 0;
  const tail = () => output.slice(-3000);

  before(() => {
    work = tmpdir('ship-buildah');
    b = new Buildah(path.join(work, 'buildah'));
    nodeBaseImage(b, work, BASE);
  });

  after(async () => {
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      // Killing PID 1 of the namespace makes the kernel kill everything in it.
      for (const pid of pid1 ? [pid1] : []) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      proc.kill('SIGKILL');
      await exited;
    }
    if (container) b.run(['umount', container]);
    b?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('builds on a local glibc Node base with no registry pull; koffi\'s glibc binary is kept and loads', (t) => {
    const started = Date.now();
    const r = b.run(
      ['bud', '--isolation', 'chroot', '--pull=never', '--network', 'host', '--format', 'docker', '--build-arg', `NODE_IMAGE=${BASE}`, '--build-arg', 'VERSION=1.0.0-image', '-f', 'docker/Dockerfile', '-t', IMAGE, repoRoot],
      480_000,
    );
    const took = Date.now() - started;
    const log = r.stdout + r.stderr;
    assert.equal(r.status, 0, log.slice(-4000));
    assert.doesNotMatch(log, /Trying to pull|Resolving "/, 'the base came from local storage, never a registry');
    // The runtime stage's smoke test ran the bundle with koffi in the built image.
    assert.match(log, /^molt 1\.0\.0-image$/m, 'molt version in the runtime stage');
    assert.match(log, /molt: init: exit code=0/, 'molt init -- true in the runtime stage');
    assert.match(log, new RegExp(`/out/node_modules/@koromix/koffi-linux-${process.arch}/linux_${process.arch}/koffi\\.node`), 'the glibc binary was picked');
    const config = JSON.parse(b.ok(['inspect', '--type', 'image', IMAGE])) as { Docker: { config: { Entrypoint: string[]; Env: string[] } } };
    assert.deepEqual(config.Docker.config.Entrypoint, ['molt', 'init']);
    imageEnv = config.Docker.config.Env;
    assert.ok(imageEnv.includes('MOLT_HOME=/var/lib/molt'), imageEnv.join(' '));
    const added = b.size(IMAGE) - b.size(BASE);
    t.diagnostic(`buildah bud took ${(took / 1000).toFixed(1)} s; the image adds ${(added / 1e6).toFixed(2)} MB to its base (${(b.size(BASE) / 1e6).toFixed(1)} MB)`);
  });

  test('the built image holds one koffi binary, for glibc, and the wrapper on PATH', () => {
    assert.ok(imageEnv.length > 0, 'the image was built');
    container = b.ok(['from', '--pull=never', IMAGE]);
    root = b.ok(['mount', container]);
    const dir = path.join(root, LIB, `node_modules/@koromix/koffi-linux-${process.arch}`);
    assert.deepEqual(fs.readdirSync(dir).filter((e) => fs.statSync(path.join(dir, e)).isDirectory()), [`linux_${process.arch}`]);
    assert.ok(fs.statSync(path.join(root, 'usr/local/bin/molt')).mode & 0o111);
    assert.equal(fs.readFileSync(path.join(root, 'version'), 'utf8'), '1.0.0-image\n');
  });

  test('as a container: molt init is PID 1, installs the app from MOLT_DIR and updates it', async () => {
    assert.ok(root, 'the image is mounted');
    helloPort = await freePort();
    const releases = path.join(root, 'releases');
    const publish = (version: string) => {
      const r = spawnSync(path.join(repoRoot, 'examples/hello/pack.sh'), [version, releases], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 0, r.stderr);
    };
    publish('1.0.0');
    for (const d of ['proc', 'dev']) fs.mkdirSync(path.join(root, d), { recursive: true });
    const env: Record<string, string> = {};
    for (const kv of imageEnv) env[kv.slice(0, kv.indexOf('='))] = kv.slice(kv.indexOf('=') + 1);
    Object.assign(env, { MOLT_DIR: '/releases', MOLT_INTERVAL: '1s', MOLT_TRIAL: '3s', HELLO_PORT: String(helloPort) });
    // PID 1 of the namespace mounts proc and dev into the root, then becomes the ENTRYPOINT.
    const script = 'mount -t proc proc "$1/proc" && mount --rbind /dev "$1/dev" && exec /usr/sbin/chroot "$1" molt init';
    proc = spawn('/usr/bin/unshare', ['--pid', '--fork', '--mount', '--propagation', 'private', '/bin/sh', '-c', script, 'sh', root], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => (output += d));
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
    exited = new Promise((resolve) => proc!.once('exit', (code, signal) => resolve({ code, signal })));
    pid1 = await waitFor(`PID 1 of the namespace\n${tail()}`, () => childrenOf(proc!.pid!)[0], 10_000);
    await waitFor(`PID 1 running the bundle\n${tail()}`, () => {
      try {
        return /molt\.mjs\0init\0$/.test(fs.readFileSync(`/proc/${pid1}/cmdline`, 'utf8'));
      } catch {
        return false;
      }
    }, 10_000);
    assert.equal(fs.readlinkSync(`/proc/${pid1}/root`), root, 'PID 1 is chrooted into the image');

    const status = async (): Promise<UpdaterStatus | undefined> => {
      const r = await execIn(pid1, ['molt', 'status', '--json']);
      try {
        return r.code === 0 ? (JSON.parse(r.stdout) as UpdaterStatus) : undefined;
      } catch {
        return undefined;
      }
    };
    const settledOn = async (version: string) => {
      await waitFor(`the app answering ${version}\n${tail()}`, async () => (await appVersion(helloPort)) === version, STEP_MS, 250);
      return waitFor(`molt status: current ${version}, idle\n${tail()}`, async () => {
        const s = await status();
        return s && s.current === version && s.phase === 'idle' && !s.trial ? s : undefined;
      }, STEP_MS, 500);
    };

    await settledOn('1.0.0');
    assert.match(output, /molt: init: starting pid=1 /, 'molt knows it is PID 1');
    // tini's sigconf through the image's own `molt` command (docker/molt, run by the image's
    // sh): INT and USR1, ignored by the shell that starts it, are still ignored in CMD,
    // though Node resets them for molt itself.
    const sigconf = await execIn(pid1, ['/bin/sh', '-c', "trap '' INT USR1; MOLT_SERVICES=$(mktemp -d); export MOLT_SERVICES; exec molt init -- cat /proc/self/status"]);
    assert.equal(sigconf.code, 0, sigconf.stderr);
    assert.match(sigconf.stdout, /^SigIgn:\s+0*202$/m, `CMD has INT (2) and USR1 (10) ignored, nothing else\n${sigconf.stdout}`);
    assert.equal(fs.readFileSync(path.join(root, 'version'), 'utf8'), '1.0.0\n', '/version names the release in use');
    publish('1.1.0');
    const s = await settledOn('1.1.0');
    assert.equal(s.previous, '1.0.0');

    process.kill(pid1, 'SIGTERM');
    const killer = setTimeout(() => process.kill(pid1, 'SIGKILL'), 10_000);
    const r = await exited;
    clearTimeout(killer);
    assert.deepEqual(r, { code: 0, signal: null }, `molt exited by itself with 0\n${tail()}`);
    assert.match(output, /molt: init: exit code=0/);
  });

  test('a base without node, or with a node older than engines: the build stops at once with one line saying so', () => {
    const rootfs = path.join(work, 'base-no-node');
    baseRootfs(rootfs, false);
    b.imageFrom(rootfs, 'localhost/molt-test-no-node:latest', { PATH: '/usr/local/bin:/usr/bin:/bin' });
    // The same base with a `node` that is Node 18 as far as `node --version` tells.
    fs.mkdirSync(path.join(rootfs, 'usr/local/bin'), { recursive: true });
    fs.writeFileSync(path.join(rootfs, 'usr/local/bin/node'), '#!/bin/sh\necho v18.20.4\n', { mode: 0o755 });
    b.imageFrom(rootfs, 'localhost/molt-test-node-18:latest', { PATH: '/usr/local/bin:/usr/bin:/bin' });
    const cases = [
      ['localhost/molt-test-no-node:latest', `molt: the base image has no node on PATH: NODE_IMAGE must be a Node image with node ${engines} (e.g. node:24-alpine)`],
      ['localhost/molt-test-node-18:latest', `molt: the base image's node is v18.20.4, molt needs node ${engines} (package.json engines): use a newer NODE_IMAGE (e.g. node:24-alpine)`],
    ];
    for (const [base, line] of cases) {
      const r = b.run(['bud', '--isolation', 'chroot', '--pull=never', '--network', 'host', '--build-arg', `NODE_IMAGE=${base}`, '-f', 'docker/Dockerfile', '-t', 'localhost/molt-test-bad', repoRoot], 120_000);
      const log = r.stdout + r.stderr;
      assert.notEqual(r.status, 0, `${base}: the build failed`);
      const ours = log.split('\n').filter((l) => l.startsWith('molt: '));
      assert.deepEqual(ours, [line], log.slice(-3000));
      assert.doesNotMatch(log, /STEP \d+\/\d+: RUN npm ci/, `${base}: it stopped before npm ci`);
    }
  });
});
