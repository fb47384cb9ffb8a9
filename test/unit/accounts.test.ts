import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accountEnv, parseGroup, parsePasswd, resolveAccount, type AccountDb } from '../../src/common/accounts.js';
import { launchAs, serviceAccount } from '../../src/supervise/account.js';

// A small /etc: app is a member of molt and of users; a comment and a broken line are skipped.
const db: AccountDb = {
  passwd: parsePasswd(['root:x:0:0:root:/root:/bin/sh', '# comment', 'broken:line', 'app:x:1000:1000:App:/home/app:/bin/sh', 'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin', ''].join('\n')),
  group: parseGroup(['root:x:0:', 'app:x:1000:', 'molt:x:990:app,other', 'users:x:100:app', 'nogroup:x:65534:', 'bad:x:notanumber:app'].join('\n')),
};

test('passwd and group files parse to entries; malformed lines and comments are skipped', () => {
  assert.deepEqual(db.passwd.map((p) => p.name), ['root', 'app', 'nobody']);
  assert.deepEqual(db.passwd[1], { name: 'app', uid: 1000, gid: 1000, home: '/home/app' });
  assert.deepEqual(db.group.map((g) => g.name), ['root', 'app', 'molt', 'users', 'nogroup']);
  assert.deepEqual(db.group[2]!.members, ['app', 'other']);
});

test('chpst -u USER: the primary group alone (runit); the user file: plus its /etc/group memberships', () => {
  assert.deepEqual(resolveAccount('app', db, false), { uid: 1000, gid: 1000, groups: [1000], name: 'app', home: '/home/app' });
  assert.deepEqual(resolveAccount('app', db, true), { uid: 1000, gid: 1000, groups: [1000, 990, 100], name: 'app', home: '/home/app' });
});

test('USER:GROUP[:GROUP...]: exactly the listed groups, the first one the gid; names or numbers', () => {
  assert.deepEqual(resolveAccount('app:molt', db, true), { uid: 1000, gid: 990, groups: [990], name: 'app', home: '/home/app' });
  assert.deepEqual(resolveAccount('nobody:nogroup:users', db, true), { uid: 65534, gid: 65534, groups: [65534, 100], name: 'nobody', home: '/nonexistent' });
  assert.deepEqual(resolveAccount('app:4242', db, false), { uid: 1000, gid: 4242, groups: [4242], name: 'app', home: '/home/app' });
});

test('numeric forms: chpst :UID:GID, a uid with a passwd entry, a uid without one (group required)', () => {
  assert.deepEqual(resolveAccount(':65534:100', db, false), { uid: 65534, gid: 100, groups: [100], name: 'nobody', home: '/nonexistent' });
  assert.deepEqual(resolveAccount('1000', db, true), { uid: 1000, gid: 1000, groups: [1000, 990, 100], name: 'app', home: '/home/app' });
  assert.deepEqual(resolveAccount('5000:100', db, true), { uid: 5000, gid: 100, groups: [100], name: undefined, home: undefined });
  assert.match((resolveAccount('5000', db, true) as { problem: string }).problem, /uid 5000 has no \/etc\/passwd entry/);
  assert.match((resolveAccount(':x:1', db, true) as { problem: string }).problem, /bad numeric account/);
  assert.match((resolveAccount(':1000', db, true) as { problem: string }).problem, /bad numeric account/);
});

test('an unknown user or group is a problem in chpst\'s words', () => {
  assert.deepEqual(resolveAccount('ghost', db, true), { problem: 'unknown user/group: ghost' });
  assert.deepEqual(resolveAccount('app:ghosts', db, true), { problem: 'unknown user/group: app:ghosts' });
});

test('the user file: first line, trimmed; empty or unknown is a problem naming the file', () => {
  assert.equal(serviceAccount(undefined, () => db), undefined);
  assert.deepEqual(serviceAccount('app:molt\nignored\n', () => db), { account: { uid: 1000, gid: 990, groups: [990], name: 'app', home: '/home/app' } });
  assert.deepEqual(serviceAccount('  \n', () => db), { problem: 'user file is empty (want USER[:GROUP...])' });
  assert.deepEqual(serviceAccount('ghost\n', () => db), { problem: 'user ghost: unknown user/group: ghost' });
});

test('HOME, USER and LOGNAME follow the account; HOME is / for a uid without an entry', () => {
  assert.deepEqual(accountEnv({ uid: 1000, gid: 1000, groups: [1000], name: 'app', home: '/home/app' }), { HOME: '/home/app', USER: 'app', LOGNAME: 'app' });
  assert.deepEqual(accountEnv({ uid: 5000, gid: 100, groups: [100] }), { HOME: '/' });
});

test('launch: spawn\'s uid/gid when the gid is the only group; molt chpst with the numeric groups otherwise', () => {
  const base = { cmd: './run', args: ['a'], opts: { cwd: '/svc', env: { PATH: '/bin' } } };
  const direct = launchAs(base, { uid: 1000, gid: 990, groups: [990], name: 'app', home: '/home/app' }, ['node', 'molt.js']);
  assert.deepEqual(direct, { cmd: './run', args: ['a'], opts: { cwd: '/svc', env: { PATH: '/bin', HOME: '/home/app', USER: 'app', LOGNAME: 'app' }, uid: 1000, gid: 990 } });
  const via = launchAs(base, { uid: 1000, gid: 1000, groups: [1000, 990, 100], name: 'app', home: '/home/app' }, ['node', 'molt.js']);
  assert.equal(via.cmd, 'node');
  assert.deepEqual(via.args, ['molt.js', 'chpst', '-u', ':1000:1000:990:100', './run', 'a']);
  assert.equal(via.opts.uid, undefined);
  assert.equal((via.opts.env as NodeJS.ProcessEnv).HOME, '/home/app');
});
