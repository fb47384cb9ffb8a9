// The connection guard's decisions, pure: who is dropped for a newcomer, and how
// remote addresses are counted.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { admit, clientKey, type ConnView } from '../../src/api/guard.js';

const limits = { perClient: 3, total: 5 };
const c = (id: number, client: string, phase: ConnView['phase'], since: number): ConnView => ({ id, client, phase, since });

describe('admit', () => {
  test('under both limits: accepted, nobody dropped', () => {
    assert.deepEqual(admit([c(1, 'a', 'waiting', 0)], 'b', limits), { accept: true, evict: [] });
  });

  test('a client at its limit loses its own oldest waiting connection, not one of another client', () => {
    const conns = [c(1, 'b', 'waiting', 0), c(2, 'a', 'answering', 1), c(3, 'a', 'waiting', 5), c(4, 'a', 'waiting', 2)];
    assert.deepEqual(admit(conns, 'a', limits), { accept: true, evict: [4] });
  });

  test('full: the oldest waiting connection anywhere goes first, then one still sending its body', () => {
    const conns = [c(1, 'a', 'receiving', 0), c(2, 'b', 'waiting', 3), c(3, 'c', 'waiting', 1), c(4, 'd', 'answering', 0), c(5, 'e', 'waiting', 2)];
    assert.deepEqual(admit(conns, 'f', limits), { accept: true, evict: [3] });
    const noWaiting = conns.map((x) => (x.phase === 'waiting' ? { ...x, phase: 'answering' as const } : x));
    assert.deepEqual(admit(noWaiting, 'f', limits), { accept: true, evict: [1] });
  });

  test('connections being answered are never dropped: the newcomer is refused instead', () => {
    const busy = [1, 2, 3, 4, 5].map((i) => c(i, `x${i}`, 'answering', i));
    const v = admit(busy, 'f', limits);
    assert.equal(v.accept, false);
    const mine = [1, 2, 3].map((i) => c(i, 'a', 'answering', i));
    assert.equal(admit(mine, 'a', limits).accept, false);
  });

  test('a client at its limit in a full server: one of its own goes, and that frees the total too', () => {
    const conns = [c(1, 'a', 'waiting', 9), c(2, 'a', 'waiting', 8), c(3, 'a', 'waiting', 7), c(4, 'b', 'waiting', 0), c(5, 'c', 'waiting', 1)];
    assert.deepEqual(admit(conns, 'a', limits), { accept: true, evict: [3] });
  });

  test('a newcomer over the total whose own limit is not reached drops the oldest droppable one', () => {
    const conns = [c(1, 'a', 'waiting', 9), c(2, 'a', 'waiting', 8), c(3, 'b', 'answering', 0), c(4, 'b', 'waiting', 4), c(5, 'c', 'receiving', 1)];
    assert.deepEqual(admit(conns, 'd', limits), { accept: true, evict: [4] });
  });
});

describe('clientKey', () => {
  test('IPv4, IPv4-mapped, a Unix socket', () => {
    assert.equal(clientKey('127.0.0.2'), '127.0.0.2');
    assert.equal(clientKey('::ffff:10.1.2.3'), '10.1.2.3');
    assert.equal(clientKey(undefined), 'local');
  });

  test('IPv6 counts by its /64, however it is written', () => {
    assert.equal(clientKey('2001:db8:0:1::5'), '2001:db8:0:1::/64');
    assert.equal(clientKey('2001:DB8:0000:0001:aaaa:bbbb:cccc:dddd'), '2001:db8:0:1::/64');
    assert.equal(clientKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.equal(clientKey('::1'), '0:0:0:0::/64');
    assert.notEqual(clientKey('2001:db8:0:2::5'), clientKey('2001:db8:0:1::5'));
  });
});
