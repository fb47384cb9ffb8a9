// PID 1 must not buffer service output without bound: with molt's stdout a
// pipe nobody reads (a stalled log collector), a service writing 200 MB is
// slowed down (it blocks on its own write) instead of growing molt's memory,
// and every line arrives once the reader drains.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cli, descendantsOf, script, sleep, tmpdir, waitFor } from '../helpers/molt.js';

const LINE = 'abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz'; // 62 bytes + newline
const LINES = 3_200_000; // about 200 MB from the service, more with the prefix
const RSS_BOUND_MB = 150;

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

test('a stalled stdout pauses the service; molt stays bounded and nothing is lost', { timeout: 180_000 }, async () => {
  const services = tmpdir('flood');
  const done = path.join(services, 'flood-done');
  script(path.join(services, 'flood', 'run'), `yes '${LINE}' | head -n ${LINES}\necho LAST\ntouch ${done}\nexec sleep 1000\n`);
  // molt's stdout is a pipe the test does not read yet.
  const proc = spawn(process.execPath, [cli, 'init'], {
    env: { ...process.env, MOLT_SERVICES: services, MOLT_LOG_LEVEL: 'info', MOLT_STOP_TIMEOUT: '2s' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  try {
    await waitFor('the service started', () => /starting service|service started|flood/.test(err) || descendantsOf(proc.pid!).length > 0, 10_000);
    // Stalled: sample molt's memory for a while; the service must be held back, not buffered.
    let peak = 0;
    for (let i = 0; i < 30; i++) {
      await sleep(200);
      peak = Math.max(peak, rssMb(proc.pid!));
      if (peak > RSS_BOUND_MB || fs.existsSync(done)) break;
    }
    assert.ok(peak < RSS_BOUND_MB, `molt's RSS reached ${Math.round(peak)} MB while its stdout was stalled`);
    assert.ok(!fs.existsSync(done), 'the service could not write 200 MB into a stalled stdout: it was held back');

    // Drain: every line arrives, in order, the last one last.
    let count = 0;
    let tail = '';
    let bad = 0;
    const want = `[flood] ${LINE}`;
    let gotLast = false;
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      const parts = (tail + d).split('\n');
      tail = parts.pop()!;
      for (const l of parts) {
        if (l === want) count++;
        else if (l === '[flood] LAST') gotLast = true;
        else bad++;
      }
    });
    await waitFor(`the last line (${LINES} before it)`, () => gotLast, 150_000, 100);
    assert.equal(count, LINES, 'every line arrived');
    assert.equal(bad, 0, 'no line was cut or mixed');
    await waitFor('the service went on after its output drained', () => fs.existsSync(done), 10_000);
  } finally {
    proc.stdout!.resume();
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(t);
  }
});
