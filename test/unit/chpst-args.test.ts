import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyEnvDir, parseChpstArgs, searchPath, USAGE } from '../../src/chpst/args.js';

test('-u takes its value attached or from the next word; options end at the program', () => {
  for (const argv of [['-u', 'app', 'prog', '-u', 'x'], ['-uapp', 'prog', '-u', 'x']]) {
    const r = parseChpstArgs(argv);
    assert.ok(r.ok);
    assert.equal(r.options.user, 'app');
    assert.deepEqual(r.options.prog, ['prog', '-u', 'x']);
  }
});

test('clustered flags, -U, -b, -e, -/, -n and --', () => {
  const r = parseChpstArgs(['-vP01', '-U', 'app:molt', '-b', 'name', '-e', '/env', '-/', '/root', '-n', '-5', '--', '-prog']);
  assert.ok(r.ok);
  assert.deepEqual(r.options, { verbose: true, newSession: true, close: [0, 1], envUser: 'app:molt', argv0: 'name', envDir: '/env', root: '/root', nice: -5, prog: ['-prog'] });
});

test('no program, an unknown option or a missing argument: usage (exit 100 in main)', () => {
  assert.deepEqual(parseChpstArgs(['-u', 'app']), { ok: false, stderr: USAGE });
  assert.deepEqual(parseChpstArgs(['-x', 'prog']), { ok: false, stderr: `chpst: illegal option -- x\n${USAGE}` });
  assert.deepEqual(parseChpstArgs(['-u']), { ok: false, stderr: `chpst: option requires an argument -- u\n${USAGE}` });
  const n = parseChpstArgs(['-n', 'lots', 'prog']);
  assert.ok(!n.ok && n.stderr.startsWith('chpst: bad nice value "lots"'));
});

test('runit options molt leaves out are refused by name, in one line', () => {
  for (const o of ['-m', '-l', '-L', '-o', '-V']) {
    const r = parseChpstArgs([o, '1', 'prog']);
    assert.ok(!r.ok);
    assert.equal(r.stderr.split('\n')[0], `chpst: option ${o} is not supported by molt chpst (it implements -u -U -b -e -/ -n -v -P -0 -1 -2)`);
  }
});

test('envdir: first line without trailing blanks, NUL as newline, an empty file unsets, dotfiles skipped', () => {
  const env = applyEnvDir({ KEEP: 'k', GONE: 'g' }, [
    { name: 'A', content: 'one  \t\ntwo\n' },
    { name: 'B', content: 'x\0y' },
    { name: 'GONE', content: '' },
    { name: '.hidden', content: 'h' },
    { name: 'EMPTYLINE', content: '\n' },
  ]);
  assert.deepEqual(env, { KEEP: 'k', A: 'one', B: 'x\ny', EMPTYLINE: '' });
});

test('the program is searched on PATH unless it has a slash', () => {
  const on = new Set(['/b/prog']);
  assert.equal(searchPath('prog', '/a:/b', (f) => on.has(f)), '/b/prog');
  assert.equal(searchPath('./run', '/a:/b', () => false), './run');
  assert.equal(searchPath('nothere', '/a:/b', (f) => on.has(f)), undefined);
});
