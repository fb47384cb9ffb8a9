// A service directory's `user` file: its programs (run, finish, check, the next
// instance) run as USER[:GROUP...] (chpst -u's forms), with the user's groups
// and HOME. Resolved at every start from /etc/passwd and /etc/group, as runsv
// reads run afresh. Node's spawn sets uid and gid but clears the supplementary
// groups; a user with more groups than its gid is started through `molt chpst`,
// which sets them all and execs the program in place (same pid).
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { accountEnv, readAccountDb, resolveAccount, type Account, type AccountDb } from '../common/accounts.js';

export type ServiceAccount = { account: Account } | { problem: string } | undefined;

/** The `user` file's text (undefined: no file) resolved against the account database. */
export function serviceAccount(text: string | undefined, db: () => AccountDb): ServiceAccount {
  if (text === undefined) return undefined;
  const spec = text.split('\n')[0]!.trim();
  if (spec === '') return { problem: 'user file is empty (want USER[:GROUP...])' };
  // As a login does: the user's own memberships in /etc/group, unless groups are listed.
  const a = resolveAccount(spec, db(), true);
  return 'problem' in a ? { problem: `user ${spec}: ${a.problem}` } : { account: a };
}

export function readServiceAccount(text: string | undefined): ServiceAccount {
  return serviceAccount(text, () => readAccountDb());
}

export interface Launch {
  cmd: string;
  args: string[];
  opts: SpawnOptions;
}

/**
 * How to start `cmd args` as `a`: spawn's own uid/gid when the gid is the only group,
 * else through `molt chpst -u :UID:GID[:GID...]` (`molt` is the command that runs molt).
 */
export function launchAs(l: Launch, a: Account, molt: string[]): Launch {
  const env = { ...(l.opts.env ?? process.env), ...accountEnv(a) };
  if (a.groups.every((g) => g === a.gid)) return { cmd: l.cmd, args: l.args, opts: { ...l.opts, env, uid: a.uid, gid: a.gid } };
  const spec = `:${a.uid}:${[a.gid, ...a.groups.filter((g) => g !== a.gid)].join(':')}`;
  return { cmd: molt[0]!, args: [...molt.slice(1), 'chpst', '-u', spec, l.cmd, ...l.args], opts: { ...l.opts, env } };
}

/** The command that runs molt itself: this node and this entry script. */
export function moltCommand(): string[] {
  return [process.execPath, process.argv[1]!];
}

/** The `user` file of a service directory, resolved now; an unreadable file or database is a problem too. */
export function accountOf(files: { readIfThere(name: string): string | undefined }): ServiceAccount {
  let text: string | undefined;
  try {
    text = files.readIfThere('user');
  } catch (err) {
    return { problem: `cannot read user file: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
  }
  try {
    return readServiceAccount(text);
  } catch (err) {
    return { problem: `cannot read /etc/passwd or /etc/group: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
  }
}

type Spawn = (cmd: string, args: string[], opts: SpawnOptions) => ChildProcess;

/** `spawn` that runs everything as the account of the moment; an unusable account throws (nothing started). */
export function spawnAsAccount(spawn: Spawn, account: () => ServiceAccount, molt: string[] | undefined): Spawn {
  return (cmd, args, opts) => {
    const acct = account();
    if (acct && 'problem' in acct) throw new Error(acct.problem);
    const l = acct ? launchAs({ cmd, args, opts }, acct.account, molt ?? moltCommand()) : { cmd, args, opts };
    return spawn(l.cmd, l.args, l.opts);
  };
}
