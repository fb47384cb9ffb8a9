import { test } from 'node:test';
import assert from 'node:assert/strict';
import { APP_ROUTES, peerRouteProblem, socketDirForGroup } from '../../src/api/peer.js';
import { matchRoute } from '../../src/api/routes.js';

test('root and the socket\'s owner may do everything', () => {
  for (const route of ['rollback', 'unblock', 'ready', 'status']) {
    assert.equal(peerRouteProblem(route, 0, 0, false), undefined);
    assert.equal(peerRouteProblem(route, 1234, 1234, false), undefined);
  }
});

test('a group member gets status, ready, check and update; rollback and unblock are refused', () => {
  for (const route of ['status', 'ready', 'check', 'update', 'healthz', 'blocked']) assert.equal(peerRouteProblem(route, 1000, 0, false), undefined, route);
  for (const route of ['rollback', 'unblock']) assert.match(peerRouteProblem(route, 1000, 0, false) ?? '', new RegExp(`^${route} is for root or the admin token; uid 1000`));
});

test('the admin token lifts a member to the admin calls; an unreadable peer gets the app calls only', () => {
  assert.equal(peerRouteProblem('rollback', 1000, 0, true), undefined);
  assert.match(peerRouteProblem('rollback', undefined, 0, false) ?? '', /uid unknown/);
  assert.equal(peerRouteProblem('ready', undefined, 0, false), undefined);
});

test('every route is either an app route or refused to members: a new route is admin until listed', () => {
  const all = ['GET /', 'GET /healthz', 'GET /metrics', 'GET /api/status', 'POST /api/check', 'POST /api/update', 'POST /api/rollback', 'POST /api/ready', 'GET /api/blocked', 'DELETE /api/blocked/1.0.0', 'DELETE /api/self/blocked/1.0.0', 'POST /api/notify'];
  const admin = all.map((l) => l.split(' ')).map(([m, p]) => matchRoute(m!, p!)).filter((r) => 'name' in r && !APP_ROUTES.has(r.name)).map((r) => (r as { name: string }).name);
  assert.deepEqual(admin, ['rollback', 'unblock', 'unblock-self']);
  assert.ok(peerRouteProblem('pause', 1000, 0, false));
});

test('socket directory: left alone when others or the group can search it; made group-searchable (never group-writable) when ours', () => {
  assert.deepEqual(socketDirForGroup('/run/molt', { mode: 0o40755, uid: 0, gid: 0 }, 100, 0), {});
  assert.deepEqual(socketDirForGroup('/run/molt', { mode: 0o40710, uid: 0, gid: 100 }, 100, 0), {});
  assert.deepEqual(socketDirForGroup('/run/molt', { mode: 0o40700, uid: 0, gid: 0 }, 100, 0), { mode: 0o710, chgrp: true });
  assert.deepEqual(socketDirForGroup('/run/molt', { mode: 0o40770, uid: 0, gid: 100 }, 100, 0), { mode: 0o750, chgrp: false });
  const p = socketDirForGroup('/run/x', { mode: 0o40700, uid: 5, gid: 0 }, 100, 0);
  assert.ok('problem' in p && p.problem.includes('belongs to uid 5'));
});
