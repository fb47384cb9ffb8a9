// readServices against supervise/ directories written by the real supervisor
// (molt init) and by hand: state, pid, uptime, down files, log services, last exit.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readServices } from '../../src/api/services.js';
import { encodeStatus } from '../../src/supervise/status.js';
import { script, startMolt, waitFor, type Running } from '../helpers/molt.js';

describe('readServices', () => {
  let tmp: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-svc-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test('hand-written supervise files: states, down file, log service, exit record, junk', () => {
    const root = path.join(tmp, 'hand');
    const now = Date.parse('2026-03-01T12:00:00Z');
    const put = (dir: string, st: Parameters<typeof encodeStatus>[0]) => {
      fs.mkdirSync(path.join(root, dir, 'supervise'), { recursive: true });
      fs.writeFileSync(path.join(root, dir, 'supervise', 'status'), encodeStatus(st));
    };
    put('app', { stampMs: now - 3_700_000, pid: 321, paused: false, want: 'up', gotTerm: false, state: 'run' });
    put('app/log', { stampMs: now - 10_000, pid: 322, paused: true, want: 'up', gotTerm: false, state: 'run' });
    put('worker', { stampMs: now - 5_000, pid: 0, paused: false, want: 'up', gotTerm: false, state: 'down' });
    fs.writeFileSync(path.join(root, 'worker', 'supervise', 'exit'), '-1 9\n');
    put('cron', { stampMs: now - 1_000, pid: 0, paused: false, want: 'down', gotTerm: false, state: 'down' });
    fs.writeFileSync(path.join(root, 'cron', 'down'), '');
    fs.mkdirSync(path.join(root, 'new')); // not started yet
    fs.mkdirSync(path.join(root, '.hidden'));
    fs.writeFileSync(path.join(root, 'README'), 'not a service');
    fs.mkdirSync(path.join(root, 'broken', 'supervise'), { recursive: true });
    fs.writeFileSync(path.join(root, 'broken', 'supervise', 'status'), 'short');

    const got = readServices(root, now);
    assert.deepEqual(
      got.map((s) => [s.name, s.state, s.pid, s.seconds, s.normallyUp, s.want, s.paused ?? null, s.lastExit ?? null]),
      [
        ['app', 'up', 321, 3700, true, 'up', false, null],
        ['app/log', 'up', 322, 10, true, 'up', true, null],
        ['broken', 'unknown', undefined, undefined, true, undefined, null, null],
        ['cron', 'down', undefined, 1, false, 'down', false, null],
        ['new', 'unknown', undefined, undefined, true, undefined, null, null],
        ['worker', 'down', undefined, 5, true, 'up', false, { code: -1, signal: 9 }],
      ],
    );
    assert.ok(got.every((s) => !s.supervised), 'no supervisor holds these ok FIFOs');
    assert.equal(got[0]!.next, undefined, 'no handover: no next instance');
    assert.equal(got[0]!.since, new Date(now - 3_700_000).toISOString());
    assert.deepEqual(readServices(path.join(tmp, 'missing')), []);
  });

  test('a handover in progress shows its next instance; a finished one does not', () => {
    const root = path.join(tmp, 'handover');
    fs.mkdirSync(path.join(root, 'web', 'supervise'), { recursive: true });
    fs.writeFileSync(path.join(root, 'web', 'supervise', 'status'), encodeStatus({ stampMs: Date.now(), pid: 10, paused: false, want: 'up', gotTerm: false, state: 'run' }));
    const next = (f: object) => fs.writeFileSync(path.join(root, 'web', 'supervise', 'next'), JSON.stringify({ generation: 1, exit: null, since: '2026-11-22T00:00:00.000Z', ...f }) + '\n');
    next({ phase: 'run', pid: 11, ready: true });
    assert.deepEqual(readServices(root)[0]!.next, { pid: 11, ready: true, stopping: false, since: '2026-11-22T00:00:00.000Z' });
    next({ phase: 'stopping', pid: 11, ready: false });
    assert.equal(readServices(root)[0]!.next?.stopping, true);
    next({ phase: 'down', pid: 0, ready: false });
    assert.equal(readServices(root)[0]!.next, undefined);
    fs.writeFileSync(path.join(root, 'web', 'supervise', 'next'), 'garbage');
    assert.equal(readServices(root)[0]!.next, undefined);
  });

  test('directories supervised by molt init read as up and supervised, with the right pids', async () => {
    const root = path.join(tmp, 'live');
    script(path.join(root, 'app', 'run'), 'exec sleep 30\n');
    script(path.join(root, 'app', 'check'), 'exit 0\n');
    script(path.join(root, 'side2', 'run'), 'exec sleep 30\n');
    script(path.join(root, 'side2', 'check'), 'exit 1\n');
    fs.writeFileSync(path.join(root, 'side2', 'no-heal'), ''); // keep the failing check from restarting it
    script(path.join(root, 'side', 'run'), 'exec sleep 30\n');
    fs.writeFileSync(path.join(root, 'side', 'down'), '');
    let molt: Running | undefined;
    try {
      molt = startMolt(['init'], { env: { MOLT_SERVICES: root, MOLT_CHECK_INTERVAL: '200ms' }, pidns: false });
      const svc = await waitFor('app up', () => {
        const s = readServices(root);
        const side = s.find((x) => x.name === 'side' && x.state !== 'unknown' && x.supervised);
        return s.find((x) => x.name === 'app' && x.state === 'up' && x.supervised) && side && s;
      }, 10_000);
      const app = svc.find((x) => x.name === 'app')!;
      assert.ok(app.pid! > 1);
      assert.equal(fs.readFileSync(path.join(root, 'app', 'supervise', 'pid'), 'utf8').trim(), String(app.pid));
      // supervise/health as molt init writes it: the app passes its check, side2 fails its own.
      const checked = await waitFor('both checks run', () => {
        const s = readServices(root);
        const a = s.find((x) => x.name === 'app')?.health;
        const b = s.find((x) => x.name === 'side2')?.health;
        return a?.healthy === true && b?.healthy === false && s;
      }, 10_000);
      assert.equal(checked.find((x) => x.name === 'side2')!.health!.failures >= 1, true);
      const side = svc.find((x) => x.name === 'side')!;
      assert.equal(side.state, 'down');
      assert.equal(side.normallyUp, false);
      assert.equal(side.supervised, true);
    } finally {
      await molt?.kill('SIGTERM');
      await molt?.exited;
    }
    assert.equal(readServices(root).find((x) => x.name === 'app')!.supervised, false, 'after molt exits nobody holds ok');
  });
});
