// The commands that talk to the running updater through its socket: status, check,
// update, rollback, ready, blocked, block, unblock, health. Exit 0 ok, 1 failed (with one
// line why), 2 usage.
import fs from 'node:fs';
import path from 'node:path';
import { healthProblem } from '../api/health.js';
import { readService } from '../api/services.js';
import type { ActionInfo, ServiceInfo, UpdaterStatus } from '../api/types.js';
import { versionProblem } from '../api/validate.js';
import { connect, MoltError, type MoltClient } from '../client/index.js';
import { ProgressReporter, formatBlocked, formatStatus } from './control-format.js';

const USAGE: Record<string, string> = {
  status: 'molt status [--json]',
  check: 'molt check',
  update: 'molt update [VERSION]',
  rollback: 'molt rollback',
  ready: 'molt ready',
  blocked: 'molt blocked [--json]',
  block: 'molt block VERSION [--reason TEXT]',
  unblock: 'molt unblock VERSION [--self]',
  health: 'molt health',
};

class UsageError extends Error {}

function out(s: string): void {
  process.stdout.write(s);
}
function err(s: string): void {
  process.stderr.write(s);
}

/** Flags and positional arguments of one command, refusing anything it does not take. */
function parseArgs(name: string, argv: string[], flags: string[], maxPositional: number): { flags: Set<string>; args: string[] } {
  const got = new Set<string>();
  const args: string[] = [];
  let rest = false;
  for (const a of argv) {
    if (!rest && a === '--') rest = true;
    else if (!rest && a.startsWith('-') && a !== '-') {
      if (!flags.includes(a)) throw new UsageError(`unknown option ${a}`);
      got.add(a);
    } else args.push(a);
  }
  if (args.length > maxPositional) throw new UsageError(`unexpected argument ${JSON.stringify(args[maxPositional])}`);
  void name;
  return { flags: got, args };
}

function client(): MoltClient {
  return connect({ timeoutMs: 10_000 });
}

/** Wait for a long action and report its result; progress to stderr, the result to stdout. */
async function follow(c: MoltClient, action: ActionInfo, what: string): Promise<number> {
  if (action.state === 'failed') {
    err(`molt: ${what} refused: ${action.message ?? 'no reason given'}\n`);
    return 1;
  }
  const tty = Boolean(process.stderr.isTTY);
  const reporter = new ProgressReporter(tty, action.version);
  err(`molt: ${what} started (${action.id})\n`);
  const onInt = () => {
    err(`${reporter.endBar()}molt: stopped waiting; ${what} goes on (see molt status)\n`);
    process.exit(130);
  };
  process.once('SIGINT', onInt);
  let done: ActionInfo;
  try {
    done = await c.waitFor(action.id, {
      intervalMs: 250,
      onStatus: (s: UpdaterStatus) => {
        const text = reporter.step(s, Date.now());
        if (text) err(text);
      },
    });
  } finally {
    process.off('SIGINT', onInt);
    err(reporter.endBar());
  }
  if (done.state === 'done') {
    out(`${done.message ?? `${what} done`}\n`);
    return 0;
  }
  err(`molt: ${what} failed: ${done.message ?? 'no reason given'}\n`);
  return 1;
}

async function status(argv: string[]): Promise<number> {
  const { flags } = parseArgs('status', argv, ['--json'], 0);
  const s = await client().status();
  out(flags.has('--json') ? JSON.stringify(s, null, 2) + '\n' : formatStatus(s, Date.now()));
  return 0;
}

async function check(argv: string[]): Promise<number> {
  parseArgs('check', argv, [], 0);
  const c = client();
  const code = await follow(c, await c.check(), 'check');
  if (code === 0) {
    const s = await c.status();
    if (s.available) out(`available: ${s.available}${s.waiting ? ` (waiting: ${s.waiting})` : ''}\n`);
    else out(`up to date${s.current ? ` at ${s.current}` : ''}\n`);
  }
  return code;
}

async function update(argv: string[]): Promise<number> {
  const { args } = parseArgs('update', argv, [], 1);
  const version = args[0];
  if (version !== undefined) {
    const problem = versionProblem(version);
    if (problem) throw new UsageError(`bad VERSION ${JSON.stringify(version)}: ${problem}`);
  }
  const c = client();
  let action = await c.update(version);
  if (action.state === 'failed') {
    // The same update may already be under way (the schedule or a webhook started it): follow it.
    const running = (await c.status()).actions.find((a) => a.kind === 'update' && a.state === 'running' && (version === undefined || a.version === version));
    if (running) {
      err(`molt: ${action.message ?? 'an update is already running'}; following it\n`);
      action = running;
    }
  }
  return follow(c, action, action.version ? `update to ${action.version}` : 'update');
}

async function rollback(argv: string[]): Promise<number> {
  parseArgs('rollback', argv, [], 0);
  const c = client();
  return follow(c, await c.rollback(), 'rollback');
}

async function ready(argv: string[]): Promise<number> {
  parseArgs('ready', argv, [], 0);
  const r = await client().ready();
  // Not being on trial is not an error: apps may report ready at every start.
  out(`${r.message}\n`);
  return 0;
}

async function blocked(argv: string[]): Promise<number> {
  const { flags } = parseArgs('blocked', argv, ['--json'], 0);
  const list = await client().blocked();
  out(flags.has('--json') ? JSON.stringify(list, null, 2) + '\n' : formatBlocked(list, Date.now()));
  return 0;
}

async function unblock(argv: string[]): Promise<number> {
  // --self: a version of molt itself (MOLT_SELF), blocked after its trial as PID 1.
  const { args, flags } = parseArgs('unblock', argv, ['--self'], 1);
  const version = args[0];
  if (version === undefined) throw new UsageError('VERSION is required');
  const problem = versionProblem(version);
  if (problem) throw new UsageError(`bad VERSION ${JSON.stringify(version)}: ${problem}`);
  const what = flags.has('--self') ? `molt ${version}` : version;
  if (!(await client().unblock(version, flags.has('--self') ? { of: 'molt' } : {}))) {
    err(`molt: ${what} is not blocked\n`);
    return 1;
  }
  out(`unblocked ${what}\n`);
  return 0;
}

async function block(argv: string[]): Promise<number> {
  // --reason takes a value; parseArgs takes flags only.
  let reason: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--reason') {
      reason = argv[++i];
      if (reason === undefined) throw new UsageError('--reason needs a value');
    } else if (a.startsWith('--reason=')) reason = a.slice('--reason='.length);
    else rest.push(a);
  }
  const { args } = parseArgs('block', rest, [], 1);
  const version = args[0];
  if (version === undefined) throw new UsageError('VERSION is required');
  const problem = versionProblem(version);
  if (problem) throw new UsageError(`bad VERSION ${JSON.stringify(version)}: ${problem}`);
  if (reason !== undefined && reason.length > 200) throw new UsageError('--reason is longer than 200 characters');
  const now = await client().block(version, reason);
  out(now ? `blocked ${version}: never installed until molt unblock ${version}\n` : `${version} was blocked already\n`);
  return 0;
}

/** For Docker's HEALTHCHECK: the updater answers, the app service is up under a live
 *  supervisor (read from its supervise/ directory), and no update is failing. */
async function health(argv: string[]): Promise<number> {
  parseArgs('health', argv, [], 0);
  const appName = process.env.MOLT_APP || 'app';
  const servicesDir = process.env.MOLT_SERVICES || process.env.SVDIR || '/etc/service';
  const c = connect({ timeoutMs: 5_000 });
  let s: UpdaterStatus;
  let verdict: { ok: boolean; error?: string };
  try {
    // The updater's own verdict (it knows which actions it refused outright), then the
    // app's supervise/ directory read here, so that a dead supervisor is seen too.
    verdict = await c.health();
    s = await c.status();
  } catch (e) {
    err(`molt: unhealthy: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  const dir = path.join(servicesDir, appName);
  const app: ServiceInfo | null = fs.existsSync(dir) ? readService(dir, appName) : null;
  const local = app ? healthProblem({ ...s, actions: [] }, app, appName) : `no service directory ${dir}`;
  const problem = local ?? (verdict.ok ? undefined : verdict.error ?? 'unhealthy');
  if (problem) {
    err(`molt: unhealthy: ${problem}\n`);
    return 1;
  }
  out(`healthy: ${appName} up${app?.seconds !== undefined ? ` for ${app.seconds}s` : ''}${s.current ? `, version ${s.current}` : ''}\n`);
  return 0;
}

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = { status, check, update, rollback, ready, blocked, block, unblock, health };

export async function runControl(name: string, argv: string[]): Promise<number> {
  const cmd = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!cmd) {
    err(`molt: unknown command '${name}'\n`);
    return 2;
  }
  if (argv.includes('--help') || argv.includes('-h')) {
    out(`usage: ${USAGE[name]}\n`);
    return 0;
  }
  try {
    return await cmd(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      err(`molt: ${e.message} (usage: ${USAGE[name]})\n`);
      return 2;
    }
    if (e instanceof MoltError) {
      err(`molt: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
