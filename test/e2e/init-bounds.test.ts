// Durations past what a Node timer holds (2^31-1 ms, about 24.8 days) and
// unknown words: molt init refuses its own settings with one line and exit 2;
// a service file out of range is reported once and its default used.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { alive, molt, runitSv, run, script, sleep, startMolt, stopAndWait, tmpdir, waitFor } from '../helpers/molt.js';

describe('init: bounded durations and settings', () => {
  for (const [name, value, want] of [
    ['MOLT_STOP_TIMEOUT', '25d', /^molt init: MOLT_STOP_TIMEOUT="25d" is too long \(at most 24d/],
    ['MOLT_CHECK_INTERVAL', '25d', /^molt init: MOLT_CHECK_INTERVAL="25d" is too long/],
    ['SVWAIT', '3000000', /^molt init: SVWAIT="3000000" is too long/],
    ['MOLT_LOG_LEVEL', 'abc', /^molt init: MOLT_LOG_LEVEL="abc" must be one of error, warn, info, debug$/],
  ] as const) {
    test(`${name}=${value}: exit 2 with one line`, () => {
      const services = tmpdir('bounds');
      const r = molt(['init'], { MOLT_SERVICES: services, MOLT_LOG_LEVEL: 'info', [name]: value });
      assert.equal(r.status, 2, r.stderr);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, want);
    });
  }

  test('timeout-kill and check-interval of 25d: reported once, defaults used (no KILL at once, no check storm)', async () => {
    const services = tmpdir('bounds-svc');
    const dir = path.join(services, 'stubborn');
    const checks = path.join(services, 'checks');
    // TERM ignored through the exec: only a KILL stops it.
    script(path.join(dir, 'run'), "trap '' TERM\nexec sleep 1000\n");
    script(path.join(dir, 'check'), `echo x >> ${checks}\n`);
    fs.writeFileSync(path.join(dir, 'timeout-kill'), '25d\n');
    fs.writeFileSync(path.join(dir, 'check-interval'), '25d\n');
    const m = startMolt(['init'], { env: { MOLT_SERVICES: services, MOLT_CHECK_INTERVAL: '1h' }, pidns: false });
    try {
      const pid = await waitFor('run started', () => {
        const s = run(runitSv, ['status', dir]).stdout;
        const p = /^run: .*\(pid (\d+)\)/.exec(s);
        return p ? Number(p[1]) : undefined;
      }, 10_000);
      await sleep(1000);
      const checkRuns = fs.existsSync(checks) ? fs.readFileSync(checks, 'utf8').split('\n').length - 1 : 0;
      assert.equal(checkRuns, 0, 'check-interval 25d must not become a 1 ms timer');
      assert.equal(run(runitSv, ['down', dir]).status, 0);
      await sleep(1000);
      assert.ok(alive(pid), 'timeout-kill 25d must not KILL at once: the service ignores TERM and stays');
      assert.match(run(runitSv, ['status', dir]).stdout, /^run: .*want down, got TERM/);
      const warned = m.err().split('\n').filter((l) => /bad check-interval, using the default/.test(l));
      assert.equal(warned.length, 1, m.err());
      assert.match(warned[0]!, /too long/);
      assert.match(m.err(), /bad timeout-kill, using the default service=stubborn value=25d/);
      process.kill(pid, 'SIGKILL');
    } finally {
      await stopAndWait(m);
    }
  });
});
