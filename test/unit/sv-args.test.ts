import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs, scanUlong, serviceDirFrom, USAGE } from '../../src/sv/args.js';

const parse = (argv: string[], env: NodeJS.ProcessEnv = {}) => parseArgs(argv, env, '9.9.9');

test('plain command: not verbose, 7 s wait, services after the command', () => {
  const r = parse(['status', 'a', 'b']);
  assert.deepEqual(r, { ok: true, options: { verbose: false, waitSec: 7, action: 'status', services: ['a', 'b'], serviceDir: '/etc/service' } });
});

test('-w takes its value attached or from the next word, and implies -v', () => {
  for (const argv of [['-w', '3', 'up', 'x'], ['-w3', 'up', 'x'], ['-vw3', 'up', 'x']]) {
    const r = parse(argv);
    assert.ok(r.ok);
    assert.equal(r.options.waitSec, 3, argv.join(' '));
    assert.equal(r.options.verbose, true);
  }
});

test('SVWAIT sets the wait; -w wins over it', () => {
  const a = parse(['-v', 'up', 'x'], { SVWAIT: '12' });
  assert.ok(a.ok && a.options.waitSec === 12);
  const b = parse(['-w', '2', 'up', 'x'], { SVWAIT: '12' });
  assert.ok(b.ok && b.options.waitSec === 2);
});

test('wait values read like C scan_ulong: leading digits, else 0', () => {
  assert.equal(scanUlong('15'), 15);
  assert.equal(scanUlong('1.5'), 1);
  assert.equal(scanUlong('abc'), 0);
  assert.equal(scanUlong('-3'), 0);
  assert.equal(scanUlong(''), 0);
});

test('options stop at "--" (dropped), any "--word" (dropped), "-" (kept) and the first non-option', () => {
  const a = parse(['--', '-v', 'x']);
  assert.ok(a.ok && a.options.action === '-v' && !a.options.verbose);
  const b = parse(['--foo', 'status', 'x']);
  assert.ok(b.ok && b.options.action === 'status');
  const c = parse(['-', 'x']);
  assert.ok(c.ok && c.options.action === '-');
  const d = parse(['status', '-v', 'x']);
  assert.ok(d.ok && d.options.services.join() === '-v,x' && !d.options.verbose);
});

test('usage errors: missing command or service, unknown option, -w without value, -V', () => {
  assert.deepEqual(parse([]), { ok: false, stderr: USAGE });
  assert.deepEqual(parse(['up']), { ok: false, stderr: USAGE });
  assert.deepEqual(parse(['-z', 'up', 'x']), { ok: false, stderr: `molt sv: illegal option -- z\n${USAGE}` });
  assert.deepEqual(parse(['-w']), { ok: false, stderr: `molt sv: option requires an argument -- w\n${USAGE}` });
  assert.deepEqual(parse(['-V', 'up', 'x']), { ok: false, stderr: `molt 9.9.9\n${USAGE}` });
  assert.equal(USAGE, 'usage: molt sv [-v] [-w sec] command service ...\n\n');
});

test('service directory: MOLT_SERVICES, then SVDIR (even empty, as sv), else /etc/service', () => {
  assert.equal(serviceDirFrom({ MOLT_SERVICES: '/m', SVDIR: '/s' }), '/m');
  assert.equal(serviceDirFrom({ SVDIR: '/s' }), '/s');
  assert.equal(serviceDirFrom({ SVDIR: '' }), '');
  assert.equal(serviceDirFrom({ MOLT_SERVICES: '' }), '/etc/service');
  assert.equal(serviceDirFrom({}), '/etc/service');
});
