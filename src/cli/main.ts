#!/usr/bin/env node
// molt's single entry point. Each command's module is imported only when that
// command runs, so PID 1 (`molt init`) never loads the updater's dependencies.
// First import: a re-executed PID 1 queues signals from its first line of JavaScript.
import '../init/earlySignals.js';

interface Command {
  summary: string;
  load: () => Promise<{ main: (argv: string[]) => Promise<number> }>;
}

const commands: Record<string, Command> = {
  init: { summary: 'init [-e CODE] [-p SIG] [--] [CMD ARGS...]   run as PID 1: reap, relay signals, supervise services', load: () => import('../init/main.js') },
  reexec: { summary: 'reexec [--wait] [NEW_MOLT]   PID 1 re-executes into NEW_MOLT (default: itself) without stopping a service; --wait: its answer', load: () => import('../init/reexecRequest.js') },
  sv: { summary: 'sv [-v] [-w SEC] COMMAND SERVICE...   control services (runit sv compatible)', load: () => import('../sv/main.js') },
  chpst: { summary: 'chpst [-u USER[:GROUP...]] [-U USER] [-e DIR] [-n INC] [-/ ROOT] [-b ARGV0] [-vP012] PROG...   run PROG as another user (runit chpst compatible)', load: () => import('../chpst/main.js') },
  publish: { summary: 'publish REF FILE... [--sign KEY]   push files to an OCI registry as a release artifact (and its signature)', load: () => import('../update/publish.js') },
  sign: { summary: 'sign FILE... --key KEY   write FILE.minisig (minisign key) or FILE.sig (PEM key) for MOLT_TRUST_KEYS', load: () => import('../update/trust/sign.js') },
  updater: { summary: 'updater   run the updater service (from services/updater/run)', load: () => import('../update/main.js') },
  status: { summary: 'status [--json]   show versions, trial, blocked releases and history', load: () => control('status') },
  check: { summary: 'check   look for a new release now', load: () => control('check') },
  update: { summary: 'update [VERSION]   update now (to VERSION, or the newest the policy allows)', load: () => control('update') },
  rollback: { summary: 'rollback   go back to the previous version', load: () => control('rollback') },
  ready: { summary: 'ready   tell molt the app is ready (ends its trial)', load: () => control('ready') },
  blocked: { summary: 'blocked   list blocked versions and why', load: () => control('blocked') },
  unblock: { summary: 'unblock VERSION [--fleet]   lift a block (--fleet: for every replica, through the registry)', load: () => fleet('unblock') },
  block: { summary: 'block VERSION [--fleet]   never install a release (--fleet: for every replica, through the registry)', load: () => fleet('block') },
  pause: { summary: 'pause [--fleet]   stop applying updates (still checking), here or for the fleet', load: () => fleet('pause') },
  resume: { summary: 'resume [--fleet]   apply updates again', load: () => fleet('resume') },
  health: { summary: 'health   exit 0 when the supervisor and the app are up (for HEALTHCHECK)', load: () => control('health') },
  demo: { summary: 'demo   an update, a trial and a rollback from a local release directory', load: () => import('../demo/main.js') },
  version: { summary: 'version   print molt\'s version', load: () => import('./version.js') },
};

const INIT_EXEC = '__init-exec';

/** The commands that talk to the running updater share one module. */
function control(name: string): Promise<{ main: (argv: string[]) => Promise<number> }> {
  return import('./control.js').then((m) => ({ main: (argv: string[]) => m.runControl(name, argv) }));
}

/** Fleet verdicts and pausing (fleet.ts); block and unblock without --fleet go on to control.ts. */
function fleet(name: string): Promise<{ main: (argv: string[]) => Promise<number> }> {
  return import('./fleet.js').then((m) => ({ main: (argv: string[]) => m.main(name, argv) }));
}

export function usage(): string {
  const lines = Object.values(commands).map((c) => `  molt ${c.summary}`);
  return `usage: molt COMMAND [ARGS...]\n\ncommands:\n${lines.join('\n')}\n  molt help   this list\n`;
}

async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-V') return (await commands.version!.load()).main([]);
  // Not a command: molt init starts CMD through it (the same file, so the bundled image works too).
  if (name === INIT_EXEC) return (await import('../init/exec.js')).main(rest);
  const cmd = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!cmd) {
    process.stderr.write(`molt: unknown command '${name}' (try 'molt help')\n`);
    return 2;
  }
  const mod = await cmd.load();
  return mod.main(rest);
}

run(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`molt: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
