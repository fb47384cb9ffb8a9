// What the tests run besides Node, installed before they start: `npm test` on a
// fresh Debian machine needs nothing else. As root with apt-get, missing
// packages are installed; otherwise the missing ones are named and the run stops.
import { spawnSync } from 'node:child_process';

/** Debian package -> the command the tests run from it. */
const needs = {
  runit: 'runsv', // Debian's own sv and runsv, against molt's supervise/ files
  'docker-registry': 'docker-registry', // a real OCI registry on loopback
  'util-linux': 'unshare', // PID namespaces, flock, script (a real pty)
  shellcheck: 'shellcheck', // the shipped shell scripts
  chromium: 'chromium', // the status page, headless
  'fonts-dejavu-core': null, // a font for chromium's screenshots
  faketime: 'faketime', // wall-clock jumps under the updater
  minisign: 'minisign', // signs and verifies releases against molt's minisign code
  openssl: 'openssl', // P-256 and Ed25519 keys and signatures for MOLT_TRUST_KEYS
  buildah: 'buildah', // builds docker/Dockerfile for real (vfs storage, chroot isolation)
  iproute2: 'ip', // the loopback of a container run with no network (image-bundled test)
  tini: 'tini', // test/peers: tini's own checks, run against tini too to prove the check
  'dumb-init': 'dumb-init', // test/peers: the same for dumb-init's
};

const run = (cmd, args, opts = {}) => spawnSync(cmd, args, { encoding: 'utf8', ...opts });
const hasCommand = (name) => run('sh', ['-c', `command -v ${name}`]).status === 0;
const hasPackage = (pkg) => run('dpkg-query', ['-W', '-f=${Status}', pkg]).stdout?.includes('install ok installed') ?? false;
const haveDpkg = hasCommand('dpkg-query');

const missing = Object.entries(needs)
  .filter(([pkg, cmd]) => (haveDpkg ? !hasPackage(pkg) : cmd !== null && !hasCommand(cmd)))
  .map(([pkg]) => pkg);

if (missing.length === 0) process.exit(0);

const isRoot = process.getuid?.() === 0;
if (!isRoot || !hasCommand('apt-get')) {
  process.stderr.write(
    `npm test: missing Debian packages ${missing.join(' ')}; install them (as root: apt-get install ${missing.join(' ')}) and run again\n`,
  );
  process.exit(1);
}

process.stderr.write(`npm test: installing ${missing.join(' ')} with apt-get\n`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
for (const args of [['update', '-qq'], ['install', '-y', '-qq', '--no-install-recommends', ...missing]]) {
  const r = run('apt-get', args, { env, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) {
    process.stderr.write(`npm test: apt-get ${args[0]} failed (exit ${r.status}); install ${missing.join(' ')} by hand\n`);
    process.exit(1);
  }
}
// Debian's packages may start their own daemons; the tests start theirs.
for (const daemon of ['docker-registry', 'runsvdir']) run('pkill', ['-x', daemon]);
