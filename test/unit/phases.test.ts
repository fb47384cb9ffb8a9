import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canEnter, canRecover, holdFor, judgeTrial, nextPhases, onStepFailure, recoveryFor, recoveryPhase, type HoldWord, type TrialObservation } from '../../src/update/phases.js';
import { emptyJournal, parseJournal } from '../../src/update/journal.js';
import type { UpdatePhase } from '../../src/api/types.js';

const obs = (o: Partial<TrialObservation> = {}): TrialObservation => ({
  nowMs: 1000, startMs: 0, trialMs: 5000, upSinceMs: 0, crashes: 0, crashLimit: 2, ready: false, readyMode: 'auto', ...o,
});

test('the happy path of an update is a walk through the phase table', () => {
  const path: UpdatePhase[] = ['idle', 'checking', 'downloading', 'staged', 'stopping', 'swapping', 'starting', 'trial', 'committed', 'idle'];
  for (let i = 1; i < path.length; i++) assert.ok(canEnter(path[i - 1]!, path[i]!), `${path[i - 1]} -> ${path[i]}`);
  assert.ok(canEnter('trial', 'rolling-back'));
  assert.ok(!canEnter('idle', 'swapping'), 'no swap without staging');
  assert.ok(!canEnter('downloading', 'swapping'));
  assert.ok(!canEnter('trial', 'idle'), 'a trial ends in commit or rollback');
  for (const [from, tos] of Object.entries(nextPhases)) for (const to of tos) assert.ok(to in nextPhases, `${from} -> ${to} names a phase`);
});

test('a trial continues, commits on ready, commits after staying up the whole trial, fails on crashes', () => {
  assert.deepEqual(judgeTrial(obs()), { verdict: 'continue' });
  assert.deepEqual(judgeTrial(obs({ ready: true })), { verdict: 'commit', why: 'reported ready' });
  assert.deepEqual(judgeTrial(obs({ nowMs: 5000 })), { verdict: 'commit', why: 'stayed up for the trial' });
  assert.deepEqual(judgeTrial(obs({ crashes: 2 })), { verdict: 'fail', reason: 'crashed 2 times during its trial' });
  assert.deepEqual(judgeTrial(obs({ crashes: 1, crashLimit: 1, ready: true })), { verdict: 'fail', reason: 'crashed 1 time during its trial' });
  assert.equal(judgeTrial(obs({ crashes: 1 })).verdict, 'continue', 'one crash under a limit of 2 is not yet a failure');
});

test('a death restarts the stay-up clock: being up at the deadline after a crash is not enough', () => {
  // Crashed once, restarted at 4 s: at 5 s it has been up 1 s, not 5.
  assert.deepEqual(judgeTrial(obs({ nowMs: 5000, crashes: 1, upSinceMs: 4000 })), { verdict: 'continue' });
  assert.deepEqual(judgeTrial(obs({ nowMs: 9000, crashes: 1, upSinceMs: 4000 })).verdict, 'commit');
  assert.deepEqual(judgeTrial(obs({ nowMs: 5000, upSinceMs: undefined })), { verdict: 'continue' }, 'down, waiting for its restart');
  assert.deepEqual(judgeTrial(obs({ nowMs: 45_000, upSinceMs: undefined })), { verdict: 'fail', reason: 'never stayed up for the whole trial' });
});

test('explicit readiness: ready before the deadline commits, missing it fails; a failed check fails', () => {
  assert.deepEqual(judgeTrial(obs({ nowMs: 5000, readyMode: 'explicit' })), { verdict: 'fail', reason: 'did not report ready before the trial deadline' });
  assert.deepEqual(judgeTrial(obs({ nowMs: 4000, readyMode: 'explicit' })).verdict, 'continue');
  assert.deepEqual(judgeTrial(obs({ nowMs: 5000, readyMode: 'explicit', ready: true })).verdict, 'commit');
  assert.deepEqual(judgeTrial(obs({ nowMs: 5000, checkPassed: false })), { verdict: 'fail', reason: 'its check failed at the end of its trial' });
  assert.equal(judgeTrial(obs({ nowMs: 5000, checkPassed: true })).verdict, 'commit');
});

test('recovery: every phase has a plan, and the app always ends on a complete version', () => {
  assert.equal(recoveryFor('idle', '1', undefined, undefined), 'idle');
  assert.equal(recoveryFor('checking', '1', undefined, undefined), 'idle');
  assert.equal(recoveryFor('downloading', '1', '2', '1'), 'idle');
  assert.equal(recoveryFor('staged', '1', '2', '1'), 'keep-staged');
  assert.equal(recoveryFor('stopping', '1', '2', '1'), 'restart-current');
  assert.equal(recoveryFor('swapping', '1', '2', '1'), 'restart-current', 'the rename had not happened');
  assert.equal(recoveryFor('swapping', '2', '2', '1'), 'resume-trial', 'the rename had happened');
  assert.equal(recoveryFor('starting', '2', '2', '1'), 'resume-trial');
  assert.equal(recoveryFor('trial', '2', '2', '1'), 'resume-trial', 'a trial interrupted is judged again, never committed blindly');
  assert.equal(recoveryFor('committed', '2', '2', '1'), 'idle');
  assert.equal(recoveryFor('rolling-back', '2', '2', '1'), 'roll-back');
  assert.equal(recoveryFor('rolling-back', '1', '2', '1'), 'roll-back', 'finishing a rollback is idempotent');
});

test('state.json is validated: a bad phase or shape is an error naming it', () => {
  const good = { ...emptyJournal(), phase: 'trial' };
  assert.equal(parseJournal(JSON.stringify(good)).phase, 'trial');
  assert.throws(() => parseJournal('{"version":1,"phase":"flying","blocked":[],"history":[]}'), /bad phase flying/);
  assert.throws(() => parseJournal('{"version":2}'), /unknown version 2/);
  assert.throws(() => parseJournal('{"version":1,"phase":"idle"}'), /blocked\/history missing/);
  assert.throws(() => parseJournal('not json'));
});

test("recover() writes only the recovery table's rows: every plan from every phase is one of them", () => {
  const phases = Object.keys(nextPhases) as UpdatePhase[];
  const versions = [undefined, '1', '2'];
  for (const phase of phases)
    for (const current of versions)
      for (const target of versions)
        for (const from of versions)
          for (const inStore of [true, false]) {
            const to = recoveryPhase(recoveryFor(phase, current, target, from), inStore);
            assert.ok(canRecover(phase, to), `${phase} -> ${to} (current ${current}, target ${target}, from ${from})`);
          }
  assert.ok(!canRecover('trial', 'committed'), 'recovery never commits blindly');
});

test('the hold (supervise/hold) follows the phase: apply from stopping through trial or rollback, staged while waiting', () => {
  const expected: Record<UpdatePhase, HoldWord | undefined> = {
    idle: undefined,
    checking: undefined,
    downloading: undefined,
    staged: 'staged',
    stopping: 'apply',
    swapping: 'apply',
    starting: 'apply',
    trial: 'apply',
    committed: undefined,
    'rolling-back': 'apply',
  };
  for (const phase of Object.keys(nextPhases) as UpdatePhase[]) assert.equal(holdFor(phase), expected[phase], phase);
  // An update never leaves the hold on its way from staged to its trial's end.
  for (const p of ['stopping', 'swapping', 'starting', 'trial'] as UpdatePhase[]) assert.notEqual(holdFor(p), undefined);
});

test('a failed stop or swap goes back to staged (the old version runs again); a failed start rolls back', () => {
  assert.equal(onStepFailure.stopping, 'staged');
  assert.equal(onStepFailure.swapping, 'staged');
  assert.equal(onStepFailure.starting, 'rolling-back');
  for (const [from, to] of Object.entries(onStepFailure)) assert.ok(canEnter(from as UpdatePhase, to), `${from} -> ${to} is a row of the table`);
  assert.equal(recoveryFor('trial', '2', '2', '1', true), 'roll-back', 'a trial already judged failed is rolled back, not judged again');
  assert.ok(canRecover('trial', 'rolling-back'));
});
