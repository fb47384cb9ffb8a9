// `molt chpst [-u user[:group...]] ... prog`: runit's chpst for run scripts. It
// changes this process's state (envdir, nice, chroot, session, groups, gid, uid,
// in chpst's order) and then execs prog in place, so prog keeps chpst's pid as
// under runit. Exit codes as chpst's: 100 usage, 111 when a change or the exec fails.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readAccountDb, resolveAccount, type Account } from '../common/accounts.js';
import { native } from '../common/native.js';
import { errorText } from '../sv/errors.js';
import { applyEnvDir, parseChpstArgs, searchPath, type ChpstOptions } from './args.js';

class Fatal extends Error {}

function account(spec: string, db: ReturnType<typeof readAccountDb>): Account {
  // chpst's rule: the user's primary group alone unless groups are listed.
  const a = resolveAccount(spec, db, false);
  if ('problem' in a) throw new Fatal(a.problem);
  return a;
}

function readEnvDir(dir: string): { name: string; content: string }[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    throw new Fatal(`unable to switch to directory: ${dir}: ${(err as NodeJS.ErrnoException).code}`);
  }
  return names.map((name) => {
    try {
      return { name, content: fs.readFileSync(path.join(dir, name), 'utf8') };
    } catch (err) {
      throw new Fatal(`unable to read ${path.join(dir, name)}: ${(err as NodeJS.ErrnoException).code}`);
    }
  });
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function apply(o: ChpstOptions): never {
  const db = o.user || o.envUser ? readAccountDb() : undefined;
  let env: Record<string, string | undefined> = { ...process.env };
  if (o.envUser) {
    const a = account(o.envUser, db!);
    env.UID = String(a.uid);
    env.GID = String(a.gid);
  }
  if (o.envDir) env = applyEnvDir(env, readEnvDir(o.envDir));
  const user = o.user ? account(o.user, db!) : undefined;
  const n = native();
  const step = (what: string, f: () => void) => {
    try {
      f();
    } catch (err) {
      throw new Fatal(`unable to ${what}: ${(err as Error).message}`);
    }
  };
  if (o.nice !== undefined) step('set nice value', () => os.setPriority(Math.max(-20, Math.min(19, os.getPriority() + o.nice!))));
  if (o.root) {
    step('change root', () => n.chroot(o.root!));
    step('change directory', () => process.chdir('/'));
  }
  if (o.newSession) step('create session', () => n.setsid());
  if (user) {
    // Groups first, uid last: after setuid nothing else may change.
    step('setgroups', () => process.setgroups!(user.groups));
    step('setgid', () => process.setgid!(user.gid));
    step('setuid', () => process.setuid!(user.uid));
  }
  const prog = o.prog[0]!;
  const file = searchPath(prog, env.PATH, isExecutable);
  if (!file) throw new Fatal(`unable to run: ${prog}: file does not exist`);
  if (o.verbose) fs.writeSync(2, `chpst: exec ${file}\n`);
  for (const fd of o.close) {
    try {
      fs.closeSync(fd);
    } catch {
      // already closed: what -0/-1/-2 want
    }
  }
  const argv = [o.argv0 ?? prog, ...o.prog.slice(1)];
  const envList = Object.entries(env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`]));
  const err = n.execve(file, argv, envList);
  // runit's wording for the errno ("file does not exist"), as its chpst prints it.
  throw new Fatal(`unable to run: ${prog}: ${errorText(err.errno)}`);
}

export async function main(argv: string[]): Promise<number> {
  const parsed = parseChpstArgs(argv);
  if (!parsed.ok) {
    fs.writeSync(2, parsed.stderr);
    return 100;
  }
  try {
    apply(parsed.options);
  } catch (err) {
    if (!(err instanceof Fatal)) throw err;
    fs.writeSync(2, `chpst: fatal: ${err.message}\n`);
    return 111;
  }
}
