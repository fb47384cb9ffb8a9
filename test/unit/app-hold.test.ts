// The updater's AppHold (src/update/hold.ts) against a real file and real flocks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { AppHold } from '../../src/update/hold.js';
import { tmpdir, waitFor } from '../helpers/molt.js';

test('a word left by a dead updater is emptied at a start with nothing under way', () => {
  const dir = tmpdir('apphold-stale');
  const file = path.join(dir, 'hold');
  fs.writeFileSync(file, 'apply'); // kill -9 mid-update: the word stays, the lock is gone
  new AppHold(file).set(undefined);
  assert.equal(fs.readFileSync(file, 'utf8'), '', 'PID 1 would otherwise keep granting the stale grace');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a word under someone else\'s lock is left alone', async () => {
  const dir = tmpdir('apphold-held');
  const file = path.join(dir, 'hold');
  fs.writeFileSync(file, 'apply');
  const ready = path.join(dir, 'locked');
  const p = spawn('flock', [file, 'sh', '-c', `touch ${ready}; exec sleep 30`], { stdio: 'ignore', detached: true });
  try {
    await waitFor('the lock taken', () => fs.existsSync(ready), 5000);
    new AppHold(file).set(undefined);
    assert.equal(fs.readFileSync(file, 'utf8'), 'apply');
  } finally {
    process.kill(-p.pid!, 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('held with a word, then released: the word is emptied and the lock free', () => {
  const dir = tmpdir('apphold-cycle');
  const file = path.join(dir, 'hold');
  const h = new AppHold(file);
  h.set('apply');
  assert.equal(fs.readFileSync(file, 'utf8'), 'apply');
  h.set('staged');
  assert.equal(fs.readFileSync(file, 'utf8'), 'staged');
  h.set(undefined);
  assert.equal(fs.readFileSync(file, 'utf8'), '');
  fs.rmSync(dir, { recursive: true, force: true });
});
