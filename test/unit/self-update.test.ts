// molt updates itself (issue 15): the pure parts. Which molt runs (the resolver),
// MOLT_SELF's forms and policy, PID 1's identity and the trial's verdict.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chooseMolt, inspectInstall, pid1Behind, readSelfJournal, type InstallFacts } from '../../src/update/self/resolve.js';
import { judgeSelfTrial, SELF_TRIAL_MIN_MS, selfTrialMs } from '../../src/update/self/trial.js';
import { selfSourceForm } from '../../src/update/self/config.js';
import { encodePid1, parsePid1, type Pid1Identity } from '../../src/common/pid1.js';
import { ConfigError, readUpdaterConfig, type UpdaterConfig } from '../../src/update/config.js';
import { formatSelf } from '../../src/cli/control-format.js';

const read = (env: NodeJS.ProcessEnv, file?: string): UpdaterConfig => readUpdaterConfig({ MOLT_DIR: '/srv/app', ...env }, () => file);
function refusal(env: NodeJS.ProcessEnv, file?: string): string {
  try {
    read(env, file);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    assert.doesNotMatch(err.message, /\n/);
    return err.message;
  }
  return assert.fail(`accepted ${JSON.stringify(env)}`);
}

describe('resolver: which molt runs', () => {
  const whole: InstallFacts = { version: '1.2.4', entry: '/h/molt/versions/1.2.4/molt.mjs', whole: true };
  test('the installed current when MOLT_SELF is on and it is whole and not blocked', () => {
    assert.deepEqual(chooseMolt({ enabled: true, current: whole, blocked: new Set() }), { use: 'installed', version: '1.2.4', entry: whole.entry });
  });
  test("the image's molt otherwise, saying why", () => {
    assert.match((chooseMolt({ enabled: false, current: whole, blocked: new Set() }) as { why: string }).why, /MOLT_SELF is off/);
    assert.match((chooseMolt({ enabled: true, blocked: new Set() }) as { why: string }).why, /no molt installed/);
    assert.match((chooseMolt({ enabled: true, current: { ...whole, whole: false }, blocked: new Set() }) as { why: string }).why, /incomplete/);
    assert.match((chooseMolt({ enabled: true, current: whole, blocked: new Set(['1.2.4']) }) as { why: string }).why, /blocked/);
    // The container may have died of it as PID 1: the updater does not run it before its trial is judged.
    assert.match((chooseMolt({ enabled: true, current: whole, blocked: new Set(), unsettled: '1.2.4' }) as { why: string }).why, /trial of molt 1\.2\.4 is unfinished/);
    assert.equal(chooseMolt({ enabled: true, current: whole, blocked: new Set(), unsettled: '1.2.9' }).use, 'installed');
  });
  test('PID 1 is behind only when it runs another molt than the chosen install', () => {
    const choice = chooseMolt({ enabled: true, current: whole, blocked: new Set() });
    assert.equal(pid1Behind(choice, '/usr/local/lib/molt/molt.mjs'), true);
    assert.equal(pid1Behind(choice, whole.entry), false);
    assert.equal(pid1Behind(choice, undefined), false, 'no identity: PID 1 is not molt, left alone');
    assert.equal(pid1Behind({ use: 'image', why: 'off' }, '/x'), false);
  });
  test('an install is whole with an executable molt.mjs and koffi beside it', () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-self-unit-'));
    try {
      assert.equal(inspectInstall(home), undefined);
      const v = path.join(home, 'versions', '1.0.1');
      fs.mkdirSync(path.join(v, 'node_modules', 'koffi'), { recursive: true });
      fs.symlinkSync('versions/1.0.1', path.join(home, 'current'));
      fs.writeFileSync(path.join(v, 'molt.mjs'), '#!/usr/bin/env node\n', { mode: 0o644 });
      assert.equal(inspectInstall(home)?.whole, false, 'not executable, no koffi');
      fs.chmodSync(path.join(v, 'molt.mjs'), 0o755);
      assert.equal(inspectInstall(home)?.whole, false, 'no koffi');
      fs.writeFileSync(path.join(v, 'node_modules', 'koffi', 'package.json'), '{}');
      assert.deepEqual(inspectInstall(home), { version: '1.0.1', entry: path.join(fs.realpathSync(v), 'molt.mjs'), whole: true });
      assert.deepEqual(readSelfJournal(home), { blocked: new Set() });
      fs.writeFileSync(path.join(home, 'state.json'), JSON.stringify({ version: 1, phase: 'trial', target: { version: '1.0.1' }, blocked: [{ version: '0.9.9' }], history: [] }));
      assert.deepEqual(readSelfJournal(home), { blocked: new Set(['0.9.9']), unsettled: '1.0.1' });
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});

describe('MOLT_SELF and MOLT_SELF_POLICY', () => {
  test('off by default', () => {
    assert.equal(read({}).self, undefined);
    assert.equal(read({ MOLT_SELF: 'off' }).self, undefined);
  });
  test('the app\'s three forms, policy patch by default', () => {
    assert.deepEqual(selfSourceForm('github:acme/molt'), { kind: 'github', repo: 'acme/molt' });
    assert.deepEqual(selfSourceForm('/srv/molt'), { kind: 'dir', dir: '/srv/molt' });
    assert.deepEqual(selfSourceForm('ghcr.io/acme/molt:stable'), { kind: 'oci', ref: 'ghcr.io/acme/molt:stable' });
    const gh = read({ MOLT_SELF: 'github:acme/molt', GITHUB_TOKEN: 'tok' }).self!;
    assert.equal(gh.policy, 'patch');
    assert.deepEqual(gh.source, { kind: 'github', repo: 'acme/molt', token: 'tok', apiUrl: undefined, asset: undefined, requireChecksum: false });
    const oci = read({ MOLT_SELF: '127.0.0.1:5000/molt', MOLT_SELF_POLICY: 'minor' }).self!;
    assert.equal(oci.source.kind, 'oci');
    assert.equal(oci.policy, 'minor');
    const dir = read({ MOLT_SELF: '/srv/molt/', MOLT_SELF_POLICY: 'latest', MOLT_REQUIRE_CHECKSUM: '1' }).self!;
    assert.deepEqual(dir.source, { kind: 'dir', dir: '/srv/molt', requireChecksum: true });
    assert.equal(read({ MOLT_SELF: '/srv/molt' }).policy, 'latest', "the app's policy is its own");
  });
  test('bad values: one line naming MOLT_SELF', () => {
    assert.match(refusal({ MOLT_SELF: 'github:nothing' }), /^MOLT_SELF="github:nothing" must be owner\/repo.*MOLT_SELF is github:owner\/repo/);
    assert.match(refusal({ MOLT_SELF: 'Not A Ref!' }), /^MOLT_SELF="Not A Ref!" /);
    assert.match(refusal({ MOLT_SELF: '/srv/m', MOLT_SELF_POLICY: 'newest' }), /^MOLT_SELF_POLICY="newest" must be one of latest, minor, patch, manual/);
  });
  test('MOLT_SELF from the environment only: a file must not choose what PID 1 becomes', () => {
    assert.match(refusal({}, 'MOLT_SELF: /srv/molt\n'), /MOLT_SELF in MOLT_CONFIG file .* environment only \(it chooses what PID 1 becomes/);
    assert.equal(read({ MOLT_SELF: '/srv/molt' }, 'MOLT_SELF_POLICY: minor\n').self?.policy, 'minor');
  });
});

describe("PID 1's identity and the trial of a new molt", () => {
  const entry = '/h/molt/versions/1.2.4/molt.mjs';
  const at = 1_000_000;
  const id = (p: Partial<Pid1Identity>): Pid1Identity => ({ pid: 1, version: '1.2.4', entry, startedMs: at + 500, adopted: { of: 3, accounted: 3 }, ...p });
  const judge = (i: Pid1Identity | undefined, nowMs = at + 1000) => judgeSelfTrial({ id: i, version: '1.2.4', entry, requestedMs: at, nowMs, deadlineMs: at + 15_000 });

  test('round trip; anything partial is no identity', () => {
    assert.deepEqual(parsePid1(encodePid1(id({}))), id({}));
    assert.equal(parsePid1('{"pid":1,"version":"1"'), undefined);
    assert.equal(parsePid1('{"pid":1,"version":"1","entry":"/x"}'), undefined);
    assert.equal(parsePid1(JSON.stringify({ ...id({}), adopted: { of: 2 } })), undefined);
  });
  test('committed when PID 1 restarted as the new molt, from its install, with every service taken over', () => {
    assert.deepEqual(judge(id({})), { verdict: 'commit', why: 'PID 1 runs molt 1.2.4 and took over all 3 services' });
  });
  test('failed at once when the new molt started but left services behind, or started afresh', () => {
    assert.deepEqual(judge(id({ adopted: { of: 3, accounted: 2 } })), { verdict: 'fail', reason: 'PID 1 took over 2 of 3 services' });
    assert.match((judge(id({ adopted: undefined })) as { reason: string }).reason, /started afresh/);
  });
  test('an identity from before the request (PID 1 stayed on, or returned to, the old molt) waits, then fails at the deadline', () => {
    const old = id({ version: '1.2.3', entry: '/usr/local/lib/molt/molt.mjs', startedMs: at - 60_000, adopted: undefined });
    assert.deepEqual(judge(old), { verdict: 'continue' });
    assert.deepEqual(judge(undefined), { verdict: 'continue' });
    assert.match((judge(old, at + 15_000) as { reason: string }).reason, /did not re-execute into it/);
    // The same version from another install is not the new molt.
    assert.match((judge(id({ entry: '/elsewhere/molt.mjs' }), at + 15_000) as { reason: string }).reason, /not the new molt/);
  });
  test('the trial gets MOLT_TRIAL, at least the floor', () => {
    assert.equal(selfTrialMs(3000), SELF_TRIAL_MIN_MS);
    assert.equal(selfTrialMs(120_000), 120_000);
  });
});

describe('molt status: molt itself', () => {
  test('off: which molt runs, and how to turn updates on', () => {
    const out = formatSelf({ running: '1.2.3', updater: '1.2.3', blocked: [], history: [] }, Date.now()).join('\n');
    assert.match(out, /^molt itself\n\s+running\s+1\.2\.3 \(PID 1\), updater 1\.2\.3\n\s+updates\s+off \(set MOLT_SELF\)$/);
  });
  test('on: current, source, policy, blocked and recent, as the app has them', () => {
    const now = Date.parse('2026-01-01T00:00:10Z');
    const out = formatSelf({
      running: '1.2.4', updater: '1.2.3', source: 'dir /srv/molt (MOLT_SELF=/srv/molt)', policy: 'patch', current: '1.2.4', previous: '1.2.3',
      blocked: [{ version: '1.2.5', reason: 'PID 1 did not re-execute into it', at: '2026-01-01T00:00:00Z' }],
      history: [{ at: '2026-01-01T00:00:05Z', event: 'commit', version: '1.2.4', detail: 'PID 1 runs molt 1.2.4' }],
    }, now).join('\n');
    assert.match(out, /current\s+1\.2\.4\n\s+previous\s+1\.2\.3\n\s+available\s+up to date\n\s+source\s+dir \/srv\/molt \(MOLT_SELF=\/srv\/molt\)  policy patch/);
    assert.match(out, /blocked\s+1\.2\.5  PID 1 did not re-execute into it/);
    assert.match(out, /recent\s+\S+ ago commit 1\.2\.4/);
  });
});
