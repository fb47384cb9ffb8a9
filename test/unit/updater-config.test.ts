import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, configReference, readUpdaterConfig, type UpdaterConfig } from '../../src/update/config.js';

const noFile = (): string | undefined => undefined;
const DIR = { MOLT_DIR: '/srv/releases' };

/** Read with no YAML file at all (the default /etc/molt/molt.yaml of this machine must not leak in). */
function read(env: NodeJS.ProcessEnv, file?: string): UpdaterConfig {
  return readUpdaterConfig(env, file === undefined ? noFile : () => file);
}

/** The one-line ConfigError message for env (and optional file text). */
function refusal(env: NodeJS.ProcessEnv, file?: string): string {
  try {
    read(env, file);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.doesNotMatch(err.message, /\n/, 'one line');
    return err.message;
  }
  assert.fail(`accepted ${JSON.stringify(env)}`);
}

describe('defaults', () => {
  test('every default follows DESIGN.md', () => {
    const c = read(DIR);
    assert.deepEqual(c, {
      source: { kind: 'dir', dir: '/srv/releases', requireChecksum: false },
      policy: 'latest',
      prerelease: false,
      intervalMs: 300_000,
      staleAfterMs: 24 * 3600_000,
      schedule: undefined,
      delayMs: 0,
      jitterMs: 0,
      rolloutMs: 0,
      home: '/var/lib/molt',
      keep: 3,
      app: 'app',
      appDir: undefined,
      versionFile: '/version',
      bundled: undefined,
      trialMs: 30_000,
      ready: 'auto',
      crashLimit: 2,
      handover: 'restart',
      socket: '/run/molt/molt.sock',
      socketGroup: undefined,
      servicesDir: '/etc/service',
      stopTimeoutMs: 7000,
      adminAddr: undefined,
      adminToken: undefined,
      webhookSecret: undefined,
      notifyUrl: undefined,
      logLevel: 'info',
    });
  });

  test('an empty variable counts as unset', () => {
    const c = read({ ...DIR, MOLT_POLICY: '', MOLT_INTERVAL: '  ', MOLT_GITHUB: '' });
    assert.equal(c.policy, 'latest');
    assert.equal(c.intervalMs, 300_000);
    assert.equal(c.source.kind, 'dir');
  });
});

describe('sources', () => {
  test('MOLT_GITHUB with token, Enterprise API, asset glob and required checksums', () => {
    const c = read({
      MOLT_GITHUB: 'octo-org/hello.world',
      GITHUB_TOKEN: 'ghp_abcdef0123456789',
      MOLT_GITHUB_API: 'https://ghe.example.com/api/v3/',
      MOLT_ASSET: 'hello_{version}_{os}_{arch}.tar.gz',
      MOLT_REQUIRE_CHECKSUM: '1',
    });
    assert.deepEqual(c.source, {
      kind: 'github',
      repo: 'octo-org/hello.world',
      token: 'ghp_abcdef0123456789',
      apiUrl: 'https://ghe.example.com/api/v3',
      asset: 'hello_{version}_{os}_{arch}.tar.gz',
      requireChecksum: true,
    });
  });

  test('the seed\'s GH_USER + GH_REPO name the GitHub repository', () => {
    assert.deepEqual(read({ GH_USER: 'arno01', GH_REPO: 'self-update' }).source, { kind: 'github', repo: 'arno01/self-update', token: undefined, apiUrl: undefined, asset: undefined, requireChecksum: false });
  });

  test('MOLT_GITHUB wins over GH_USER + GH_REPO (an image may bake in the seed names)', () => {
    const s = read({ MOLT_GITHUB: 'new/repo', GH_USER: 'old', GH_REPO: 'repo' }).source;
    assert.equal(s.kind === 'github' && s.repo, 'new/repo');
  });

  test('half of the seed pair is refused', () => {
    assert.match(refusal({ GH_USER: 'arno01' }), /^GH_USER is set but GH_REPO is not/);
    assert.match(refusal({ GH_REPO: 'self-update' }), /^GH_REPO is set but GH_USER is not/);
  });

  test('MOLT_OCI with a tag, credentials and insecure', () => {
    const c = read({ MOLT_OCI: 'registry.example.com:5000/team/app:stable', MOLT_OCI_USER: 'bot', MOLT_OCI_PASSWORD: 's3cret', MOLT_OCI_INSECURE: '1' });
    assert.deepEqual(c.source, { kind: 'oci', ref: 'registry.example.com:5000/team/app:stable', user: 'bot', password: 's3cret', insecure: true, requireChecksum: false });
  });

  test('MOLT_OCI without a tag follows semver tags', () => {
    const s = read({ MOLT_OCI: 'ghcr.io/owner/app' }).source;
    assert.deepEqual(s, { kind: 'oci', ref: 'ghcr.io/owner/app', user: undefined, password: undefined, insecure: false, requireChecksum: false });
  });

  test('MOLT_DIR with required checksums', () => {
    assert.deepEqual(read({ MOLT_DIR: '/mnt/releases/', MOLT_REQUIRE_CHECKSUM: 'true' }).source, { kind: 'dir', dir: '/mnt/releases', requireChecksum: true });
  });

  test('no source, or two, is refused', () => {
    assert.match(refusal({}), /^no release source: set one of MOLT_GITHUB \(or GH_USER and GH_REPO\), MOLT_OCI, MOLT_DIR$/);
    assert.match(refusal({ MOLT_GITHUB: 'a/b', MOLT_DIR: '/x' }), /^MOLT_GITHUB and MOLT_DIR are both set; set exactly one release source/);
    assert.match(refusal({ GH_USER: 'a', GH_REPO: 'b', MOLT_OCI: 'localhost:5000/app' }), /^GH_USER\/GH_REPO and MOLT_OCI are both set/);
    assert.match(refusal({ MOLT_GITHUB: 'a/b', MOLT_OCI: 'localhost:5000/app', MOLT_DIR: '/x' }), /^MOLT_GITHUB and MOLT_OCI and MOLT_DIR are all set/);
  });
});

describe('each variable', () => {
  test('policy, prerelease and timing', () => {
    const c = read({ ...DIR, MOLT_POLICY: 'Minor', MOLT_PRERELEASE: '1', MOLT_INTERVAL: '30s', MOLT_DELAY: '1h', MOLT_JITTER: '2m', MOLT_ROLLOUT: '6h' });
    assert.equal(c.policy, 'minor');
    assert.equal(c.prerelease, true);
    assert.equal(c.intervalMs, 30_000);
    assert.equal(c.delayMs, 3600_000);
    assert.equal(c.jitterMs, 120_000);
    assert.equal(c.rolloutMs, 6 * 3600_000);
    for (const p of ['latest', 'minor', 'patch', 'manual']) assert.equal(read({ ...DIR, MOLT_POLICY: p }).policy, p);
    assert.equal(read({ ...DIR, MOLT_PRERELEASE: 'no' }).prerelease, false);
  });

  test('MOLT_STALE_AFTER (default a day, or ten long intervals) and MOLT_HTTP_TIMEOUT', () => {
    assert.equal(read({ ...DIR, MOLT_INTERVAL: '6h' }).staleAfterMs, 60 * 3600_000);
    assert.equal(read({ ...DIR, MOLT_STALE_AFTER: '2h' }).staleAfterMs, 2 * 3600_000);
    assert.match(refusal({ ...DIR, MOLT_STALE_AFTER: '10ms' }), /^MOLT_STALE_AFTER="10ms" is too short \(at least 1s\)/);
    assert.equal(read(DIR).httpTimeoutMs, undefined, 'unset: each source keeps its own defaults');
    assert.equal(read({ ...DIR, MOLT_HTTP_TIMEOUT: '5s' }).httpTimeoutMs, 5000);
    assert.match(refusal({ ...DIR, MOLT_HTTP_TIMEOUT: 'soon' }), /^MOLT_HTTP_TIMEOUT="soon" must be a duration/);
  });

  test('MOLT_SCHEDULE is parsed into windows', () => {
    const c = read({ ...DIR, MOLT_SCHEDULE: 'mo-fr 9-17; sa 10-12' });
    assert.equal(c.schedule?.windows.length, 2);
    assert.deepEqual([...c.schedule!.windows[1]!.days], [6]);
    assert.equal(c.schedule!.windows[0]!.from, 540);
  });

  test('store, app and files', () => {
    const c = read({ ...DIR, MOLT_HOME: '/data/molt/', MOLT_KEEP: '5', MOLT_APP: 'web', MOLT_APP_DIR: '/opt/app', MOLT_VERSION_FILE: '/run/version' });
    assert.equal(c.home, '/data/molt');
    assert.equal(c.keep, 5);
    assert.equal(c.app, 'web');
    assert.equal(c.appDir, '/opt/app');
    assert.equal(c.versionFile, '/run/version');
  });

  test('trial', () => {
    const c = read({ ...DIR, MOLT_TRIAL: '2m', MOLT_READY: 'explicit', MOLT_CRASH_LIMIT: '4', MOLT_HANDOVER: 'overlap' });
    assert.equal(c.trialMs, 120_000);
    assert.equal(c.ready, 'explicit');
    assert.equal(c.crashLimit, 4);
    assert.equal(c.handover, 'overlap');
  });

  test('control plane', () => {
    const token = 'x'.repeat(32);
    const c = read({ ...DIR, MOLT_SOCKET: '/tmp/m.sock', MOLT_SERVICES: '/etc/sv', MOLT_STOP_TIMEOUT: '1500ms', MOLT_ADMIN_ADDR: '0.0.0.0:8080', MOLT_ADMIN_TOKEN: token, MOLT_WEBHOOK_SECRET: 'hook', MOLT_NOTIFY_URL: 'https://discord.com/api/webhooks/1/abc', MOLT_LOG_LEVEL: 'warn' });
    assert.equal(c.socket, '/tmp/m.sock');
    assert.equal(c.servicesDir, '/etc/sv');
    assert.equal(c.stopTimeoutMs, 1500);
    assert.equal(c.adminAddr, '0.0.0.0:8080');
    assert.equal(c.adminToken, token);
    assert.equal(c.webhookSecret, 'hook');
    assert.equal(c.notifyUrl, 'https://discord.com/api/webhooks/1/abc');
    assert.equal(c.logLevel, 'warn');
  });

  test('MOLT_SOCKET_GROUP: a group name from /etc/group, or a gid', () => {
    // Debian's base files define users as gid 100.
    assert.equal(read({ ...DIR, MOLT_SOCKET_GROUP: 'users' }).socketGroup, 100);
    assert.equal(read({ ...DIR, MOLT_SOCKET_GROUP: '4242' }).socketGroup, 4242);
    assert.equal(refusal({ ...DIR, MOLT_SOCKET_GROUP: 'molt-no-such-group' }), 'MOLT_SOCKET_GROUP="molt-no-such-group" is not a group in /etc/group nor a gid');
  });

  test('a loopback admin address needs no token', () => {
    for (const a of ['127.0.0.1:8080', 'localhost:9', '[::1]:8080']) assert.equal(read({ ...DIR, MOLT_ADMIN_ADDR: a }).adminAddr, a);
  });
});

describe('seed names', () => {
  test('SLEEP is the interval in seconds; MOLT_INTERVAL wins', () => {
    assert.equal(read({ ...DIR, SLEEP: '65' }).intervalMs, 65_000);
    assert.equal(read({ ...DIR, SLEEP: '300' }).intervalMs, 300_000);
    assert.equal(read({ ...DIR, SLEEP: '65', MOLT_INTERVAL: '10s' }).intervalMs, 10_000);
  });

  test('SVWAIT is the stop timeout in seconds; MOLT_STOP_TIMEOUT wins', () => {
    assert.equal(read({ ...DIR, SVWAIT: '3' }).stopTimeoutMs, 3000);
    assert.equal(read({ ...DIR, SVWAIT: '3', MOLT_STOP_TIMEOUT: '500ms' }).stopTimeoutMs, 500);
  });

  test('SVDIR names the services; MOLT_SERVICES wins', () => {
    assert.equal(read({ ...DIR, SVDIR: '/service' }).servicesDir, '/service');
    assert.equal(read({ ...DIR, SVDIR: '/service', MOLT_SERVICES: '/etc/sv' }).servicesDir, '/etc/sv');
  });

  test('VERBOSE turns on debug; 0 does not; MOLT_LOG_LEVEL wins', () => {
    assert.equal(read({ ...DIR, VERBOSE: '1' }).logLevel, 'debug');
    assert.equal(read({ ...DIR, VERBOSE: 'yes' }).logLevel, 'debug');
    assert.equal(read({ ...DIR, VERBOSE: '0' }).logLevel, 'info');
    assert.equal(read({ ...DIR, VERBOSE: '1', MOLT_LOG_LEVEL: 'error' }).logLevel, 'error');
  });
});

describe('invalid values', () => {
  // [environment, the message must start with]
  const cases: [NodeJS.ProcessEnv, RegExp][] = [
    [{ ...DIR, MOLT_POLICY: 'newest' }, /^MOLT_POLICY="newest" must be one of latest, minor, patch, manual$/],
    [{ ...DIR, MOLT_PRERELEASE: 'maybe' }, /^MOLT_PRERELEASE="maybe" must be 1 or 0/],
    [{ ...DIR, MOLT_INTERVAL: 'soon' }, /^MOLT_INTERVAL="soon" must be a duration such as/],
    [{ ...DIR, MOLT_INTERVAL: '500ms' }, /^MOLT_INTERVAL="500ms" is too short \(at least 1s\)$/],
    [{ ...DIR, MOLT_INTERVAL: '30d' }, /^MOLT_INTERVAL="30d" is too long \(at most 7d\)$/],
    [{ ...DIR, MOLT_INTERVAL: '-5m' }, /^MOLT_INTERVAL="-5m" must be a duration/],
    [{ ...DIR, SLEEP: 'x' }, /^SLEEP="x" must be a number of seconds/],
    [{ ...DIR, SLEEP: '0' }, /^SLEEP="0" is too short \(at least 1s\)$/],
    [{ ...DIR, MOLT_SCHEDULE: 'mo-xx 9-17' }, /^MOLT_SCHEDULE="mo-xx 9-17" is not a schedule: unknown day "xx"/],
    [{ ...DIR, MOLT_SCHEDULE: 'mo 9-25' }, /^MOLT_SCHEDULE="mo 9-25" is not a schedule: bad time "25"/],
    [{ ...DIR, MOLT_DELAY: '1 fortnight' }, /^MOLT_DELAY="1 fortnight" must be a duration/],
    [{ ...DIR, MOLT_JITTER: 'lots' }, /^MOLT_JITTER="lots" must be a duration/],
    [{ ...DIR, MOLT_JITTER: '8d' }, /^MOLT_JITTER="8d" is too long/],
    [{ ...DIR, MOLT_ROLLOUT: '1x' }, /^MOLT_ROLLOUT="1x" must be a duration/],
    [{ ...DIR, MOLT_HOME: 'var/lib/molt' }, /^MOLT_HOME="var\/lib\/molt" must be an absolute path$/],
    [{ ...DIR, MOLT_HOME: '/' }, /^MOLT_HOME="\/" must be an absolute path other than \/$/],
    [{ ...DIR, MOLT_KEEP: '0' }, /^MOLT_KEEP="0" must be an integer >= 1$/],
    [{ ...DIR, MOLT_KEEP: '2.5' }, /^MOLT_KEEP="2.5" must be an integer >= 1$/],
    [{ ...DIR, MOLT_KEEP: 'three' }, /^MOLT_KEEP="three" must be an integer >= 1$/],
    [{ ...DIR, MOLT_APP: 'a/b' }, /^MOLT_APP="a\/b" must be a service name/],
    [{ ...DIR, MOLT_APP: '..' }, /^MOLT_APP="\.\." must be a service name/],
    [{ ...DIR, MOLT_APP: '.hidden' }, /^MOLT_APP="\.hidden" must be a service name/],
    [{ ...DIR, MOLT_APP_DIR: 'app' }, /^MOLT_APP_DIR="app" must be an absolute path$/],
    [{ ...DIR, MOLT_VERSION_FILE: 'version' }, /^MOLT_VERSION_FILE="version" must be an absolute path$/],
    [{ ...DIR, MOLT_TRIAL: 'long' }, /^MOLT_TRIAL="long" must be a duration/],
    [{ ...DIR, MOLT_TRIAL: '0' }, /^MOLT_TRIAL="0" is too short/],
    [{ ...DIR, MOLT_READY: 'yes' }, /^MOLT_READY="yes" must be one of auto, explicit$/],
    [{ ...DIR, MOLT_HANDOVER: 'blue-green' }, /^MOLT_HANDOVER="blue-green" must be one of restart, overlap$/],
    [{ ...DIR, MOLT_CRASH_LIMIT: '0' }, /^MOLT_CRASH_LIMIT="0" must be an integer >= 1$/],
    [{ ...DIR, MOLT_CRASH_LIMIT: '-1' }, /^MOLT_CRASH_LIMIT="-1" must be an integer >= 1$/],
    [{ ...DIR, MOLT_SOCKET: 'molt.sock' }, /^MOLT_SOCKET="molt.sock" must be an absolute path$/],
    [{ ...DIR, MOLT_SOCKET: '/' + 'd'.repeat(120) + '/s' }, /^MOLT_SOCKET=".*" is too long for a Unix socket path \(at most 107 bytes\)$/],
    [{ ...DIR, MOLT_SERVICES: 'service' }, /^MOLT_SERVICES="service" must be an absolute path$/],
    [{ ...DIR, SVDIR: 'service' }, /^SVDIR="service" must be an absolute path$/],
    [{ ...DIR, MOLT_STOP_TIMEOUT: 'forever' }, /^MOLT_STOP_TIMEOUT="forever" must be a duration/],
    [{ ...DIR, SVWAIT: 'x' }, /^SVWAIT="x" must be a number of seconds/],
    // Past 2^31-1 ms Node fires a timer after 1 ms: every duration is bounded by the longest timer.
    [{ ...DIR, MOLT_STOP_TIMEOUT: '25d' }, /^MOLT_STOP_TIMEOUT="25d" is too long \(at most 24d \(2\^31-1 ms/],
    [{ ...DIR, SVWAIT: '2147484' }, /^SVWAIT="2147484" is too long \(at most 24d/],
    [{ ...DIR, MOLT_TRIAL: '25d' }, /^MOLT_TRIAL="25d" is too long \(at most 24d/],
    [{ ...DIR, MOLT_DELAY: '25d' }, /^MOLT_DELAY="25d" is too long \(at most 24d/],
    [{ ...DIR, MOLT_ROLLOUT: '2147483648' }, /^MOLT_ROLLOUT="2147483648" is too long \(at most 24d/],
    [{ ...DIR, MOLT_ADMIN_ADDR: '8080' }, /^MOLT_ADMIN_ADDR="8080" must be host:port/],
    [{ ...DIR, MOLT_ADMIN_ADDR: '127.0.0.1:70000' }, /^MOLT_ADMIN_ADDR="127.0.0.1:70000" must be host:port/],
    [{ ...DIR, MOLT_ADMIN_ADDR: '[nope]:80' }, /^MOLT_ADMIN_ADDR="\[nope\]:80" must be host:port/],
    [{ ...DIR, MOLT_ADMIN_ADDR: '0.0.0.0:8080' }, /^MOLT_ADMIN_ADDR="0.0.0.0:8080" is not a loopback address; set MOLT_ADMIN_TOKEN/],
    [{ ...DIR, MOLT_ADMIN_ADDR: ':8080' }, /^MOLT_ADMIN_ADDR=":8080" is not a loopback address/],
    [{ ...DIR, MOLT_ADMIN_TOKEN: 'short' }, /^MOLT_ADMIN_TOKEN is too short \(at least 16 characters\)$/],
    [{ ...DIR, MOLT_NOTIFY_URL: 'ftp://example.com/x' }, /^MOLT_NOTIFY_URL must be an http\(s\) URL$/],
    [{ ...DIR, MOLT_LOG_LEVEL: 'trace' }, /^MOLT_LOG_LEVEL="trace" must be one of error, warn, info, debug$/],
    [{ ...DIR, MOLT_REQUIRE_CHECKSUM: '2' }, /^MOLT_REQUIRE_CHECKSUM="2" must be 1 or 0/],
    [{ MOLT_DIR: 'releases' }, /^MOLT_DIR="releases" must be an absolute path$/],
    [{ MOLT_GITHUB: 'just-a-name' }, /^MOLT_GITHUB="just-a-name" must be owner\/repo/],
    [{ MOLT_GITHUB: 'a/b/c' }, /^MOLT_GITHUB="a\/b\/c" must be owner\/repo/],
    [{ MOLT_GITHUB: 'a/..' }, /^MOLT_GITHUB="a\/\.\." must be owner\/repo/],
    [{ GH_USER: 'bad user', GH_REPO: 'r' }, /^GH_USER="bad user" must be a GitHub user/],
    [{ GH_USER: 'u', GH_REPO: 'r/x' }, /^GH_REPO="r\/x" must be a repository name/],
    [{ MOLT_GITHUB: 'a/b', MOLT_GITHUB_API: 'not a url' }, /^MOLT_GITHUB_API="not a url" must be an http\(s\) URL/],
    [{ MOLT_GITHUB: 'a/b', MOLT_GITHUB_API: 'ftp://ghe.example.com' }, /^MOLT_GITHUB_API="ftp:\/\/ghe.example.com" must be an http\(s\) URL/],
    [{ MOLT_GITHUB: 'a/b', MOLT_ASSET: 'dist/app.tar.gz' }, /^MOLT_ASSET="dist\/app.tar.gz" must be an asset name glob without "\/"/],
    [{ MOLT_GITHUB: 'a/b', MOLT_ASSET: 'app_{platform}.tgz' }, /^MOLT_ASSET="app_\{platform\}.tgz" has an unknown placeholder \{platform\}/],
    [{ MOLT_OCI: 'app' }, /^MOLT_OCI="app" is not host\[:port\]\/repository\[:tag\]: expected host\[:port\]\/repository$/],
    [{ MOLT_OCI: 'https://ghcr.io/o/app' }, /^MOLT_OCI="https:\/\/ghcr.io\/o\/app" is not host\[:port\]\/repository\[:tag\]/],
    [{ MOLT_OCI: 'ghcr.io/o/App' }, /^MOLT_OCI="ghcr.io\/o\/App" is not host\[:port\]\/repository\[:tag\]: repository 'o\/App'/],
    [{ MOLT_OCI: `localhost:5000/app@sha256:${'a'.repeat(64)}` }, /^MOLT_OCI=".*" pins a digest; give a tag to follow/],
    [{ MOLT_OCI: 'localhost:5000/app', MOLT_OCI_INSECURE: 'sure' }, /^MOLT_OCI_INSECURE="sure" must be 1 or 0/],
    [{ MOLT_OCI: 'localhost:5000/app', MOLT_OCI_USER: 'bot' }, /^MOLT_OCI_USER is set but MOLT_OCI_PASSWORD is not/],
    [{ MOLT_OCI: 'localhost:5000/app', MOLT_OCI_PASSWORD: 'pw' }, /^MOLT_OCI_PASSWORD is set but MOLT_OCI_USER is not/],
  ];

  for (const [env, re] of cases) {
    const name = /^\^([A-Z_]+)/.exec(re.source)![1]!;
    test(`${name}=${JSON.stringify(env[name])} is refused, naming ${name}`, () => {
      assert.match(refusal(env), re);
    });
  }

  test('the longest timer itself (2^31-1 ms) is still accepted', () => {
    const c = read({ ...DIR, MOLT_STOP_TIMEOUT: '2147483647', MOLT_TRIAL: '24d', MOLT_DELAY: '2147483647ms', MOLT_ROLLOUT: '24d' });
    assert.equal(c.stopTimeoutMs, 2 ** 31 - 1);
    assert.equal(c.trialMs, 24 * 86_400_000);
  });

  test('secrets never appear in a message', () => {
    const token = 'ghp_SECRET token';
    const m1 = refusal({ MOLT_GITHUB: 'a/b', GITHUB_TOKEN: token });
    assert.match(m1, /^GITHUB_TOKEN must not contain spaces/);
    assert.ok(!m1.includes('SECRET'), m1);
    const m2 = refusal({ ...DIR, MOLT_NOTIFY_URL: 'discord.com/api/webhooks/1/SECRET' });
    assert.ok(!m2.includes('SECRET'), m2);
    const m3 = refusal({ ...DIR, MOLT_ADMIN_TOKEN: 'SECRET' });
    assert.ok(!m3.includes('SECRET'), m3);
    const m4 = refusal({ MOLT_GITHUB: 'a/b', MOLT_GITHUB_API: 'https://user:SECRET@ghe.example.com/api/v3' });
    assert.match(m4, /^MOLT_GITHUB_API must not hold credentials/);
    assert.ok(!m4.includes('SECRET'), m4);
  });
});

describe('the YAML file', () => {
  test('its keys are the variable names; values may be strings, numbers or booleans', () => {
    const c = read({}, ['MOLT_OCI: ghcr.io/owner/app', 'MOLT_POLICY: patch', 'MOLT_PRERELEASE: true', 'MOLT_KEEP: 4', 'SLEEP: 90', 'MOLT_TRIAL: 1m', 'MOLT_SCHEDULE:', '  - mo-fr 9-17', '  - sa 10-12', 'MOLT_APP_DIR: null'].join('\n'));
    assert.equal(c.source.kind, 'oci');
    assert.equal(c.policy, 'patch');
    assert.equal(c.prerelease, true);
    assert.equal(c.keep, 4);
    assert.equal(c.intervalMs, 90_000);
    assert.equal(c.trialMs, 60_000);
    assert.equal(c.schedule?.windows.length, 2);
    assert.equal(c.appDir, undefined);
  });

  test('the environment wins over the file', () => {
    const file = 'MOLT_DIR: /from/file\nMOLT_POLICY: patch\nMOLT_INTERVAL: 1h\n';
    const c = read({ MOLT_POLICY: 'minor', MOLT_DIR: '/from/env' }, file);
    assert.equal(c.policy, 'minor');
    assert.equal(c.source.kind === 'dir' && c.source.dir, '/from/env');
    assert.equal(c.intervalMs, 3600_000, 'what the environment does not set comes from the file');
  });

  test('an empty variable does not hide the file\'s value', () => {
    assert.equal(read({ MOLT_POLICY: '' }, 'MOLT_DIR: /r\nMOLT_POLICY: manual\n').policy, 'manual');
  });

  test('a source in the file and another in the environment are two sources', () => {
    assert.match(refusal({ MOLT_OCI: 'localhost:5000/app' }, 'MOLT_DIR: /r\n'), /^MOLT_OCI and MOLT_DIR are both set/);
  });

  test('a bad value from the file says where it came from', () => {
    assert.match(refusal({ MOLT_CONFIG: '/etc/m.yaml' }, 'MOLT_DIR: /r\nMOLT_POLICY: newest\n'), /^MOLT_POLICY="newest" \(in \/etc\/m\.yaml\) must be one of latest, minor, patch, manual$/);
    assert.match(refusal({}, 'MOLT_DIR: /r\nMOLT_KEEP: 0\n'), /^MOLT_KEEP="0" \(in \/etc\/molt\/molt\.yaml\) must be an integer >= 1$/);
  });

  test('lower-case short keys and unknown keys are refused with a hint', () => {
    assert.match(refusal({}, 'MOLT_DIR: /r\npolicy: minor\n'), /^unknown key "policy" in MOLT_CONFIG file \/etc\/molt\/molt\.yaml: write MOLT_POLICY/);
    assert.match(refusal({}, 'MOLT_DIR: /r\ngh_user: x\n'), /^unknown key "gh_user" .*: write GH_USER/);
    assert.match(refusal({}, 'MOLT_DIR: /r\nMOLT_POLCY: minor\n'), /^unknown key "MOLT_POLCY" in MOLT_CONFIG file/);
  });

  test('variables molt init reads are refused in the file', () => {
    assert.match(refusal({}, 'MOLT_DIR: /r\nMOLT_SERVICES: /sv\n'), /^MOLT_SERVICES in MOLT_CONFIG file \/etc\/molt\/molt\.yaml is read from the environment only/);
    assert.match(refusal({}, 'MOLT_DIR: /r\nMOLT_CONFIG: /other.yaml\n'), /^MOLT_CONFIG in MOLT_CONFIG file/);
  });

  test('trust settings in the file are refused as environment-only trust settings, not as molt init\'s', () => {
    for (const n of ['MOLT_TRUST_KEYS', 'MOLT_TRUST_IDENTITY', 'MOLT_TRUST_ISSUER', 'MOLT_TRUST_ROOT']) {
      const msg = refusal({}, `MOLT_DIR: /r\n${n}: /x\n`);
      assert.equal(msg, `${n} in MOLT_CONFIG file /etc/molt/molt.yaml is read from the environment only (a trust setting: no file may loosen it)`);
    }
    assert.match(refusal({}, 'MOLT_DIR: /r\nMOLT_SERVICES: /sv\n'), /\(molt init reads it too\)$/);
  });

  test('MOLT_BUNDLED: an absolute path from the environment; refused in the file (it is installed without a signature check)', () => {
    assert.equal(read({ ...DIR, MOLT_BUNDLED: '/opt/molt-bundled/' }).bundled, '/opt/molt-bundled');
    assert.match(refusal({ ...DIR, MOLT_BUNDLED: 'opt/app.tar.gz' }), /^MOLT_BUNDLED="opt\/app\.tar\.gz" must be an absolute path$/);
    assert.equal(
      refusal({}, 'MOLT_DIR: /r\nMOLT_BUNDLED: /opt/app.tar.gz\n'),
      'MOLT_BUNDLED in MOLT_CONFIG file /etc/molt/molt.yaml is read from the environment only (installed without a signature check as part of the image: no file may name one)',
    );
  });

  test('malformed files are refused in one line', () => {
    assert.match(refusal({}, 'MOLT_DIR: [\n'), /^MOLT_CONFIG file \/etc\/molt\/molt\.yaml is not valid YAML: /);
    assert.match(refusal({}, 'MOLT_DIR: /a\nMOLT_DIR: /b\n'), /is not valid YAML: .*unique/i);
    assert.match(refusal({}, '- MOLT_DIR\n'), /must be a mapping of variable names to values/);
    assert.match(refusal({}, 'MOLT_DIR: /r\nMOLT_POLICY: {a: 1}\n'), /^MOLT_POLICY in MOLT_CONFIG file .* must be a string, number or boolean$/);
  });

  test('an empty file is no settings', () => {
    assert.equal(read(DIR, '').policy, 'latest');
    assert.equal(read(DIR, '# nothing yet\n').policy, 'latest');
  });

  describe('on disk', () => {
    let dir: string;
    before(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-config-'));
    });
    after(() => {
      fs.rmSync(dir, { recursive: true, force: true });
    });

    test('MOLT_CONFIG names the file that is read', () => {
      const f = path.join(dir, 'molt.yaml');
      fs.writeFileSync(f, 'MOLT_DIR: /srv/r\nMOLT_POLICY: minor\n');
      const c = readUpdaterConfig({ MOLT_CONFIG: f });
      assert.equal(c.policy, 'minor');
    });

    test('a MOLT_CONFIG that does not exist is refused; the default path may be absent', () => {
      const missing = path.join(dir, 'absent.yaml');
      assert.throws(() => readUpdaterConfig({ MOLT_CONFIG: missing, ...DIR }), (e: Error) => e instanceof ConfigError && e.message === `MOLT_CONFIG=${JSON.stringify(missing)} does not exist`);
      const seen: string[] = [];
      const c = readUpdaterConfig(DIR, (p) => {
        seen.push(p);
        return undefined;
      });
      assert.deepEqual(seen, ['/etc/molt/molt.yaml']);
      assert.equal(c.policy, 'latest');
    });

    test('an unreadable MOLT_CONFIG is refused in one line', () => {
      assert.throws(() => readUpdaterConfig({ MOLT_CONFIG: dir, ...DIR }), (e: Error) => e instanceof ConfigError && /^MOLT_CONFIG file .* cannot be read: EISDIR$/.test(e.message));
      assert.throws(() => readUpdaterConfig({ MOLT_CONFIG: 'molt.yaml', ...DIR }), /MOLT_CONFIG="molt.yaml" must be an absolute path/);
    });
  });
});

describe('configReference', () => {
  const names = configReference.map((r) => r.name);

  test('lists every variable DESIGN.md and the seeds name, once', () => {
    const design = [
      'MOLT_GITHUB', 'GH_USER', 'GH_REPO', 'GITHUB_TOKEN', 'MOLT_GITHUB_API', 'MOLT_ASSET', 'MOLT_REQUIRE_CHECKSUM', 'MOLT_OCI', 'MOLT_DIR',
      'MOLT_POLICY', 'MOLT_PRERELEASE', 'MOLT_INTERVAL', 'SLEEP', 'MOLT_SCHEDULE', 'MOLT_DELAY', 'MOLT_JITTER', 'MOLT_ROLLOUT',
      'MOLT_HOME', 'MOLT_KEEP', 'MOLT_APP', 'MOLT_APP_DIR', 'MOLT_VERSION_FILE', 'MOLT_TRIAL', 'MOLT_READY', 'MOLT_CRASH_LIMIT',
      'MOLT_SOCKET', 'MOLT_ADMIN_ADDR', 'MOLT_ADMIN_TOKEN', 'MOLT_CONFIG', 'MOLT_SERVICES', 'SVDIR', 'MOLT_STOP_TIMEOUT', 'SVWAIT',
      'MOLT_MAX_BACKOFF', 'MOLT_LOG_PREFIX', 'VERBOSE', 'MOLT_LOG_LEVEL', 'MOLT_WEBHOOK_SECRET', 'MOLT_NOTIFY_URL',
      'MOLT_OCI_USER', 'MOLT_OCI_PASSWORD', 'MOLT_OCI_INSECURE',
    ];
    for (const n of design) assert.ok(names.includes(n), `${n} missing from configReference`);
    assert.equal(new Set(names).size, names.length, 'no duplicates');
  });

  test('every row has a meaning on one line', () => {
    for (const r of configReference) {
      assert.ok(r.meaning.length > 10, r.name);
      assert.doesNotMatch(r.meaning + r.default, /\n/, r.name);
    }
  });

  test('the defaults it documents are the defaults read', () => {
    const c = read(DIR);
    const doc = (n: string) => configReference.find((r) => r.name === n)!.default;
    assert.equal(doc('MOLT_POLICY'), c.policy);
    assert.equal(doc('MOLT_HOME'), c.home);
    assert.equal(doc('MOLT_KEEP'), String(c.keep));
    assert.equal(doc('MOLT_APP'), c.app);
    assert.equal(doc('MOLT_VERSION_FILE'), c.versionFile);
    assert.equal(doc('MOLT_READY'), c.ready);
    assert.equal(doc('MOLT_CRASH_LIMIT'), String(c.crashLimit));
    assert.equal(doc('MOLT_HANDOVER'), c.handover);
    assert.equal(doc('MOLT_SOCKET'), c.socket);
    assert.equal(doc('MOLT_SERVICES'), c.servicesDir);
    assert.equal(doc('MOLT_LOG_LEVEL'), c.logLevel);
    assert.equal(doc('MOLT_INTERVAL'), '5m');
    assert.equal(c.intervalMs, 5 * 60_000);
    assert.equal(doc('MOLT_TRIAL'), '30s');
    assert.equal(c.trialMs, 30_000);
    assert.equal(doc('MOLT_STOP_TIMEOUT'), '7s');
    assert.equal(c.stopTimeoutMs, 7000);
  });

  test('every variable it lists can be set in the file or is refused there by name', () => {
    for (const n of names) {
      try {
        read({}, `MOLT_DIR: /r\n${n === 'MOLT_DIR' ? '' : `${n}: ""\n`}`);
      } catch (err) {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, new RegExp(`^${n} in MOLT_CONFIG file .* is read from the environment only`), n);
      }
    }
  });
});
