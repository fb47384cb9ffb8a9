// runsv's `control/<c>` scripts, side by side: the same service directory run
// by Debian's runsv and by molt init, the same Debian `sv` commands sent to
// both, and the same record expected of which control scripts ran and which
// signals reached the service.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { run, runitSv, script, sleep, startMolt, stopAndWait, svStatus, tmpdir, waitFor } from '../helpers/molt.js';

const RUNSV = '/usr/bin/runsv';

/** A service whose run records the signals it traps, with control scripts whose exit codes a file sets. */
function makeService(dir: string): { serviceLog: string; controlLog: string; setCode(letter: string, code: number): void } {
  const serviceLog = path.join(dir, '..', `${path.basename(dir)}.service.log`);
  const controlLog = path.join(dir, '..', `${path.basename(dir)}.control.log`);
  const codes = path.join(dir, '..', `${path.basename(dir)}.codes`);
  fs.mkdirSync(codes, { recursive: true });
  script(
    path.join(dir, 'run'),
    `#!/bin/sh
echo start >> ${serviceLog}
trap 'echo got HUP >> ${serviceLog}' HUP
trap 'echo got INT >> ${serviceLog}' INT
trap 'echo got USR1 >> ${serviceLog}' USR1
trap 'echo got TERM >> ${serviceLog}; exit 0' TERM
while :; do sleep 0.05; done
`,
  );
  for (const letter of ['u', 't', 'd', 'x', 'h', 'i', '1']) {
    script(path.join(dir, 'control', letter), `#!/bin/sh\necho control ${letter} >> ${controlLog}\nexit $(cat ${codes}/${letter} 2>/dev/null || echo 1)\n`);
  }
  return {
    serviceLog,
    controlLog,
    setCode: (letter, code) => fs.writeFileSync(path.join(codes, letter), `${code}\n`),
  };
}

function lines(file: string): string[] {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

const sv = (cmd: string, dir: string) => assert.equal(run(runitSv, [cmd, dir]).status, 0, `sv ${cmd}`);

async function drive(dir: string, s: ReturnType<typeof makeService>): Promise<{ service: string[]; control: string[]; suppressed: string }> {
  const settle = () => sleep(400); // the run loop wakes every 50 ms to run its traps
  await waitFor('started', () => lines(s.serviceLog).includes('start'), 10_000);
  await settle();
  // control/h exits 0: no HUP. control/i and control/1 exit 1: INT and USR1 are sent.
  s.setCode('h', 0);
  sv('hup', dir);
  await settle();
  sv('interrupt', dir);
  await settle();
  sv('1', dir);
  await settle();
  // control/t exits 0: sv down sends no TERM (CONT only), runs control/d; the service keeps running, want down.
  s.setCode('t', 0);
  run(runitSv, ['-w', '1', 'down', dir]);
  await settle();
  const suppressed = svStatus(dir).replace(/\(pid \d+\) \d+s/, '(pid N) Ns');
  sv('kill', dir);
  await waitFor('down', () => svStatus(dir).startsWith('down:'), 5000);
  // control/t exits 1 again: up (control/u first), then down: control/t, TERM, control/d.
  s.setCode('t', 1);
  sv('up', dir);
  await waitFor('restarted', () => lines(s.serviceLog).filter((l) => l === 'start').length === 2, 5000);
  await settle();
  sv('down', dir);
  await waitFor('down again', () => svStatus(dir).startsWith('down:'), 5000);
  await settle();
  return { service: lines(s.serviceLog), control: lines(s.controlLog), suppressed };
}

test('control/<c> scripts: molt runs the same scripts at the same moments as runsv, and skips the same signals', async () => {
  const root = tmpdir('control');
  const viaRunsv = path.join(root, 'runit', 'svc');
  const viaMolt = path.join(root, 'molt', 'svc');
  const a = makeService(viaRunsv);
  const b = makeService(viaMolt);

  let runsv: ChildProcess | undefined;
  let expected: Awaited<ReturnType<typeof drive>>;
  try {
    runsv = spawn(RUNSV, [viaRunsv], { stdio: 'ignore', detached: true });
    expected = await drive(viaRunsv, a);
  } finally {
    if (runsv?.pid) process.kill(-runsv.pid, 'SIGKILL');
  }
  // What runit did, spelled out, so that a change in either is seen.
  assert.deepEqual(expected.control, ['control u', 'control h', 'control i', 'control 1', 'control t', 'control d', 'control u', 'control t', 'control d']);
  assert.deepEqual(expected.service, ['start', 'got INT', 'got USR1', 'start', 'got TERM']);
  assert.match(expected.suppressed, /^run: .*: \(pid N\) Ns, want down$/);

  const m = startMolt(['init'], { env: { MOLT_SERVICES: path.dirname(viaMolt) }, pidns: false });
  try {
    const got = await drive(viaMolt, b);
    assert.deepEqual(got.control, expected.control, 'the same control scripts, in the same order');
    assert.deepEqual(got.service, expected.service, 'the same signals reached the service');
    assert.equal(got.suppressed.replace(viaMolt, 'DIR'), expected.suppressed.replace(viaRunsv, 'DIR'), 'sv status while TERM was suppressed');
  } finally {
    await stopAndWait(m);
  }
});
