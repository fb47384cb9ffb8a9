// The trial: watch the new version's instance (the service's run, or the next
// instance of an overlapping handover) and judge it with phases.judgeTrial.
import { spawn } from 'node:child_process';
import path from 'node:path';
import type { Trial, UpdaterCore } from './core.js';
import { log } from './core.js';
import { runsRelease } from './evidence.js';
import { judgeTrial } from './phases.js';

const TRIAL_POLL_MS = 100;

/** One look at the instance on trial: the service's run, or the next instance of an overlapping handover. */
export interface TrialSample {
  /** 0 while it is down. */
  pid: number;
  exitCode?: number;
  /** The supervisor's readiness of this very pid (notification-fd). */
  ready: boolean;
  /** The supervisor's own check result for this pid; null when it has none. */
  healthy: boolean | null;
  /** Deaths counted by the probe itself (an instance may die before any sample saw it run). */
  deaths?: number;
  /** The supervisor judged its check failed during the trial (unhealthy, or restarted to heal it). */
  checkFailed?: boolean;
  /** Since when (monotonic ms) the service's process has been up without running the release; pid is 0 meanwhile. */
  notRunningSinceMs?: number;
}

export interface TrialProbe {
  sample(): TrialSample;
  /** Bring a dead instance back (the supervisor does that by itself for the service's run). */
  revive?(): void;
}

/**
 * The service's run, as the supervisor reports it. A death is a new pid after another one,
 * or a `down` status with a stamp not seen before (other than `stoppedAt`, the stop before
 * this start): a run that exits at once may never be seen running by a 100 ms poll.
 */
export function runProbe(c: UpdaterCore, stoppedAt: number | undefined): TrialProbe {
  const downs = new Set<number>(stoppedAt !== undefined ? [stoppedAt] : []);
  let lastRunPid = 0;
  let countedSinceRun = false;
  let deaths = 0;
  // The release on trial is what `current` points at now; its run counts as up only once it runs it.
  const release = c.d.store.current();
  const releaseDir = release !== undefined ? path.join(c.d.store.home, 'versions', release) : undefined;
  const proven = new Set<number>();
  let saidWaiting = 0;
  let waitingSince: { pid: number; at: number } | undefined;
  const healsBefore = c.d.app.health()?.heals ?? 0;
  return {
    sample: () => {
      const s = c.d.app.status();
      const pid = s && s.state === 'run' ? s.pid : 0;
      const request = s?.lastExit?.code === 42; // a restart into a staged update, not a crash
      if (pid !== 0) {
        if (lastRunPid !== 0 && pid !== lastRunPid && !countedSinceRun && !request) deaths++;
        if (pid !== lastRunPid) countedSinceRun = false;
        lastRunPid = pid;
      } else if (s?.state === 'down' && !downs.has(s.stampMs)) {
        downs.add(s.stampMs);
        if (!request) deaths++;
        countedSinceRun = true;
      }
      const health = c.d.app.health();
      const mine = health && pid !== 0 && health.pid === pid ? health : undefined;
      const checkFailed = mine?.healthy === false || (health !== undefined && health.heals > healsBefore);
      if (pid !== 0 && releaseDir !== undefined && !proven.has(pid)) {
        const runs = runsRelease(pid, releaseDir, path.join(c.d.app.dir, 'run'));
        if (runs !== false) proven.add(pid);
        if (runs === undefined) log.warn("cannot look at the app's process in /proc: judging it by its pid alone", { pid });
        else if (!runs && saidWaiting !== pid) {
          saidWaiting = pid;
          log.info("the app's process does not run the release yet (still its run script, nothing of the release in its tree)", { version: release, pid });
        }
      }
      // Readiness from this very pid is evidence enough: it said so itself.
      const running = pid !== 0 && (releaseDir === undefined || proven.has(pid) || mine?.ready === true);
      if (pid === 0 || running) waitingSince = undefined;
      else if (waitingSince?.pid !== pid) waitingSince = { pid, at: performance.now() };
      return { pid: running ? pid : 0, exitCode: s?.lastExit?.code, ready: mine?.ready === true, healthy: mine ? mine.healthy : null, deaths, checkFailed, notRunningSinceMs: waitingSince?.at };
    },
  };
}

export async function runTrial(c: UpdaterCore, version: string, from: string | undefined, probe: TrialProbe): Promise<{ ok: true; why: string } | { ok: false; reason: string }> {
  const start = performance.now();
  const trial: Trial = { version, from, startedAt: new Date().toISOString(), startMono: start, deadlineMono: start + c.cfg.trialMs, crashes: 0, ready: false };
  c.trial = trial;
  log.info('trial started', { version, trial_ms: c.cfg.trialMs, ready: c.cfg.ready });
  let lastPid = 0;
  let upSince: number | undefined;
  try {
    for (;;) {
      if (c.stopped) return { ok: false, reason: 'the updater stopped during the trial' };
      const s = probe.sample();
      const pid = s.pid;
      const now = performance.now();
      if (s.deaths !== undefined && s.deaths > trial.crashes) {
        trial.crashes = s.deaths;
        log.warn('app died during its trial', { version, crashes: trial.crashes, code: s.exitCode });
      }
      if (pid !== lastPid) {
        if (s.deaths === undefined && lastPid !== 0 && s.exitCode !== 42) {
          // One death of the trial version (exit 42 is a request, not a crash).
          trial.crashes++;
          log.warn('app died during its trial', { version, crashes: trial.crashes, code: s.exitCode });
        }
        upSince = pid !== 0 ? now : undefined;
        lastPid = pid;
      }
      // The stay-up clock is what auto mode commits on; show it as the deadline.
      if (c.cfg.ready === 'auto') trial.deadlineMono = (upSince ?? now) + c.cfg.trialMs;
      // The supervisor's health state of this very run: s6 readiness, and its own check results.
      if (s.ready && !trial.ready) {
        trial.ready = true;
        log.info('app ready (notification-fd)', { version });
      }
      let checkPassed: boolean | undefined;
      const stayed = upSince !== undefined && now - upSince >= c.cfg.trialMs;
      if (stayed && !trial.ready && c.cfg.ready === 'auto' && c.d.app.hasCheck()) {
        checkPassed = s.healthy !== null ? s.healthy : await runCheckScript(c);
      }
      const v = judgeTrial({
        nowMs: now,
        startMs: trial.startMono,
        trialMs: c.cfg.trialMs,
        upSinceMs: upSince,
        crashes: trial.crashes,
        crashLimit: c.cfg.crashLimit,
        ready: trial.ready,
        readyMode: c.cfg.ready,
        checkPassed,
        checkFailed: s.checkFailed === true,
        notRunningSinceMs: s.notRunningSinceMs,
      });
      if (v.verdict === 'commit') return { ok: true, why: v.why };
      if (v.verdict === 'fail') return { ok: false, reason: v.reason };
      if (pid === 0) probe.revive?.();
      await new Promise((r) => setTimeout(r, TRIAL_POLL_MS));
    }
  } finally {
    c.trial = undefined;
    c.watchPid = c.d.app.status()?.pid ?? 0;
  }
}

export function runCheckScript(c: UpdaterCore): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('./check', [], { cwd: c.d.app.dir, stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.on('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code === 0);
    });
  });
}

/** overlapOldPid: the old version's pid during an overlapping handover; it keeps running if it still does. */
