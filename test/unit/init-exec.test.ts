// The exec shim's failure statuses: what sh and tini report for a CMD that cannot run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { directCmdSpawn, execFailure } from '../../src/init/exec.js';
import { parseInheritedSignals, signalsOfMask } from '../../src/init/config.js';
import { sigset } from '../../src/common/native.js';

test('execvp failures: ENOENT 127, EACCES 126, anything else 1, each naming the file', () => {
  assert.deepEqual(execFailure('/x/app', os.constants.errno.ENOENT), { code: 127, line: 'molt init: cannot run /x/app: not found' });
  assert.deepEqual(execFailure('app', os.constants.errno.EACCES), { code: 126, line: 'molt init: cannot run app: permission denied (not executable?)' });
  assert.equal(execFailure('app', os.constants.errno.E2BIG).code, 1);
  assert.match(execFailure('app', os.constants.errno.E2BIG).line, /^molt init: cannot run app: /);
});

test('CMD skips the shim only as PID 1 with no terminal on stdin, stdout or stderr', () => {
  assert.equal(directCmdSpawn(1, [false, false, false]), true);
  assert.equal(directCmdSpawn(1, [true, false, false]), false, 'stdin a terminal: the shim hands CMD the foreground');
  assert.equal(directCmdSpawn(1, [false, false, true]), false, 'setsid would take a terminal on stderr away from CMD');
  assert.equal(directCmdSpawn(4242, [false, false, false]), false, 'not PID 1: the shim sets the parent-death signal');
});

test('with inherited signals to give back, CMD goes through the shim even as PID 1 without a terminal', () => {
  assert.equal(directCmdSpawn(1, [false, false, false], { ignored: [], blocked: [] }), true);
  assert.equal(directCmdSpawn(1, [false, false, false], { ignored: [2], blocked: [] }), false, 'libuv would reset an ignored INT');
  assert.equal(directCmdSpawn(1, [false, false, false], { ignored: [], blocked: [15] }), false, 'libuv would empty the mask');
});

test('a /proc status mask as signal numbers: bit N-1 is signal N, up to 64; KILL and STOP never', () => {
  assert.deepEqual(signalsOfMask('0000000000000000'), []);
  // sigconf-test.c's two sets, as /proc shows them.
  assert.deepEqual(signalsOfMask('0000000000200402'), [2, 11, 22]);
  assert.deepEqual(signalsOfMask('0000000000104008'), [4, 15, 21]);
  assert.deepEqual(signalsOfMask('8000000000000001'), [1, 64]);
  assert.deepEqual(signalsOfMask('0000000000040100'), [], 'KILL (9) and STOP (19) cannot be ignored or blocked');
  assert.deepEqual(signalsOfMask('4'), [3]);
  for (const bad of ['', 'xyz', '0x10', '10000000000000000', '-1', '1 2']) assert.equal(signalsOfMask(bad), undefined, bad);
});

test('MOLT_INHERITED_SIGNALS: ign=HEX;blk=HEX; unset or empty is none; QUIT is never taken from the shell', () => {
  assert.deepEqual(parseInheritedSignals(undefined), { ignored: [], blocked: [] });
  assert.deepEqual(parseInheritedSignals(''), { ignored: [], blocked: [] });
  assert.deepEqual(parseInheritedSignals('ign=0000000000200402;blk=0000000000104008'), { ignored: [2, 11, 22], blocked: [4, 15, 21] });
  assert.deepEqual(parseInheritedSignals('ign=;blk='), { ignored: [], blocked: [] }, 'a field the shell did not find');
  assert.deepEqual(parseInheritedSignals('blk=8'), { ignored: [], blocked: [4] });
  // busybox sh and bash ignore QUIT themselves: in their SigIgn it says nothing about their parent.
  assert.deepEqual(parseInheritedSignals('ign=0000000000000004;blk=0000000000000004'), { ignored: [], blocked: [3] });
  for (const bad of ['ign=zz', 'ign=1;blk=2;x=3', 'SigIgn: 0', 'ign=1,blk=2']) assert.ok('problem' in parseInheritedSignals(bad), bad);
});

test('sigset: the bytes of a Linux sigset_t, bit N-1 for signal N', () => {
  const set = sigset([1, 8, 9, 15, 64]);
  assert.equal(set.length, 128);
  assert.equal(set.readBigUInt64LE(0), (1n << 0n) | (1n << 7n) | (1n << 8n) | (1n << 14n) | (1n << 63n));
  assert.ok(set.subarray(8).every((b) => b === 0));
  assert.ok(sigset([]).every((b) => b === 0));
});
