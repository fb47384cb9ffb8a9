// `molt sv [-v] [-w SEC] COMMAND SERVICE...`: runit's sv, same output and
// exit codes, so scripts written for sv work against molt and runsv alike.
// Two passes as in sv: send the command to every service, then (for -v and
// the LSB commands) poll every 420 ms until each is done or the wait ends.
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { moltVersion } from '../common/version.js';
import { parseArgs, USAGE } from './args.js';
import { planFor, type Plan } from './commands.js';
import { FatalError, Session } from './session.js';
import { exitCode, isPathName, isPathNameWhileWaiting } from './wait.js';

/** runit's sv polls the status this often while waiting. */
export const POLL_MS = 420;

export async function main(argv: string[]): Promise<number> {
  const parsed = parseArgs(argv, process.env, safeVersion());
  if (!parsed.ok) {
    fs.writeSync(2, parsed.stderr);
    return 100;
  }
  const o = parsed.options;
  const plan = planFor(o.action, o.verbose);
  if (!plan) {
    fs.writeSync(2, USAGE);
    return 100;
  }
  try {
    return await run(o.serviceDir, o.services, o.waitSec, plan);
  } catch (err) {
    if (!(err instanceof FatalError)) throw err;
    fs.writeSync(2, err.message);
    return 100;
  }
}

async function run(serviceDir: string, names: string[], waitSec: number, plan: Plan): Promise<number> {
  const startMono = performance.now();
  const startWall = Date.now();
  const sv = new Session(plan.letters[0] === 'x', startWall, startWall);
  // Services still in play: a failure, or being done, takes one out.
  const live = names.map(() => true);

  for (const [i, name] of names.entries()) {
    if (sv.enter(serviceDir, name, !isPathName(name))) {
      if (plan.act === 'control' && sv.control(plan.letters) === -1) live[i] = false;
      else if (plan.act === 'status') sv.status();
    } else {
      live[i] = false;
    }
    sv.leave();
  }

  if (plan.wait) {
    let nowMono = startMono;
    // Ends: every round either finishes services or brings the deadline
    // nearer, and past it each remaining service is timed out.
    for (;;) {
      const elapsedSec = (nowMono - startMono) / 1000;
      let done = true;
      for (const [i, name] of names.entries()) {
        if (!live[i]) continue;
        if (!sv.enter(serviceDir, name, !isPathNameWhileWaiting(name))) live[i] = false;
        else if (sv.check(plan.letters) !== 0) live[i] = false;
        else done = false;
        if (live[i] && elapsedSec > waitSec) {
          sv.timedOut(plan.killOnTimeout);
          live[i] = false;
        }
        sv.leave();
      }
      if (done) break;
      await sleep(POLL_MS);
      nowMono = performance.now();
      sv.nowWallMs = Date.now();
    }
  }
  return exitCode(sv.failures);
}

function safeVersion(): string {
  try {
    return moltVersion();
  } catch {
    return 'unknown';
  }
}
