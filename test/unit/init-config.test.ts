import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseInitArgs, readInitConfig } from '../../src/init/config.js';
import { parseSignal } from '../../src/supervise/signals.js';
import { MAX_TIMER_MS, timerDuration } from '../../src/common/duration.js';

test('defaults follow the design: /etc/service, 7 s grace, 30 s backoff, prefix on', () => {
  const c = readInitConfig({});
  assert.deepEqual(c, {
    servicesDir: '/etc/service', stopTimeoutMs: 7000, maxBackoffMs: 30_000, finishTimeoutMs: 5000, logPrefix: true,
    checkIntervalMs: 10_000, checkTimeoutMs: 5000, checkFailures: 3, healCooldownMs: 300_000,
    inheritedSignals: { ignored: [], blocked: [] },
  });
});

test('SVDIR and SVWAIT (seconds) are read; MOLT_ names win', () => {
  assert.equal(readInitConfig({ SVDIR: '/sv' }).servicesDir, '/sv');
  assert.equal(readInitConfig({ SVDIR: '/sv', MOLT_SERVICES: '/m' }).servicesDir, '/m');
  assert.equal(readInitConfig({ SVWAIT: '3' }).stopTimeoutMs, 3000);
  assert.equal(readInitConfig({ SVWAIT: '3', MOLT_STOP_TIMEOUT: '500ms' }).stopTimeoutMs, 500);
  assert.equal(readInitConfig({ MOLT_LOG_PREFIX: '0' }).logPrefix, false);
});

test('a bad value is refused with one line naming the variable', () => {
  assert.throws(() => readInitConfig({ MOLT_STOP_TIMEOUT: 'soon' }), /^Error: MOLT_STOP_TIMEOUT="soon" is not a duration/);
  assert.throws(() => readInitConfig({ MOLT_MAX_BACKOFF: '-5s' }), /MOLT_MAX_BACKOFF/);
  assert.throws(() => readInitConfig({ MOLT_INHERITED_SIGNALS: 'ign=oops' }), /^Error: MOLT_INHERITED_SIGNALS="ign=oops" is not ign=HEX;blk=HEX/);
  assert.throws(() => readInitConfig({ MOLT_LOG_PREFIX: 'maybe' }), /MOLT_LOG_PREFIX="maybe" must be 0 or 1/);
  assert.throws(() => readInitConfig({ MOLT_CHECK_FAILURES: '0' }), /MOLT_CHECK_FAILURES="0" must be a whole number >= 1/);
  assert.throws(() => readInitConfig({ MOLT_HEAL_COOLDOWN: 'often' }), /MOLT_HEAL_COOLDOWN/);
});

test('durations longer than a Node timer holds (2^31-1 ms) are refused, not turned into 1 ms timers', () => {
  assert.deepEqual(timerDuration('24d'), { ms: 24 * 86_400_000 });
  assert.deepEqual(timerDuration(String(MAX_TIMER_MS)), { ms: MAX_TIMER_MS });
  assert.deepEqual(timerDuration(String(MAX_TIMER_MS + 1)), { problem: 'is too long (at most 24d (2^31-1 ms, the longest timer))' });
  assert.ok('problem' in timerDuration('25d'));
  assert.ok('problem' in timerDuration('2147484', 's'));
  assert.deepEqual(timerDuration('soon'), { problem: 'is not a duration (examples: 7s, 500ms, 1m)' });
  for (const name of ['MOLT_STOP_TIMEOUT', 'MOLT_MAX_BACKOFF', 'MOLT_FINISH_TIMEOUT', 'MOLT_CHECK_INTERVAL', 'MOLT_CHECK_TIMEOUT', 'MOLT_HEAL_COOLDOWN']) {
    assert.throws(() => readInitConfig({ [name]: '25d' }), new RegExp(`^Error: ${name}="25d" is too long \\(at most 24d`));
  }
  assert.throws(() => readInitConfig({ SVWAIT: '2200000' }), /^Error: SVWAIT="2200000" is too long/);
  assert.equal(readInitConfig({ MOLT_STOP_TIMEOUT: '24d' }).stopTimeoutMs, 24 * 86_400_000);
});

test('MOLT_LOG_LEVEL must be a level molt knows', () => {
  assert.throws(() => readInitConfig({ MOLT_LOG_LEVEL: 'abc' }), /^Error: MOLT_LOG_LEVEL="abc" must be one of error, warn, info, debug$/);
  readInitConfig({ MOLT_LOG_LEVEL: 'Debug' });
  readInitConfig({ MOLT_LOG_LEVEL: '' });
});

test('down-signal names parse in every spelling runit and s6 users write', () => {
  assert.equal(parseSignal('TERM'), 'SIGTERM');
  assert.equal(parseSignal('sigquit\n'), 'SIGQUIT');
  assert.equal(parseSignal('1'), 'SIGHUP');
  assert.equal(parseSignal('NOPE'), undefined);
  assert.equal(parseSignal(''), undefined);
});

test('init arguments: -e CODE (repeatable, also -eCODE), then -- or the first word starts CMD', () => {
  assert.deepEqual(parseInitArgs([]), { cmd: [], successCodes: [] });
  assert.deepEqual(parseInitArgs(['--', '-weird', 'x']), { cmd: ['-weird', 'x'], successCodes: [] });
  assert.deepEqual(parseInitArgs(['-e', '143', '-e130', '--', 'java', '-jar', 'app.jar']), { cmd: ['java', '-jar', 'app.jar'], successCodes: [143, 130] });
  assert.deepEqual(parseInitArgs(['-e', '0', 'sleep', '-e', '1']), { cmd: ['sleep', '-e', '1'], successCodes: [0] });
  assert.throws(() => parseInitArgs(['-x']), /^Error: unknown option '-x' \(usage: molt init \[-e CODE\]\.\.\. \[-p SIGNAL\] \[--\] \[CMD ARGS\.\.\.\]\)$/);
  assert.deepEqual(parseInitArgs(['-p', 'TERM', 'app']), { cmd: ['app'], successCodes: [], parentDeathSignal: 'SIGTERM' });
  assert.deepEqual(parseInitArgs(['-pSIGINT', '-e', '2', '--', 'app']), { cmd: ['app'], successCodes: [2], parentDeathSignal: 'SIGINT' });
  for (const bad of [['-p'], ['-p', 'NOPE']]) assert.throws(() => parseInitArgs(bad), /-p wants a signal name such as TERM/, bad.join(' '));
  for (const bad of [['-e'], ['-e', 'x'], ['-e', '256'], ['-e', '-1'], ['-e1.5']]) assert.throws(() => parseInitArgs(bad), /-e wants an exit code from 0 to 255/, bad.join(' '));
});
