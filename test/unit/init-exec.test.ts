// The exec shim's failure statuses: what sh and tini report for a CMD that cannot run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { directCmdSpawn, execFailure } from '../../src/init/exec.js';

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
