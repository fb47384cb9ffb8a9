// Property test of the updater's phases: random event sequences (poll results,
// stage/stop/swap/start that succeed or fail, the app crashing or exiting 42,
// the trial's end, deadlines passing, a full disk failing journal writes, and
// kill -9 of the updater at any point followed by recover()) drive the real
// phase tables (phases.ts) and the real Journal over an in-memory store. The
// driver below mirrors what apply.ts, rollback.ts, recover.ts and poll.ts do
// at each step; every phase change goes through Journal.enter, so a missing
// table row shows up as an "is not in the table" error.
//
// Invariants after every event:
// - the app is wanted up (the supervisor runs it) or a step is in progress with a deadline;
// - `current` always resolves (it names an installed version, or nothing before the first install);
// - the phase in memory is the phase state.json says;
// - there is a way out: with the disk free and every step succeeding, the updater gets back
//   to idle (or staged) with the app up, from wherever it is;
// - recover() after a kill -9 ends in one of the recovery table's phases, resting or with a step going.
// PROP_SEED=<n> replays one seed; the seed is printed on failure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { UpdatePhase } from '../../src/api/types.js';
import { Journal, JournalWriteError, type JournalStore, type UpdateTarget } from '../../src/update/journal.js';
import { canRecover, holdFor, isResting, judgeTrial, onStepFailure, recoveryFor, recoveryPhase, trialCapMs } from '../../src/update/phases.js';
import { mulberry32 as prng } from '../helpers/prng.js';


class MemStore implements JournalStore {
  text: string | undefined;
  full = false;
  read(): string | undefined {
    return this.text;
  }
  async write(_file: string, text: string): Promise<void> {
    if (this.full) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    this.text = text;
  }
}

/** A step's own failure that leaves its phase (rollback.ts lets it propagate). */
class StepError extends Error {}

type StepKind = 'stage' | 'stop' | 'swap' | 'start' | 'trial' | 'rollback';
interface Step {
  kind: StepKind;
  deadline: number;
  /** A trial's own observations, judged by the real judgeTrial. */
  start: number;
  upSince?: number;
  crashes: number;
}

const TRIAL_MS = 5000;
const CRASH_LIMIT = 2;

/** The world outside the updater: the store's symlinks, the supervised app, the source. */
interface World {
  installed: Set<string>;
  current: string | undefined;
  /** What the supervisor is told: up (it runs current, restarting it when it dies) or down. */
  appWant: 'up' | 'down';
  /** Versions that crash: their trial fails. */
  bad: Set<string>;
  newest: number;
  clock: number;
}

/** Every event is one second (ms below); a step's budget is its deadline, a trial's is judgeTrial's cap. */
const STEP_BUDGET: Record<StepKind, number> = { stage: 60_000, stop: 8000, swap: 2000, start: 5000, trial: trialCapMs(TRIAL_MS), rollback: 10_000 };
const BACKOFF_MS = 3000;

/** The updater process: its journal, its step in progress, what it remembers. A kill -9 drops all but the journal's store. */
class Driver {
  j: Journal;
  step: Step | undefined;
  failedTrials = new Map<string, string>();
  backoff = new Map<string, number>();

  constructor(
    readonly w: World,
    readonly store: MemStore,
  ) {
    this.j = new Journal('/nonexistent', store);
  }

  get phase(): UpdatePhase {
    return this.j.state.phase;
  }

  private begin(kind: StepKind): void {
    this.step = { kind, deadline: this.w.clock + STEP_BUDGET[kind], start: this.w.clock, upSince: this.w.clock, crashes: 0 };
  }

  /** A step's work threw: as core.runExclusive does for the update lane. */
  async guarded(work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (err) {
      if (!(err instanceof JournalWriteError) && !(err instanceof StepError)) throw err; // a table error: a phase without a way out
      this.step = undefined;
      if (!isResting(this.phase)) this.w.appWant = 'up'; // leftMidUpdate: the app runs what current says
    }
  }

  // ---- what poll.ts, stage.ts, apply.ts, rollback.ts and recover.ts do ----

  async poll(offer: string | undefined): Promise<void> {
    if (this.step) return;
    if (!isResting(this.phase)) return this.guarded(() => this.recover());
    const t = this.j.state.target;
    await this.guarded(async () => {
      if (this.phase === 'staged' && t) {
        if ((this.backoff.get(t.version) ?? -1) > this.w.clock) return;
        return this.apply();
      }
      if (offer === undefined || this.j.isBlocked(offer) || offer === this.w.current) return;
      if ((this.backoff.get(offer) ?? -1) > this.w.clock) return;
      const target: UpdateTarget = { version: offer, from: this.w.current, release: { version: offer, tag: offer, prerelease: false, locator: {} }, reason: 'policy', startedAt: '' };
      if (this.w.installed.has(offer)) return this.j.enter('staged', target);
      await this.j.enter('downloading', target);
      this.begin('stage');
    });
  }

  private async apply(): Promise<void> {
    await this.j.enter('stopping');
    this.begin('stop');
  }

  private fail(version: string): void {
    this.backoff.set(version, this.w.clock + BACKOFF_MS);
  }

  async outcome(ok: boolean): Promise<void> {
    const step = this.step;
    if (!step) return;
    const t = this.j.state.target!;
    this.step = undefined;
    await this.guarded(async () => {
      switch (step.kind) {
        case 'stage':
          if (ok) {
            this.w.installed.add(t.version);
            await this.j.enter('staged');
          } else {
            this.fail(t.version);
            await this.j.enter('idle', null);
          }
          return;
        case 'stop':
          if (ok) {
            this.w.appWant = 'down';
            await this.j.enter('swapping');
            this.begin('swap');
          } else {
            this.w.appWant = 'up';
            this.fail(t.version);
            await this.j.enter(onStepFailure.stopping);
          }
          return;
        case 'swap':
          if (ok) {
            this.w.current = t.version;
            await this.j.enter('starting');
            this.begin('start');
          } else {
            this.w.appWant = 'up';
            this.fail(t.version);
            await this.j.enter(onStepFailure.swapping);
          }
          return;
        case 'start':
          this.w.appWant = 'up';
          if (ok) {
            await this.j.enter('trial');
            this.begin('trial');
          } else {
            this.failedTrials.set(t.version, 'could not be started');
            await this.rollBack(t);
          }
          return;
        case 'trial': {
          // The trial's verdict is judgeTrial's; `ok` is time passing.
          const v = judgeTrial({ nowMs: this.w.clock, startMs: step.start, trialMs: TRIAL_MS, upSinceMs: step.upSince, crashes: step.crashes, crashLimit: CRASH_LIMIT, ready: false, readyMode: 'auto' });
          if (v.verdict === 'continue') {
            this.step = step;
          } else if (v.verdict === 'commit') {
            await this.j.enter('committed');
            await this.j.enter('idle', null);
          } else {
            this.failedTrials.set(t.version, v.reason);
            await this.rollBack(t);
          }
          return;
        }
        case 'rollback':
          if (ok) {
            this.w.current = t.from;
            this.w.appWant = 'up';
            this.j.block(t.version, t.failure ?? 'rolled back');
            await this.j.enter('idle', null);
          } else {
            throw new StepError('the swap back failed'); // left for the next poll's recovery
          }
          return;
      }
    });
  }

  private async rollBack(t: UpdateTarget): Promise<void> {
    await this.j.enter('rolling-back', { ...t, failure: t.failure ?? this.failedTrials.get(t.version) });
    this.begin('rollback');
  }

  /** The app's run died; the supervisor restarts it (it is wanted up). During a trial it is a death. */
  crash(): void {
    if (this.step?.kind !== 'trial') return;
    this.step.crashes++;
    this.step.upSince = this.w.clock;
  }

  /** A release that crashes dies at every look. */
  badDies(): void {
    const t = this.j.state.target;
    if (this.step?.kind === 'trial' && t && this.w.bad.has(t.version)) this.crash();
  }

  /** An exit 42 of the app: restart me into the staged release (watch.ts). */
  async exit42(): Promise<void> {
    if (this.step || this.phase !== 'staged' || !this.j.state.target) return;
    await this.guarded(() => this.apply());
  }

  async recover(): Promise<void> {
    const st = this.j.state;
    const t = st.target;
    const failed = t !== undefined && this.failedTrials.has(t.version);
    const plan = recoveryFor(st.phase, this.w.current, t?.version, t?.from, failed);
    const to = recoveryPhase(plan, t !== undefined && this.w.installed.has(t.version));
    switch (plan) {
      case 'idle':
      case 'keep-staged':
        return this.j.enter(to, to === 'idle' ? null : undefined, 'recovery');
      case 'restart-current':
        this.w.appWant = 'up';
        return this.j.enter(to, null, 'recovery');
      case 'resume-trial':
        await this.j.enter(to, undefined, 'recovery');
        this.begin('start');
        return;
      case 'roll-back':
        await this.j.enter(to, undefined, 'recovery');
        return this.rollBack(t!);
    }
  }
}

type Event = 'poll-none' | 'poll-new' | 'poll-new-bad' | 'ok' | 'fail' | 'deadline' | 'crash' | 'exit42' | 'disk-full' | 'disk-free' | 'kill9';
const EVENTS: Event[] = ['poll-none', 'poll-new', 'poll-new-bad', 'ok', 'ok', 'ok', 'fail', 'deadline', 'crash', 'exit42', 'disk-full', 'disk-free', 'kill9'];

interface Model {
  w: World;
  store: MemStore;
  d: Driver;
}

function newModel(): Model {
  const w: World = { installed: new Set(), current: undefined, appWant: 'up', bad: new Set(), newest: 0, clock: 0 };
  const store = new MemStore();
  return { w, store, d: new Driver(w, store) };
}

function cloneModel(m: Model): Model {
  const w: World = { ...m.w, installed: new Set(m.w.installed), bad: new Set(m.w.bad) };
  const store = new MemStore();
  store.text = m.store.text;
  store.full = m.store.full;
  const d = new Driver(w, store);
  d.j.state = structuredClone(m.d.j.state);
  d.step = m.d.step && { ...m.d.step };
  d.failedTrials = new Map(m.d.failedTrials);
  d.backoff = new Map(m.d.backoff);
  return { w, store, d };
}

async function apply(m: Model, e: Event, rnd: () => number): Promise<void> {
  const { w, d } = m;
  w.clock += 1000;
  d.badDies();
  switch (e) {
    case 'poll-none':
      return d.poll(undefined);
    case 'poll-new':
    case 'poll-new-bad': {
      const v = `v${++w.newest}`;
      if (e === 'poll-new-bad') w.bad.add(v);
      return d.poll(v);
    }
    case 'ok':
      return d.outcome(true);
    case 'fail':
      return d.outcome(false);
    case 'deadline':
      // Time passes up to the step's deadline: the step ends as it would (a stop that timed out fails, a trial gets its verdict).
      if (d.step) {
        w.clock = d.step.deadline;
        return d.outcome(d.step.kind === 'trial');
      }
      return;
    case 'crash':
      d.crash();
      return d.step?.kind === 'trial' ? d.outcome(true) : undefined;
    case 'exit42':
      return d.exit42();
    case 'disk-full':
      m.store.full = true;
      return;
    case 'disk-free':
      m.store.full = false;
      return;
    case 'kill9': {
      // Whatever the step in progress had done in the world may or may not have happened.
      const step = d.step;
      const t = d.j.state.target;
      if (step?.kind === 'stop' && rnd() < 0.5) w.appWant = 'down';
      if (step?.kind === 'swap' && t && rnd() < 0.5) w.current = t.version;
      if (step?.kind === 'rollback' && t && rnd() < 0.5) {
        w.appWant = 'down';
        if (rnd() < 0.5) w.current = t.from;
      }
      const persisted = m.store.text ? (JSON.parse(m.store.text) as { phase: UpdatePhase }).phase : 'idle';
      m.d = new Driver(w, m.store);
      await m.d.guarded(() => m.d.recover());
      const after = m.d.phase;
      assert.ok(after === persisted || canRecover(persisted, after), `recover() from ${persisted} ended in ${after}, not a recovery row`);
      assert.ok(isResting(after) || m.d.step !== undefined || after === persisted, `recover() from ${persisted} left ${after} with nothing going`);
      return;
    }
  }
}

function checkInvariants(m: Model, where: string): void {
  const { w, d } = m;
  assert.ok(w.appWant === 'up' || (d.step !== undefined && Number.isFinite(d.step.deadline)), `${where}: the app is down and no step with a deadline is going (phase ${d.phase})`);
  assert.ok(w.current === undefined || w.installed.has(w.current), `${where}: current names ${w.current}, which is not installed`);
  const persisted = m.store.text ? (JSON.parse(m.store.text) as { phase: UpdatePhase }).phase : 'idle';
  assert.equal(d.phase, persisted, `${where}: the phase in memory is what state.json says`);
  if (d.step === undefined && !isResting(d.phase)) assert.equal(w.appWant, 'up', `${where}: a phase nobody works on keeps the app up`);
  // The hold is a function of the persisted phase: an update in progress is always held.
  if (d.step && d.step.kind !== 'stage') assert.equal(holdFor(d.phase), 'apply', `${where}: a step of ${d.phase} runs without the hold`);
}

/** With the disk free and every step succeeding, the updater gets back to a resting phase with the app up. */
async function wayOut(m: Model, where: string): Promise<void> {
  const c = cloneModel(m);
  c.store.full = false;
  for (let i = 0; i < 40; i++) {
    if (c.d.step) {
      if (c.d.step.kind === 'trial') c.w.clock = c.d.step.deadline;
      await c.d.outcome(true);
    } else if (!isResting(c.d.phase) || (c.d.phase === 'staged' && c.d.j.state.target)) {
      c.w.clock += BACKOFF_MS; // past any backoff
      await c.d.poll(undefined);
    } else break;
  }
  assert.ok(c.d.phase === 'idle' && c.d.step === undefined && c.w.appWant === 'up', `${where}: no way out back to idle (stuck in ${c.d.phase}, step ${c.d.step?.kind ?? 'none'}, app ${c.w.appWant})`);
}

test('the updater phase table: random events, kill -9 anywhere, a full disk; the invariants hold after every event', async () => {
  /** `event@phase` pairs met, and the phases in which a journal write failed: the sequences must reach the hard cases. */
  const seen = new Set<string>();
  const seeds = process.env.PROP_SEED ? [Number(process.env.PROP_SEED)] : Array.from({ length: 300 }, (_, i) => (Date.now() + i * 7919) >>> 0);
  for (const seed of seeds) {
    const rnd = prng(seed);
    const m = newModel();
    const trace: string[] = [];
    try {
      for (let i = 0; i < 80; i++) {
        const e = EVENTS[Math.floor(rnd() * EVENTS.length)]!;
        trace.push(`${e}@${m.d.phase}`);
        seen.add(`${e}@${m.d.phase}${m.store.full ? ' full' : ''}`);
        await apply(m, e, rnd);
        const where = `after ${trace.length} events`;
        checkInvariants(m, where);
        await wayOut(m, where);
      }
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      assert.fail(`PROP_SEED=${seed}: ${msg}\nevents: ${trace.join(' ')}`);
    }
  }
  if (seeds.length > 1) {
    for (const hard of ['kill9@stopping', 'kill9@swapping', 'kill9@trial', 'kill9@rolling-back', 'fail@stopping', 'fail@swapping', 'ok@stopping full', 'ok@trial full', 'crash@trial full', 'kill9@trial full', 'exit42@staged']) {
      assert.ok(seen.has(hard), `the random sequences never reached ${hard}`);
    }
  }
});
