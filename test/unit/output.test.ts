// Backpressure of service output, in process: a slow Writable as molt's stdout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Writable } from 'node:stream';
import { pipeCheckLines, pipeLines, WritableOutlet } from '../../src/supervise/output.js';

/** A stdout that takes nothing until open() is called. */
function stalledStdout(): { stream: Writable; got: Buffer[]; open: () => void } {
  const got: Buffer[] = [];
  let pending: (() => void)[] = [];
  let opened = false;
  const stream = new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _enc, cb) {
      got.push(chunk);
      if (opened) cb();
      else pending.push(cb);
    },
  });
  return {
    stream,
    got,
    open() {
      opened = true;
      const p = pending;
      pending = [];
      for (const cb of p) cb();
    },
  };
}

const tick = () => new Promise((r) => setImmediate(r));

test('a full stdout pauses the service stream; its drain resumes it; every line arrives in order', async () => {
  const out = stalledStdout();
  const outlet = new WritableOutlet(out.stream);
  const service = new PassThrough();
  pipeLines(service, Buffer.from('[svc] '), outlet);
  const lines = Array.from({ length: 200 }, (_, i) => `line ${i}`);
  for (const l of lines) service.write(l + '\n');
  await tick();
  assert.equal(service.isPaused(), true, 'reading stopped while stdout is full');
  assert.ok(out.got.length < lines.length, 'not everything was taken while stalled');
  out.open();
  for (let i = 0; i < 50 && out.got.length < lines.length; i++) await tick();
  assert.equal(Buffer.concat(out.got).toString(), lines.map((l) => `[svc] ${l}\n`).join(''));
});

test('a destroyed stdout lets paused readers go (their lines are dropped, never the process)', async () => {
  const out = stalledStdout();
  const outlet = new WritableOutlet(out.stream);
  const service = new PassThrough();
  pipeLines(service, Buffer.from('[svc] '), outlet);
  for (let i = 0; i < 100; i++) service.write(`line number ${i} of a service that writes a lot\n`);
  await tick();
  assert.equal(service.isPaused(), true);
  out.stream.destroy();
  for (let i = 0; i < 10 && service.isPaused(); i++) await tick();
  assert.equal(service.isPaused(), false);
  assert.equal(outlet.write(Buffer.from('late\n')), true, 'writes after the end are dropped quietly');
});

test("a check's output is dropped, not buffered, while stdout is full", async () => {
  const out = stalledStdout();
  const outlet = new WritableOutlet(out.stream);
  outlet.write(Buffer.alloc(2048)); // full now
  assert.equal(outlet.full(), true);
  const check = new PassThrough();
  pipeCheckLines(check, Buffer.from('[svc check] '), outlet, { budget: 16 * 1024 });
  for (let i = 0; i < 50; i++) check.write(`probe ${i}\n`);
  await tick();
  assert.equal(check.isPaused(), false, 'a check is never paused (it would time out)');
  assert.equal(out.got.length, 1, 'nothing more was queued behind the full stdout');
});
