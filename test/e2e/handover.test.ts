// MOLT_HANDOVER=overlap: the new version starts beside the old one on the
// sockets molt holds, and the old one stops only once the new one passed its
// trial. First the supervisor's part (the N/P/K control bytes, supervise/next,
// Debian's `sv` unaffected), then the updater's, under a loopback load.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { alive, run, runitSv, script, startMolt, stopAndWait, svStatus, tmpdir, waitFor } from '../helpers/molt.js';
import { freePort, makeStack, type Stack } from '../helpers/stack.js';
import { get, load } from '../helpers/load.js';
import { decodeStatus } from '../../src/supervise/status.js';
import { parseNext, type NextFile } from '../../src/supervise/handover.js';

/** Serves on the inherited fd 3, answers with its pid, says ready on fd 4 (notification-fd). */
const app = `#!${process.execPath}
const fs = require('node:fs');
const server = require('node:http').createServer((q, r) => r.end(JSON.stringify({ pid: process.pid }))).listen({ fd: 3 }, () => {
  fs.writeSync(4, '\\n');
  fs.closeSync(4);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`;

function mainPid(dir: string): number {
  try {
    const s = decodeStatus(fs.readFileSync(path.join(dir, 'supervise', 'status')));
    return s.state === 'run' ? s.pid : 0;
  } catch {
    return 0;
  }
}

function next(dir: string): NextFile | undefined {
  try {
    return parseNext(fs.readFileSync(path.join(dir, 'supervise', 'next'), 'utf8'));
  } catch {
    return undefined;
  }
}

function healthOf(dir: string): { pid: number; ready: boolean } | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'supervise', 'health'), 'utf8')) as { pid: number; ready: boolean };
  } catch {
    return undefined;
  }
}

function control(dir: string, letters: string): void {
  fs.writeFileSync(path.join(dir, 'supervise', 'control'), letters);
}

describe('handover: the supervisor runs a next instance beside the service', () => {
  test('N starts it on the same socket, P hands over (old one stopped), K stops it, sv down stops both; runit sv sees only the service', async () => {
    const services = tmpdir('handover');
    const dir = path.join(services, 'web');
    const port = await freePort();
    script(path.join(dir, 'run'), app);
    fs.writeFileSync(path.join(dir, 'listen'), `tcp 127.0.0.1:${port} http\n`);
    fs.writeFileSync(path.join(dir, 'notification-fd'), '4\n');
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services, MOLT_STOP_TIMEOUT: '2s' }, pidns: false });
    try {
      const first = await waitFor('web up', () => mainPid(dir), 10_000);
      await waitFor('web answers', async () => (await get(port)).ok, 10_000);
      assert.equal(next(dir), undefined, 'no supervise/next before any handover');
      const l = load(port);

      // N: a second instance, ready, beside the first.
      control(dir, 'N');
      const n1 = await waitFor('next ready', () => {
        const n = next(dir);
        return n?.phase === 'run' && n.ready ? n : undefined;
      }, 10_000);
      assert.notEqual(n1.pid, first);
      assert.equal(n1.generation, 1);
      assert.ok(alive(first) && alive(n1.pid), 'both instances run at once');
      assert.equal(mainPid(dir), first, 'the service is still the first instance');
      assert.match(svStatus(dir), new RegExp(`^run: ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: \\(pid ${first}\\) \\d+s`), 'runit sv reports the service, not the next instance');

      // P: the next one becomes the service; the old one gets TERM and goes.
      control(dir, 'P');
      await waitFor('handed over', () => mainPid(dir) === n1.pid, 5000);
      await waitFor('old instance gone', () => !alive(first), 5000);
      // supervise/next and health are rewritten after status: wait for each state asserted.
      await waitFor('supervise/next says none', () => next(dir)?.phase === 'none', 5000);
      assert.match(svStatus(dir), new RegExp(`\\(pid ${n1.pid}\\)`));
      await waitFor('readiness carried over to the service', () => {
        const h = healthOf(dir);
        return h?.pid === n1.pid && h.ready;
      }, 5000);

      // N then K: the next one is stopped, the service is untouched.
      control(dir, 'N');
      const n2 = await waitFor('second next', () => {
        const n = next(dir);
        return n?.phase === 'run' && n.generation === 2 && n.ready ? n : undefined;
      }, 10_000);
      control(dir, 'K');
      await waitFor('next stopped', () => next(dir)?.phase === 'down', 5000);
      assert.ok(!alive(n2.pid));
      assert.deepEqual(next(dir)?.exit, { code: 0, signal: 0 }, 'it stopped on its TERM handler');
      assert.equal(mainPid(dir), n1.pid);

      const { done, failures } = await l.stop();
      assert.deepEqual(failures, [], `${done} requests across two handovers, none failed`);

      // sv down during a handover stops both instances.
      control(dir, 'N');
      const n3 = await waitFor('third next', () => {
        const n = next(dir);
        return n?.phase === 'run' && n.generation === 3 && n.pid ? n : undefined;
      }, 10_000);
      assert.equal(run(runitSv, ['down', dir]).status, 0);
      await waitFor('both down', () => !alive(n1.pid) && !alive(n3.pid), 5000);
      await waitFor('next instance down', () => next(dir)?.phase === 'down', 5000);

      // N while the service is down is refused (nothing to overlap with).
      control(dir, 'N');
      await waitFor('refused', () => /handover refused: the service is not running service=web/.test(m.err()), 5000);
      assert.equal(next(dir)?.generation, 3);
    } finally {
      await stopAndWait(m);
    }
  });
});

async function hello(s: Stack): Promise<{ version: string; pid: number } | undefined> {
  const r = await get(s.port);
  return r.ok && r.body ? (JSON.parse(r.body) as { version: string; pid: number }) : undefined;
}

/** The example stack with MOLT_HANDOVER=overlap, a listen file, and `first` installed and committed. */
async function overlapStack(trial: string, first: string): Promise<{ s: Stack; appDir: string }> {
  const s = await makeStack({ MOLT_HANDOVER: 'overlap', MOLT_TRIAL: trial });
  const appDir = path.join(s.services, 'app');
  fs.writeFileSync(path.join(appDir, 'listen'), `tcp 127.0.0.1:${s.port} http\n`);
  try {
    s.publish(first);
    await waitFor(first, async () => (await hello(s))?.version === first, 30_000);
    await waitFor('idle', async () => (await s.status())?.phase === 'idle', 15_000);
  } catch (err) {
    await stopAndWait(s.molt);
    throw err;
  }
  return { s, appDir };
}

describe('handover: MOLT_HANDOVER=overlap updates', () => {
  test('the new version serves beside the old one, which stops only after the commit; a crashing one is stopped while the old one never was', async () => {
    const { s, appDir } = await overlapStack('2s', '1.0.0');
    try {
      const oldPid = mainPid(appDir);
      assert.ok(oldPid > 0);

      const versions = new Set<string>();
      const l = load(s.port, 20_000, (body) => versions.add((JSON.parse(body) as { version: string }).version));
      s.publish('1.1.0');
      // While the new one is on trial, the old one is still the service, and running.
      const during = await waitFor('next instance on trial', () => {
        const n = next(appDir);
        return n?.phase === 'run' && n.pid ? n : undefined;
      }, 30_000);
      assert.equal(mainPid(appDir), oldPid, 'the old version was not stopped to start the new one');
      assert.match(s.journal()?.phase ?? '', /^(starting|trial)$/);
      await waitFor('committed', async () => {
        const st = await s.status();
        return st?.phase === 'idle' && st.current === '1.1.0';
      }, 30_000);
      await waitFor('the instance that passed the trial is the service now', () => mainPid(appDir) === during.pid, 10_000);
      await waitFor('only 1.1.0 answers', async () => (await hello(s))?.pid === during.pid, 10_000);
      const r1 = await l.stop();
      assert.deepEqual(r1.failures, [], `${r1.done} requests during the update, none failed`);
      assert.ok(versions.has('1.0.0') && versions.has('1.1.0'), `both versions answered (${[...versions].join(', ')})`);
      assert.equal(fs.readFileSync(s.versionFile, 'utf8').trim(), '1.1.0');

      // A release that crashes at once: stopped and blocked; the running one is never touched.
      const servingPid = mainPid(appDir);
      const mains = new Set<number>();
      const watch = setInterval(() => mains.add(mainPid(appDir)), 20);
      const l2 = load(s.port, 20_000);
      s.publish('1.2.0', 'crash');
      try {
        await waitFor('1.2.0 blocked', async () => (await s.status())?.blocked.some((b) => b.version === '1.2.0'), 40_000);
        await waitFor('idle again', async () => (await s.status())?.phase === 'idle', 15_000);
      } finally {
        clearInterval(watch);
      }
      const r2 = await l2.stop();
      assert.deepEqual([...mains], [servingPid], 'the service kept the same process throughout');
      // The crashing release serves on the shared socket before it dies: a request it had accepted
      // is reset. The load has one request in flight, so each of its (crash limit) deaths can cost
      // at most one; the old version never lost one.
      assert.ok(r2.failures.length <= 2 && r2.failures.every((f) => f === 'ECONNRESET'), `${r2.done} requests, failed: ${r2.failures.join(' ')}`);
      assert.equal((await hello(s))?.version, '1.1.0');
      assert.equal(fs.readFileSync(s.versionFile, 'utf8').trim(), '1.1.0');
      assert.equal(fs.realpathSync(path.join(s.home, 'current')), fs.realpathSync(path.join(s.home, 'versions', '1.1.0')));
      const st = await s.status();
      assert.match(st!.blocked.find((b) => b.version === '1.2.0')!.reason, /crashed 2 times during its trial/);
      await waitFor('no next instance running', () => next(appDir)?.phase !== 'run', 10_000);

      // One that exits at once, perhaps before the updater ever sees it run: each death still counts.
      s.publish('1.3.0', 'exit');
      await waitFor('1.3.0 blocked', async () => (await s.status())?.blocked.some((b) => b.version === '1.3.0'), 60_000);
      assert.match((await s.status())!.blocked.find((b) => b.version === '1.3.0')!.reason, /crashed 2 times during its trial/);
      assert.equal(mainPid(appDir), servingPid, 'still the same process');
    } finally {
      await stopAndWait(s.molt);
    }
  });

  test('without a listen file it says so and stops then starts, as MOLT_HANDOVER=restart does', async () => {
    const s = await makeStack({ MOLT_HANDOVER: 'overlap', MOLT_TRIAL: '1s' });
    try {
      s.publish('2.0.0');
      await waitFor('2.0.0', async () => (await s.appVersion()) === '2.0.0', 30_000);
      await waitFor('idle', async () => (await s.status())?.phase === 'idle', 15_000);
      s.publish('2.1.0');
      await waitFor('2.1.0', async () => (await s.appVersion()) === '2.1.0', 30_000);
      assert.match(s.molt.out(), /overlapping handover not possible, stopping then starting version=2\.1\.0 why="the app has no listen file/);
      assert.equal(next(path.join(s.services, 'app')), undefined, 'no next instance was started');
    } finally {
      await stopAndWait(s.molt);
    }
  });

  test('kill -9 of the updater during an overlapping trial: the next instance is stopped and the update judged again from the service', async () => {
    const { s, appDir } = await overlapStack('3s', '3.0.0');
    try {
      const l = load(s.port, 20_000);
      s.publish('3.1.0');
      const n = await waitFor('next on trial', () => {
        const x = next(appDir);
        return x?.phase === 'run' && x.pid ? x : undefined;
      }, 30_000);
      const updater = mainPid(path.join(s.services, 'updater'));
      assert.ok(updater > 0);
      // kill -9 through the supervisor (the pid is in molt's namespace).
      control(path.join(s.services, 'updater'), 'k');
      await waitFor('updater restarted', () => {
        const p = mainPid(path.join(s.services, 'updater'));
        return p && p !== updater;
      }, 10_000);
      await waitFor('recovered and committed', async () => {
        const st = await s.status();
        return st?.phase === 'idle' && st.current === '3.1.0';
      }, 30_000);
      assert.match(s.molt.out(), /recovering an interrupted update phase=(trial|starting)/);
      const x = await waitFor('the orphaned next instance stopped', () => {
        const f = next(appDir);
        return f && f.phase !== 'run' ? f : undefined;
      }, 10_000);
      assert.notEqual(x.generation, undefined);
      assert.notEqual(mainPid(appDir), n.pid, 'the service was restarted on current rather than trusting an unjudged instance');
      assert.equal((await hello(s))?.version, '3.1.0');
      const r = await l.stop();
      assert.deepEqual(r.failures, [], `${r.done} requests across the kill and the recovery, none failed`);
    } finally {
      await stopAndWait(s.molt);
    }
  });
});
