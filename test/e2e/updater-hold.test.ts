// The updater's side of the hold protocol (supervise/hold of the app), end to
// end under molt init: locked with `apply` through a trial, with `staged` while
// a release waits for its gate, and released otherwise. util-linux `flock -n`
// is the outside observer: it fails exactly while the updater holds the lock.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { UpdaterStatus } from '../../src/api/types.js';
import { tmpdir, waitFor } from '../helpers/molt.js';
import { Stack, writeAppRelease } from './updater-stack.js';

let stack: Stack | undefined;
let rel: string | undefined;
after(async () => {
  await stack?.dispose();
  if (rel) fs.rmSync(rel, { recursive: true, force: true });
});

const committed = (v: string) => (s: UpdaterStatus) => s.phase === 'idle' && s.history.some((h) => h.event === 'commit' && h.version === v);

test('supervise/hold: apply during a trial, staged while a release waits, free otherwise', async () => {
  rel = tmpdir('hold-rel');
  stack = await Stack.create({ label: 'hold', env: { MOLT_DIR: rel, MOLT_TRIAL: '4s', MOLT_DELAY: '6s' } });
  const s = stack;
  const hold = path.join(s.services, 'app', 'supervise', 'hold');
  /** 'held' when `flock -n hold true` fails (someone holds it), 'free' when it runs. */
  const lockState = () => (spawnSync('flock', ['-n', hold, 'true']).status === 0 ? 'free' : 'held');
  const word = () => fs.readFileSync(hold, 'utf8').trim();
  const phase = () => {
    try {
      return s.state().phase;
    } catch {
      return undefined; // no state.json yet
    }
  };

  writeAppRelease(rel, '1.0.0');
  s.start();
  // A first install has no gate: straight to its trial.
  await waitFor('1.0.0 on trial', () => phase() === 'trial', 60_000);
  assert.equal(lockState(), 'held', 'held through the trial');
  assert.equal(word(), 'apply');
  await s.waitStatus('1.0.0 committed', committed('1.0.0'));
  await waitFor('the hold released after the commit', () => lockState() === 'free', 5000);

  writeAppRelease(rel, '2.0.0');
  await s.waitStatus('2.0.0 staged, waiting for MOLT_DELAY', (x) => x.phase === 'staged' && /delay/.test(x.waiting ?? ''));
  assert.equal(lockState(), 'held', 'held while staged');
  assert.equal(word(), 'staged');
  await waitFor('2.0.0 on trial', () => phase() === 'trial', 30_000);
  assert.equal(lockState(), 'held');
  assert.equal(word(), 'apply');
  await s.waitStatus('2.0.0 committed', committed('2.0.0'));
  await waitFor('the hold released after the commit', () => lockState() === 'free', 5000);
});
