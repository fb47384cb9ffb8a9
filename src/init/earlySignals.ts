// The signals molt init acts on, and what catches them in a re-executed PID 1
// (issue 15) before molt init's own handlers exist. Node resets every signal's
// mask and disposition at its start (a signal kept blocked across execve is
// delivered there with SIG_DFL: dropped for PID 1, fatal otherwise), so the new
// molt cannot inherit pending signals from the kernel; instead this module,
// imported first by the CLI's entry, queues them from the first line of
// JavaScript on, and molt init replays them once it has adopted the services.
// No imports: it must run before anything else is loaded.

export const SHUTDOWN_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGQUIT'] as const;
// Relayed to CMD each time, as tini and dumb-init do. Not here: SIGPIPE (molt's own
// write to a closed stdout raises it; relayed, it would kill a CMD that never wrote
// there), and SIGILL, SIGTRAP, SIGBUS, SIGFPE and SIGSEGV: a handler for a real fault
// returns to the faulting instruction, so Node would spin instead of crash (its docs
// say so; a SIGSEGV handler also breaks V8's wasm bounds traps). Those still kill a
// molt that is not PID 1, and CMD then gets a parent-death TERM (see exec.ts).
export const RELAYED_SIGNALS = [
  'SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH', 'SIGALRM', 'SIGURG', 'SIGVTALRM', 'SIGXCPU', 'SIGXFSZ', 'SIGIO', 'SIGPWR',
  'SIGABRT', 'SIGSYS', 'SIGPROF', 'SIGSTKFLT',
] as const;
// Job control goes to CMD's whole process group, as a terminal would send it.
export const JOB_SIGNALS = ['SIGTSTP', 'SIGTTIN', 'SIGTTOU', 'SIGCONT'] as const;

/** Every signal molt init acts on (and so may hold across a re-exec). */
export const HANDLED_SIGNALS: readonly NodeJS.Signals[] = [...SHUTDOWN_SIGNALS, ...RELAYED_SIGNALS, ...JOB_SIGNALS];

// Kept on the global object: the image's bundle builds molt init apart from the
// CLI's entry, so this module may be loaded twice, and both copies must share one queue.
const shared = ((globalThis as Record<symbol, unknown>)[Symbol.for('molt.earlySignals')] ??= {
  early: [] as NodeJS.Signals[],
  listeners: new Map<NodeJS.Signals, () => void>(),
}) as { early: NodeJS.Signals[]; listeners: Map<NodeJS.Signals, () => void> };
const { early, listeners } = shared;

/** In a molt started to adopt (`init` with MOLT_ADOPT): queue every handled signal from now on. */
export function catchEarly(argv: string[], env: NodeJS.ProcessEnv): void {
  if (argv[0] !== 'init' || !env.MOLT_ADOPT || listeners.size) return;
  for (const sig of HANDLED_SIGNALS) {
    const f = () => void early.push(sig);
    process.on(sig, f);
    listeners.set(sig, f);
  }
}

/** molt init's handlers are in place: stop queueing, and take what came in the meantime. */
export function takeEarlySignals(): NodeJS.Signals[] {
  for (const [sig, f] of listeners) process.off(sig, f);
  listeners.clear();
  return early.splice(0);
}

catchEarly(process.argv.slice(2), process.env);
