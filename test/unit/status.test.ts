import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeStatus, encodeStatus, formatPid, formatStat, formatSvStatus, type SuperviseStatus } from '../../src/supervise/status.js';

const base: SuperviseStatus = { stampMs: 1_700_000_000_250, pid: 0x01020304, paused: false, want: 'up', gotTerm: false, state: 'run' };

test('status is 20 bytes in runit layout: TAI64 BE seconds, nanos BE, pid LE, flags, state', () => {
  const b = encodeStatus(base);
  assert.equal(b.length, 20);
  assert.equal(b.readBigUInt64BE(0), 4611686018427387914n + 1_700_000_000n);
  assert.equal(b.readUInt32BE(8), 250_000_000);
  assert.deepEqual([...b.subarray(12, 16)], [0x04, 0x03, 0x02, 0x01]);
  assert.equal(b[16], 0);
  assert.equal(b[17], 'u'.charCodeAt(0));
  assert.equal(b[18], 0);
  assert.equal(b[19], 1);
});

test('want exit is written as d, as runsv does', () => {
  assert.equal(encodeStatus({ ...base, want: 'exit' })[17], 'd'.charCodeAt(0));
});

test('status round-trips through decode', () => {
  for (const s of [base, { ...base, paused: true, gotTerm: true, want: 'down' as const, state: 'finish' as const, pid: 77 }]) {
    assert.deepEqual(decodeStatus(encodeStatus(s)), s);
  }
  assert.throws(() => decodeStatus(Buffer.alloc(19)), /bad status size/);
});

test('stat line names state and flags like runsv', () => {
  assert.equal(formatStat(base), 'run\n');
  assert.equal(formatStat({ ...base, paused: true, gotTerm: true, want: 'down' }), 'run, paused, got TERM, want down\n');
  assert.equal(formatStat({ ...base, want: 'exit' }), 'run, want exit\n');
  assert.equal(formatStat({ ...base, state: 'down', want: 'down', pid: 0 }), 'down\n');
});

test('pid file is the pid and a newline, empty when down', () => {
  assert.equal(formatPid(42), '42\n');
  assert.equal(formatPid(0), '');
});

test('sv status line: pid, age and suffixes follow sv.c rules', () => {
  const now = base.stampMs + 5_000;
  assert.equal(formatSvStatus('/s/a', base, true, now), 'run: /s/a: (pid 16909060) 5s');
  assert.equal(formatSvStatus('/s/a', base, false, now), 'run: /s/a: (pid 16909060) 5s, normally down');
  const down = { ...base, pid: 0, state: 'down' as const };
  assert.equal(formatSvStatus('a', down, true, now), 'down: a: 5s, normally up, want up');
  assert.equal(formatSvStatus('a', { ...down, want: 'down' }, false, now), 'down: a: 5s');
  assert.equal(formatSvStatus('a', { ...base, paused: true, gotTerm: true, want: 'down' }, true, now), 'run: a: (pid 16909060) 5s, paused, want down, got TERM');
  assert.equal(formatSvStatus('a', base, true, base.stampMs - 3000), 'run: a: (pid 16909060) 0s', 'clock behind the stamp counts as 0s');
});
