// Services run as other users: the `user` file (run as that user with its groups
// and HOME; an unknown user held down with one line while the others run), molt
// chpst checked against runit's own chpst, and a non-root service using the
// updater's socket through MOLT_SOCKET_GROUP (app calls yes, admin calls no; and
// without the group, no access at all). Uses nobody (65534) and Debian's users
// group (100), present on this machine, so /etc is not touched.
// molt runs as a subreaper (no PID namespace) so that pids are the host's.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { cli, repoRoot, run, runitSv, script, startMolt, stopAndWait, svStatus, tmpdir, waitFor, type Running } from '../helpers/molt.js';

const pidOf = (status: string) => Number(/\(pid (\d+)\)/.exec(status)?.[1] ?? 0);
const procField = (pid: number, field: string) => new RegExp(`^${field}:\\s*(.*)$`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]?.split(/\s+/).filter(Boolean);
const environ = (pid: number) => fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
const lines = (text: string, re: RegExp) => text.split('\n').filter((l) => re.test(l));

/** A directory others can read (tmpdir() is 0700: nobody could not reach its services). */
function openDir(label: string): string {
  const d = tmpdir(label);
  fs.chmodSync(d, 0o755);
  return d;
}

describe('the user file', () => {
  let services: string;
  let m: Running;
  const dir = (name: string) => path.join(services, name);

  before(async () => {
    services = openDir('user');
    for (const name of ['plain', 'grouped', 'ghost', 'asroot']) script(path.join(services, name, 'run'), 'exec sleep 1000\n');
    fs.writeFileSync(path.join(services, 'plain', 'user'), 'nobody\n');
    // Two groups: started through molt chpst, which sets them and execs run in place.
    fs.writeFileSync(path.join(services, 'grouped', 'user'), 'nobody:nogroup:users\n');
    fs.writeFileSync(path.join(services, 'ghost', 'user'), 'molt-no-such-user\n');
    m = startMolt(['init'], { env: { MOLT_SERVICES: services, MOLT_STOP_TIMEOUT: '3s' }, pidns: false });
    for (const name of ['plain', 'grouped', 'asroot']) await waitFor(`${name} up`, () => svStatus(dir(name)).startsWith('run:'), 10_000);
  });
  after(async () => {
    await stopAndWait(m);
  });

  test('run runs as the user, with its group, HOME and USER', () => {
    const pid = pidOf(svStatus(dir('plain')));
    assert.deepEqual(procField(pid, 'Uid'), ['65534', '65534', '65534', '65534']);
    assert.deepEqual(procField(pid, 'Gid'), ['65534', '65534', '65534', '65534']);
    // root's own groups are gone.
    assert.ok(!procField(pid, 'Groups')!.includes('0'));
    assert.ok(environ(pid).includes('HOME=/nonexistent'));
    assert.ok(environ(pid).includes('USER=nobody'));
    assert.equal(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'), 'sleep\u00001000\u0000');
  });

  test('listed groups become the supplementary groups, and the supervised pid is the program itself', async () => {
    const pid = pidOf(svStatus(dir('grouped')));
    // molt chpst (node) runs under this pid until it execs sleep.
    await waitFor('chpst to exec sleep', () => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sleep'), 10_000);
    assert.deepEqual(procField(pid, 'Uid'), ['65534', '65534', '65534', '65534']);
    assert.deepEqual(procField(pid, 'Groups')!.sort(), ['100', '65534']);
    // molt chpst exec'd sleep in place: the pid molt supervises is sleep's.
    assert.equal(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'), 'sleep\u00001000\u0000');
  });

  test('an unknown user: one line, the service down and failed, the others run', async () => {
    await waitFor('the line', () => /molt-no-such-user/.test(m.err() + m.out()), 5000);
    assert.match(svStatus(dir('ghost')), /^down: /);
    assert.equal(lines(m.err() + m.out(), /ghost/).filter((l) => !/service added/.test(l)).length, 1, m.err());
    assert.match(m.err() + m.out(), /service not started service=ghost error="user molt-no-such-user: unknown user\/group: molt-no-such-user"/);
    const health = JSON.parse(fs.readFileSync(path.join(dir('ghost'), 'supervise', 'health'), 'utf8')) as { failed: boolean };
    assert.equal(health.failed, true);
    const root = pidOf(svStatus(dir('asroot')));
    assert.deepEqual(procField(root, 'Uid'), ['0', '0', '0', '0']);
  });

  test('sv up retries the user: once it exists (here: a uid with its group), the service starts', async () => {
    fs.writeFileSync(path.join(dir('ghost'), 'user'), '4242:100\n');
    const r = run(runitSv, ['-w', '5', 'up', dir('ghost')]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const pid = pidOf(svStatus(dir('ghost')));
    assert.deepEqual(procField(pid, 'Uid'), ['4242', '4242', '4242', '4242']);
    assert.deepEqual(procField(pid, 'Gid'), ['100', '100', '100', '100']);
    assert.ok(environ(pid).includes('HOME=/'));
  });
});

describe('molt chpst against runit chpst', () => {
  const both = (args: string[]) => [run('/usr/bin/chpst', args), run(process.execPath, [cli, 'chpst', ...args])] as const;

  test('the same identity, groups and exit codes for what run scripts type', () => {
    for (const args of [['-u', 'nobody', 'id'], ['-u', 'nobody:nogroup:users', 'id'], ['-u', ':65534:100', 'id'], ['-U', 'nobody:users', 'sh', '-c', 'echo $UID $GID'], ['-n', '3', 'nice']]) {
      const [runit, molt] = both(args);
      assert.equal(molt.status, runit.status, args.join(' '));
      assert.equal(molt.stdout, runit.stdout, args.join(' '));
    }
    for (const args of [['-u', 'molt-no-such-user', 'id'], ['-u', 'nobody', '/nonexistent/prog'], ['-x', 'id']]) {
      const [runit, molt] = both(args);
      assert.equal(molt.status, runit.status, args.join(' '));
      assert.equal(molt.stderr.split('\n')[0], runit.stderr.split('\n')[0], args.join(' '));
    }
    // No program: usage (molt's lists only the options it has), exit 100 as runit's.
    assert.equal(both([])[1].status, 100);
  });

  test('the program replaces chpst: same pid, stdio usable, SIGPIPE not ignored, nothing blocked', () => {
    // grep reads its own status (a shell would show its own blocking around fork and wait).
    const r = run(process.execPath, [cli, 'chpst', '-u', 'nobody', 'grep', '-E', '^Sig(Ign|Blk)', '/proc/self/status']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /SigIgn:\s*0000000000000000/);
    assert.match(r.stdout, /SigBlk:\s*0000000000000000/);
    const e = run(process.execPath, [cli, 'chpst', '-u', 'nobody', '/bin/sh', '-c', 'echo out; echo err >&2']);
    assert.deepEqual([e.status, e.stdout, e.stderr], [0, 'out\n', 'err\n']);
    // sh's $$ is chpst's pid: its parent is the node that ran `run` (spawnSync's child was chpst itself).
    const viaWrapper = run('/bin/sh', ['-c', `echo wrapper=$$; exec "${process.execPath}" "${cli}" chpst -u nobody /bin/sh -c 'echo prog=$$'`]);
    const w = /wrapper=(\d+)/.exec(viaWrapper.stdout)?.[1];
    const p = /prog=(\d+)/.exec(viaWrapper.stdout)?.[1];
    assert.ok(w && w === p, viaWrapper.stdout + viaWrapper.stderr);
  });

  test('an option molt leaves out: one line naming it, exit 100', () => {
    const r = run(process.execPath, [cli, 'chpst', '-m', '1000000', 'true']);
    assert.equal(r.status, 100);
    assert.match(r.stderr, /^chpst: option -m is not supported by molt chpst/);
  });
});

/** molt init with the updater and a `probe` service run as nobody:nogroup:users that talks to the socket. */
async function socketStack(group: string | undefined): Promise<{ m: Running; socket: string; out: string; services: string }> {
  const root = openDir('sockgrp');
  const services = path.join(root, 'services');
  const bin = path.join(root, 'bin');
  const out = path.join(root, 'out');
  fs.mkdirSync(out);
  fs.chownSync(out, 65534, 65534);
  fs.mkdirSync(path.join(root, 'releases'));
  fs.writeFileSync(path.join(root, 'molt'), `#!/bin/sh\nexec "${process.execPath}" "${cli}" "$@"\n`, { mode: 0o755 });
  fs.mkdirSync(bin);
  fs.renameSync(path.join(root, 'molt'), path.join(bin, 'molt'));
  fs.mkdirSync(path.join(services, 'updater'), { recursive: true });
  fs.copyFileSync(path.join(repoRoot, 'services/updater/run'), path.join(services, 'updater/run'));
  fs.chmodSync(path.join(services, 'updater/run'), 0o755);
  // The socket's directory as the image has it: root's, 0700; MOLT_SOCKET_GROUP opens it to the group.
  const sockDir = path.join(root, 'run');
  fs.mkdirSync(sockDir, { mode: 0o700 });
  const socket = path.join(sockDir, 'molt.sock');
  script(
    path.join(services, 'probe', 'run'),
    [
      `exec > ${out}/probe.txt 2>&1`,
      // The test says go once the updater listens (bounded wait).
      `i=0; while [ $i -lt 400 ] && [ ! -e ${out}/go ]; do i=$((i+1)); sleep 0.05; done`,
      'id -u; id -G',
      'molt ready; echo "ready exit $?"',
      'molt check; echo "check exit $?"',
      'molt rollback; echo "rollback exit $?"',
      'molt unblock 1.0.0; echo "unblock exit $?"',
      'echo done',
      'exec sleep 1000',
      '',
    ].join('\n'),
  );
  fs.writeFileSync(path.join(services, 'probe', 'user'), 'nobody:nogroup:users\n');
  const env: NodeJS.ProcessEnv = {
    PATH: `${bin}:${path.dirname(process.execPath)}:${process.env.PATH}`,
    MOLT_SERVICES: services,
    MOLT_HOME: path.join(root, 'home'),
    MOLT_DIR: path.join(root, 'releases'),
    MOLT_INTERVAL: '1h',
    MOLT_SOCKET: socket,
    MOLT_STOP_TIMEOUT: '3s',
    MOLT_ADMIN_TOKEN: '',
    ...(group ? { MOLT_SOCKET_GROUP: group } : {}),
  };
  const m = startMolt(['init'], { env, pidns: false });
  await waitFor('the updater listening', () => run(process.execPath, [cli, 'status'], { ...process.env, MOLT_SOCKET: socket }).status === 0, 15_000, 200);
  fs.writeFileSync(`${out}/go`, '');
  await waitFor('the probe done', () => fs.existsSync(`${out}/probe.txt`) && /^done$/m.test(fs.readFileSync(`${out}/probe.txt`, 'utf8')), 20_000, 100);
  return { m, socket, out: fs.readFileSync(`${out}/probe.txt`, 'utf8'), services };
}

describe('MOLT_SOCKET_GROUP: a non-root service and the updater socket', () => {
  test('a member says ready and check; rollback and unblock are refused; the socket is 0660 root:users', async () => {
    const s = await socketStack('users');
    try {
      assert.match(s.out, /^65534\n/);
      assert.match(s.out, /^ready exit 0$/m, s.out);
      assert.match(s.out, /^check exit 0$/m, s.out);
      assert.match(s.out, /rollback is for root or the admin token; uid 65534/, s.out);
      assert.match(s.out, /^rollback exit 1$/m, s.out);
      assert.match(s.out, /unblock is for root or the admin token; uid 65534/, s.out);
      assert.match(s.out, /^unblock exit 1$/m, s.out);
      const st = fs.statSync(s.socket);
      assert.equal(st.mode & 0o777, 0o660);
      assert.equal(st.gid, 100);
      const dir = fs.statSync(path.dirname(s.socket));
      assert.equal(dir.mode & 0o777, 0o710);
      assert.equal(dir.gid, 100);
      // root keeps the admin calls: unblock reaches the updater (404: nothing blocked), not a 403.
      const r = run(process.execPath, [cli, 'unblock', '1.0.0'], { ...process.env, MOLT_SOCKET: s.socket });
      assert.doesNotMatch(r.stderr, /is for root/);
      assert.match(r.stderr, /not blocked/);
    } finally {
      await stopAndWait(s.m);
    }
  });

  test('without MOLT_SOCKET_GROUP the same service cannot use the socket at all', async () => {
    const s = await socketStack(undefined);
    try {
      assert.match(s.out, /^ready exit 1$/m, s.out);
      assert.match(s.out, /^check exit 1$/m, s.out);
      assert.equal(s.out.match(/^molt: permission denied on .*molt\.sock \(run as root, or as a member of the updater's MOLT_SOCKET_GROUP\)$/gm)?.length, 4, s.out);
      assert.equal(fs.statSync(s.socket).mode & 0o777, 0o600);
    } finally {
      await stopAndWait(s.m);
    }
  });
});
