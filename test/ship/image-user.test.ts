// Non-root services in the built image: docker/Dockerfile built with buildah on
// a local glibc Node base that has users as Node images do (`node`, uid 1000,
// here also in a `molt` group; nobody), then run as a container (molt init as
// PID 1, chrooted). Inside it: runit's `sv` and `chpst` are on PATH and are
// molt's; a service with a `user` file runs as that user with its groups; a run
// script's `chpst -u nobody` drops to nobody in place; a service whose user does
// not exist says so in one line and stays down while the others run; and with
// MOLT_SOCKET_GROUP=molt a service run as `node` says `molt ready` over the
// socket (in the image's 0700 /run/molt) while `molt rollback` is refused.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot, tmpdir, waitFor } from '../helpers/molt.js';
import { baseRootfs, Buildah, startContainer, type Container } from './buildah.js';

const BASE = `localhost/molt-user-node:${process.versions.node.split('.')[0]}`;
const IMAGE = 'localhost/molt-user-image:latest';

function service(root: string, name: string, run: string, user?: string): void {
  const dir = path.join(root, 'etc/service', name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'run'), `#!/bin/sh\n${run}`, { mode: 0o755 });
  if (user !== undefined) fs.writeFileSync(path.join(dir, 'user'), `${user}\n`);
}

describe('non-root services in the built image', { timeout: 600_000 }, () => {
  let work = '';
  let b: Buildah;
  let container = '';
  let root = '';
  let c: Container | undefined;
  const tail = () => c?.output().slice(-3000) ?? '';
  const pidIn = async (name: string): Promise<number> => {
    const r = await c!.exec(['sv', 'status', name]);
    return Number(/^run: [^:]+: \(pid (\d+)\)/.exec(r.stdout)?.[1] ?? 0);
  };
  /** The Uid and Groups lines of a pid in the container, once it runs `prog` (chpst execs in place). */
  const credsOf = async (name: string, prog: string): Promise<{ uid: string[]; groups: string[] }> => {
    const pid = await waitFor(`${name} running\n${tail()}`, () => pidIn(name), 30_000, 250);
    await waitFor(`${name} exec'd ${prog}\n${tail()}`, async () => (await c!.exec(['cat', `/proc/${pid}/cmdline`])).stdout.startsWith(`${prog}\0`), 30_000, 250);
    const st = (await c!.exec(['cat', `/proc/${pid}/status`])).stdout;
    const field = (f: string) => new RegExp(`^${f}:\\s*(.*)$`, 'm').exec(st)?.[1]?.split(/\s+/).filter(Boolean) ?? [];
    return { uid: field('Uid'), groups: field('Groups') };
  };

  before(async () => {
    work = tmpdir('ship-user');
    b = new Buildah(path.join(work, 'buildah'));
    const rootfs = path.join(work, 'base');
    baseRootfs(rootfs, true);
    // Users as a Node image has them (node is uid 1000), and a group for the socket.
    fs.mkdirSync(path.join(rootfs, 'etc'), { recursive: true });
    fs.mkdirSync(path.join(rootfs, 'home/node'), { recursive: true });
    fs.chownSync(path.join(rootfs, 'home/node'), 1000, 1000);
    fs.writeFileSync(path.join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n');
    fs.writeFileSync(path.join(rootfs, 'etc/group'), 'root:x:0:\nnode:x:1000:\nmolt:x:990:node\nnogroup:x:65534:\n');
    b.imageFrom(rootfs, BASE, { PATH: '/usr/local/bin:/usr/bin:/bin', NODE_EXTRA_CA_CERTS: '/etc/ssl/certs/ca-certificates.crt' });
    const r = b.run(
      ['bud', '--isolation', 'chroot', '--pull=never', '--network', 'host', '--format', 'docker', '--build-arg', `NODE_IMAGE=${BASE}`, '--build-arg', 'VERSION=1.0.0-user', '-f', 'docker/Dockerfile', '-t', IMAGE, repoRoot],
      480_000,
    );
    assert.equal(r.status, 0, (r.stdout + r.stderr).slice(-4000));
    const config = JSON.parse(b.ok(['inspect', '--type', 'image', IMAGE])) as { Docker: { config: { Env: string[] } } };
    container = b.ok(['from', '--pull=never', IMAGE]);
    root = b.ok(['mount', container]);

    // The services of this test instead of the example app (the updater stays, on an empty MOLT_DIR).
    fs.rmSync(path.join(root, 'etc/service/app'), { recursive: true, force: true });
    service(root, 'whoami', 'exec sleep 1000\n', 'node');
    service(root, 'dropped', 'exec chpst -u nobody sleep 1001\n');
    service(root, 'ghost', 'exec sleep 1002\n', 'no-such-user');
    fs.mkdirSync(path.join(root, 'out'));
    fs.chownSync(path.join(root, 'out'), 1000, 1000);
    fs.mkdirSync(path.join(root, 'releases'));
    service(
      root,
      'probe',
      [
        'exec > /out/probe.txt 2>&1',
        'i=0; while [ $i -lt 400 ] && [ ! -e /out/go ]; do i=$((i+1)); sleep 0.05; done',
        'echo "home=$HOME"; id -u',
        'molt ready; echo "ready exit $?"',
        'molt rollback; echo "rollback exit $?"',
        'echo done',
        'exec sleep 1003',
        '',
      ].join('\n'),
      'node',
    );
    const env: Record<string, string> = {};
    for (const kv of config.Docker.config.Env) env[kv.slice(0, kv.indexOf('='))] = kv.slice(kv.indexOf('=') + 1);
    Object.assign(env, { MOLT_DIR: '/releases', MOLT_INTERVAL: '1h', MOLT_SOCKET_GROUP: 'molt' });
    c = await startContainer(root, env, ['molt', 'init']);
  });

  after(async () => {
    await c?.kill();
    if (container) b.run(['umount', container]);
    b?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('sv is molt sv on PATH: status, and -w 10 up, inside the container', async () => {
    await waitFor(`updater running\n${tail()}`, async () => (await pidIn('updater')) > 0, 30_000, 250);
    const st = await c!.exec(['sv', 'status', 'updater']);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, /^run: updater: \(pid \d+\) \d+s$/m);
    const up = await c!.exec(['sv', '-w', '10', 'start', 'updater']);
    assert.equal(up.code, 0, up.stdout + up.stderr);
    assert.match(up.stdout, /^ok: run: updater: \(pid \d+\) \d+s$/m);
    assert.equal((await c!.exec(['sh', '-c', 'readlink -f "$(command -v sv)"; readlink -f "$(command -v chpst)"'])).stdout, '/usr/local/bin/sv\n/usr/local/bin/chpst\n');
  });

  test('a service with a user file runs as that user, with its supplementary group', async () => {
    const { uid, groups } = await credsOf('whoami', 'sleep');
    assert.deepEqual(uid, ['1000', '1000', '1000', '1000']);
    assert.deepEqual(groups.sort(), ['1000', '990']);
  });

  test('a run script\'s chpst -u nobody drops privileges in place', async () => {
    const { uid } = await credsOf('dropped', 'sleep');
    assert.deepEqual(uid, ['65534', '65534', '65534', '65534']);
  });

  test('a service whose user does not exist: one line, down, the others run', async () => {
    await waitFor(`the line\n${tail()}`, () => /no-such-user/.test(c!.output()), 30_000, 250);
    const said = c!.output().split('\n').filter((l) => /no-such-user/.test(l));
    assert.deepEqual(said, ['molt: supervise: service not started service=ghost error="user no-such-user: unknown user/group: no-such-user"']);
    assert.match((await c!.exec(['sv', 'status', 'ghost'])).stdout, /^down: ghost: /);
    assert.ok((await pidIn('whoami')) > 0);
  });

  test('MOLT_SOCKET_GROUP: the node service says ready over the socket; rollback stays with root', async () => {
    await waitFor(`molt status answering\n${tail()}`, async () => (await c!.exec(['molt', 'status'])).code === 0, 60_000, 500);
    fs.writeFileSync(path.join(root, 'out/go'), '');
    const out = await waitFor(`the probe done\n${tail()}`, () => {
      try {
        const t = fs.readFileSync(path.join(root, 'out/probe.txt'), 'utf8');
        return /^done$/m.test(t) && t;
      } catch {
        return false;
      }
    }, 60_000, 250);
    assert.match(out, /^home=\/home\/node\n1000\n/, out);
    assert.match(out, /^ready exit 0$/m, out);
    assert.match(out, /rollback is for root or the admin token; uid 1000/, out);
    assert.match(out, /^rollback exit 1$/m, out);
    const sock = fs.statSync(path.join(root, 'run/molt/molt.sock'));
    assert.equal(sock.mode & 0o777, 0o660);
    assert.equal(sock.gid, 990);
    const dir = fs.statSync(path.join(root, 'run/molt'));
    assert.equal(dir.mode & 0o777, 0o710, 'the image\'s 0700 /run/molt, opened to the group for search only');
    assert.equal(dir.gid, 990);
  });
});
