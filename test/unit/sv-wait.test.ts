import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SuperviseStatus } from '../../src/supervise/status.js';
import { controlInEffect, exitCode, isPathName, isPathNameWhileWaiting, waitSatisfied } from '../../src/sv/wait.js';

const START = 1_700_000_000; // sv's start, unix seconds
const up: SuperviseStatus = { stampMs: START * 1000 + 300, pid: 42, paused: false, want: 'up', gotTerm: false, state: 'run' };
const down: SuperviseStatus = { stampMs: (START - 10) * 1000, pid: 0, paused: false, want: 'down', gotTerm: false, state: 'down' };
const passes = () => true;
const fails = () => false;

/** A ./check stand-in that counts its runs. */
function counter(result: boolean) {
  const c = { runs: 0, fn: () => (c.runs++, result) };
  return c;
}

test('u: running (state run, with a pid) and ./check passes', () => {
  assert.equal(waitSatisfied('u', up, START, passes), true);
  assert.equal(waitSatisfied('u', up, START, fails), false);
  assert.equal(waitSatisfied('u', down, START, passes), false);
  assert.equal(waitSatisfied('u', { ...up, state: 'finish' }, START, passes), false);
  const c = counter(true);
  waitSatisfied('u', down, START, c.fn);
  assert.equal(c.runs, 0, './check runs only for a running service');
});

test('d: down with no pid; finish is not down yet', () => {
  assert.equal(waitSatisfied('d', down, START, fails), true);
  assert.equal(waitSatisfied('d', up, START, passes), false);
  assert.equal(waitSatisfied('d', { ...down, state: 'finish', pid: 7 }, START, passes), false);
});

test('x: never by the status (only when runsv is gone)', () => {
  assert.equal(waitSatisfied('x', down, START, passes), false);
});

test('t and k: a process started at or after sv, not TERMed, check passing; or down and wanted down', () => {
  for (const l of ['t', 'k']) {
    assert.equal(waitSatisfied(l, up, START, passes), true, l);
    assert.equal(waitSatisfied(l, { ...up, stampMs: (START - 1) * 1000 + 999 }, START, passes), false, `${l}: old process`);
    assert.equal(waitSatisfied(l, { ...up, gotTerm: true }, START, passes), false, `${l}: TERMed`);
    assert.equal(waitSatisfied(l, up, START, fails), false, `${l}: check fails`);
    assert.equal(waitSatisfied(l, down, START, fails), true, `${l}: down and wanted down`);
    assert.equal(waitSatisfied(l, { ...down, want: 'up' }, START, passes), false, `${l}: down, wanted up`);
  }
});

test('o: running and wanted down, or down since sv started', () => {
  assert.equal(waitSatisfied('o', { ...up, want: 'down' }, START, fails), true);
  assert.equal(waitSatisfied('o', up, START, passes), false);
  assert.equal(waitSatisfied('o', down, START, passes), false, 'down since before sv started');
  assert.equal(waitSatisfied('o', { ...down, stampMs: START * 1000 }, START, passes), true, 'ran and ended since');
});

test('p and c: paused flag, when there is a process', () => {
  assert.equal(waitSatisfied('p', { ...up, paused: true }, START, fails), true);
  assert.equal(waitSatisfied('p', up, START, fails), false);
  assert.equal(waitSatisfied('p', down, START, fails), true);
  assert.equal(waitSatisfied('c', up, START, fails), true);
  assert.equal(waitSatisfied('c', { ...up, paused: true }, START, fails), false);
});

test('C (sv check, runit 2.1.2): a running service must pass ./check; a down one is done', () => {
  assert.equal(waitSatisfied('C', up, START, passes), true);
  assert.equal(waitSatisfied('C', up, START, fails), false);
  assert.equal(waitSatisfied('C', { ...down, want: 'up' }, START, fails), true);
});

test('signals (h a i q 1 2) leave nothing to wait for', () => {
  for (const l of 'haiq12') assert.equal(waitSatisfied(l, up, START, fails), true, l);
});

test('tcu: every letter must hold, and ./check runs once per letter that needs it', () => {
  const c = counter(true);
  assert.equal(waitSatisfied('tcu', up, START, c.fn), true);
  assert.equal(c.runs, 2);
  assert.equal(waitSatisfied('tcu', { ...up, paused: true }, START, passes), false);
});

test('control letter already in effect: u when wanted up; d when wanted down and TERMed', () => {
  assert.equal(controlInEffect('u', up), true);
  assert.equal(controlInEffect('u', down), false);
  assert.equal(controlInEffect('d', { ...up, want: 'down', gotTerm: true }), true);
  assert.equal(controlInEffect('d', { ...up, want: 'down' }), false, 'after once: not TERMed, d is still sent');
  assert.equal(controlInEffect('d', down), false, 'down file, never TERMed: d is sent');
  assert.equal(controlInEffect('d', up), false);
  assert.equal(controlInEffect('tcu', up), false);
  assert.equal(controlInEffect('x', down), false);
});

test('names: paths start with / or ., are empty, or end in /; while waiting only / and . count', () => {
  for (const n of ['/srv/a', './a', '../a', '.hidden', '', 'a/']) assert.equal(isPathName(n), true, n);
  for (const n of ['a', 'a/b']) assert.equal(isPathName(n), false, n);
  assert.equal(isPathNameWhileWaiting('a/'), false);
  assert.equal(isPathNameWhileWaiting('./a/'), true);
  assert.equal(isPathNameWhileWaiting('/a'), true);
});

test('exit code: one per failure, capped at 99', () => {
  assert.equal(exitCode(0), 0);
  assert.equal(exitCode(3), 3);
  assert.equal(exitCode(99), 99);
  assert.equal(exitCode(250), 99);
});
