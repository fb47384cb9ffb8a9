// Order between services: `depends` holds back a start until the services it
// names are up and ready (notification-fd), and a shutdown stops them in
// reverse order; `timeout-kill` bounds one service's stop.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { run, runitSv, script, sleep, startMolt, stopAndWait, svStatus, tmpdir, waitFor } from '../helpers/molt.js';

const lines = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n') : []);

describe('depends', () => {
  test('a service starts only once its dependency is ready, and at shutdown stops before it', async () => {
    const services = tmpdir('depends');
    const order = path.join(services, 'order.log');
    const db = path.join(services, 'db');
    // db takes 1 s to be ready and says so on fd 3; it stops slowly.
    script(path.join(db, 'run'), `trap 'echo "db got TERM" >> ${order}; exit 0' TERM\nsleep 1\necho "db ready" >> ${order}\necho >&3\nexec 3>&-\nwhile :; do sleep 0.05; done\n`);
    fs.writeFileSync(path.join(db, 'notification-fd'), '3\n');
    fs.writeFileSync(path.join(db, 'timeout-up'), '10s\n'); // ready well within it: never restarted
    // web and api depend on db; web reads db's readiness as it starts, and takes its time to stop.
    script(
      path.join(services, 'web', 'run'),
      `grep -q '"ready":true' ${db}/supervise/health && echo "web started, db ready" >> ${order} || echo "web started, db NOT ready" >> ${order}\n` +
        `trap 'sleep 0.5; echo "web stopped" >> ${order}; exit 0' TERM\nwhile :; do sleep 0.05; done\n`,
    );
    fs.writeFileSync(path.join(services, 'web', 'depends'), '# the database\ndb\n');
    script(path.join(services, 'api', 'run'), `echo "api started" >> ${order}\ntrap 'echo "api stopped" >> ${order}; exit 0' TERM\nwhile :; do sleep 0.05; done\n`);
    fs.writeFileSync(path.join(services, 'api', 'depends'), 'db\n');
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services } });
    try {
      await waitFor('both started', () => lines(order).includes('web started, db ready') && lines(order).includes('api started'), 15_000);
      assert.equal(lines(order)[0], 'db ready', 'nothing started before db was ready');
      assert.match(m.err(), /waiting for dependencies service=(api|web) on=db/);
      assert.match(m.err(), /dependencies ready, starting service=web/);
      assert.doesNotMatch(m.err(), /does not exist/, 'no false alarm for a dependency later in the listing');
      await m.kill('SIGTERM');
      assert.equal((await m.exited).code, 0);
      assert.doesNotMatch(m.err(), /timeout-up/);
      const o = lines(order);
      const dbTerm = o.indexOf('db got TERM');
      assert.ok(dbTerm > o.indexOf('web stopped') && dbTerm > o.indexOf('api stopped'), `db got its TERM after its dependants stopped: ${o.join(' | ')}`);
    } finally {
      await stopAndWait(m);
    }
  });

  test('a chain listed against its order (a needs b needs c) starts c, b, a, with nothing else happening', async () => {
    const services = tmpdir('depends-chain');
    const order = path.join(services, 'order.log');
    for (const [name, dep] of [['c', undefined], ['b', 'c'], ['a', 'b']] as const) {
      script(path.join(services, name, 'run'), `echo ${name} >> ${order}\nexec sleep 1000\n`);
      if (dep) fs.writeFileSync(path.join(services, name, 'depends'), `${dep}\n`);
    }
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services }, pidns: false });
    try {
      await waitFor('all three', () => lines(order).length === 3, 10_000);
      assert.deepEqual(lines(order), ['c', 'b', 'a']);
    } finally {
      await stopAndWait(m);
    }
  });

  test('a missing dependency holds the service back (said once) until it appears; a cycle starts without order', async () => {
    const services = tmpdir('depends-missing');
    script(path.join(services, 'jobs', 'run'), 'echo jobs up\nexec sleep 1000\n');
    fs.writeFileSync(path.join(services, 'jobs', 'depends'), 'queue\n');
    for (const [a, b] of [['ping', 'pong'], ['pong', 'ping']]) {
      script(path.join(services, a!, 'run'), `echo ${a} up\nexec sleep 1000\n`);
      fs.writeFileSync(path.join(services, a!, 'depends'), `${b}\n`);
    }
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services }, pidns: false });
    try {
      await waitFor('cycle started', () => m.out().includes('[ping] ping up') && m.out().includes('[pong] pong up'), 10_000);
      await waitFor('cycle said', () => /dependency cycle; starting without order service=p[io]ng/.test(m.err()), 5000);
      await waitFor('missing said', () => /waiting for a service that does not exist service=jobs dependency=queue/.test(m.err()), 5000);
      await sleep(1000);
      assert.doesNotMatch(m.out(), /jobs up/);
      assert.match(svStatus(path.join(services, 'jobs')), /^down: .*, normally up/);
      assert.equal(m.err().match(/does not exist/g)?.length, 1, 'said once');
      const staging = tmpdir('queue-staging');
      script(path.join(staging, 'queue', 'run'), 'exec sleep 1000\n');
      fs.renameSync(path.join(staging, 'queue'), path.join(services, 'queue'));
      await waitFor('jobs started', () => m.out().includes('[jobs] jobs up'), 10_000);
    } finally {
      await stopAndWait(m);
    }
  });

  test('a bad depends file is a clear error for that service only', async () => {
    const services = tmpdir('depends-bad');
    script(path.join(services, 'bad', 'run'), 'echo bad up\nexec sleep 1000\n');
    fs.writeFileSync(path.join(services, 'bad', 'depends'), '../../etc\n');
    script(path.join(services, 'good', 'run'), 'echo good up\nexec sleep 1000\n');
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services }, pidns: false });
    try {
      await waitFor('good up', () => m.out().includes('[good] good up'), 10_000);
      await waitFor('error', () => /bad depends file; service not started service=bad error="depends line 1 /.test(m.err()), 5000);
      assert.doesNotMatch(m.out(), /bad up/);
    } finally {
      await stopAndWait(m);
    }
  });
});

describe('timeout-up', () => {
  test('a service that does not say ready within timeout-up is restarted, and its dependants keep waiting', async () => {
    const services = tmpdir('timeout-up');
    const starts = path.join(services, 'starts');
    script(path.join(services, 'stuck', 'run'), `echo x >> ${starts}\nexec sleep 1000\n`);
    fs.writeFileSync(path.join(services, 'stuck', 'notification-fd'), '3\n');
    fs.writeFileSync(path.join(services, 'stuck', 'timeout-up'), '400\n');
    script(path.join(services, 'app', 'run'), 'echo app up\nexec sleep 1000\n');
    fs.writeFileSync(path.join(services, 'app', 'depends'), 'stuck\n');
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services }, pidns: false });
    try {
      await waitFor('restarted', () => lines(starts).length >= 2, 10_000);
      assert.match(m.err(), /not ready within timeout-up \(400 ms\), restarting service=stuck/);
      assert.doesNotMatch(m.out(), /app up/, 'its dependant still waits');
    } finally {
      await stopAndWait(m);
    }
  });
});

describe('timeout-kill', () => {
  test('sv down of a service that ignores TERM: KILL after timeout-kill; without the file it keeps waiting, as runit does', async () => {
    const services = tmpdir('timeout-kill');
    for (const name of ['bounded', 'patient']) script(path.join(services, name, 'run'), `trap '' TERM\necho up\nexec sleep 1000\n`);
    fs.writeFileSync(path.join(services, 'bounded', 'timeout-kill'), '300\n');
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services, MOLT_STOP_TIMEOUT: '2s' }, pidns: false });
    try {
      await waitFor('both up', () => m.out().includes('[bounded] up') && m.out().includes('[patient] up'), 10_000);
      run(runitSv, ['down', path.join(services, 'bounded'), path.join(services, 'patient')]);
      await waitFor('bounded down', () => svStatus(path.join(services, 'bounded')).startsWith('down:'), 5000);
      assert.match(m.err(), /did not stop within timeout-kill, killing service=bounded timeout_ms=300/);
      await sleep(1000);
      assert.match(svStatus(path.join(services, 'patient')), /^run: .*, want down, got TERM$/);
    } finally {
      await stopAndWait(m);
    }
  });
});
