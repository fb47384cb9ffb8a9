// `npm ci && npm test` on a fresh Debian machine must need nothing else: the test
// command itself installs (as root) or names (otherwise) the Debian packages the
// tests run. Once only .ci/run installed them, and a new user's first run failed.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { repoRoot, tmpdir } from '../helpers/molt.js';

const script = path.join(repoRoot, 'scripts/test-deps.mjs');

/** Run test-deps as nobody, with a dpkg-query that knows only `installed`. */
function runAsNobody(installed: string[]): { status: number | null; stderr: string } {
  const bin = tmpdir('testdeps');
  fs.chmodSync(bin, 0o755);
  const known = installed.map((p) => `"${p}"`).join(' ');
  fs.writeFileSync(
    path.join(bin, 'dpkg-query'),
    `#!/bin/sh\npkg="$3"\nfor k in ${known}; do [ "$k" = "$pkg" ] && { printf 'install ok installed'; exit 0; }; done\nexit 1\n`,
    { mode: 0o755 },
  );
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, script], {
    encoding: 'utf8',
    env: { PATH: `${bin}:/usr/bin:/bin` },
    timeout: 20_000,
  });
  return { status: r.status, stderr: r.stderr };
}

describe('npm test installs or names what the tests need', () => {
  test('the test script runs scripts/test-deps.mjs before anything else; .ci/run adds no install of its own', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    assert.match(pkg.scripts.test!, /^node scripts\/test-deps\.mjs && /);
    const ciRun = fs.readFileSync(path.join(repoRoot, '.ci/run'), 'utf8');
    assert.doesNotMatch(ciRun, /apt-get|dpkg/);
  });

  test('without root, every missing package is named in one line and the run stops', () => {
    const r = runAsNobody(['util-linux']);
    assert.equal(r.status, 1);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    for (const pkg of ['runit', 'docker-registry', 'shellcheck', 'chromium', 'faketime', 'minisign', 'openssl', 'buildah', 'iproute2', 'tini', 'dumb-init']) assert.match(lines[0]!, new RegExp(`\\b${pkg}\\b`));
    assert.doesNotMatch(lines[0]!, /util-linux/);
  });

  test('with every package present it says nothing and lets the tests run', () => {
    const r = runAsNobody(['runit', 'docker-registry', 'util-linux', 'shellcheck', 'chromium', 'fonts-dejavu-core', 'faketime', 'minisign', 'openssl', 'buildah', 'iproute2', 'tini', 'dumb-init']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
  });

  test('what the tests run is really there after it (this run went through it)', () => {
    for (const cmd of ['runsv', 'sv', 'docker-registry', 'faketime', 'chromium', 'shellcheck', 'unshare', 'minisign', 'openssl', 'buildah', 'nsenter', 'ip', 'tini', 'dumb-init']) {
      assert.equal(spawnSync('sh', ['-c', `command -v ${cmd}`]).status, 0, `${cmd} missing`);
    }
  });
});
