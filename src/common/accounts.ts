// Users and groups from /etc/passwd and /etc/group, resolved the way runit's
// chpst resolves `-u user[:group...]`, with no getpwnam (Node has none): pure
// parsers and one pure resolver, and a thin reader of the two files at the edge.
import fs from 'node:fs';

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/** The credentials a process gets: uid, its gid, the supplementary groups, and who it is for HOME/USER. */
export interface Account {
  uid: number;
  gid: number;
  groups: number[];
  /** The user's name, when /etc/passwd has one for the uid. */
  name?: string;
  /** The user's home, when /etc/passwd has one for the uid. */
  home?: string;
}

const ID = /^\d{1,10}$/;

function id(text: string): number | undefined {
  if (!ID.test(text)) return undefined;
  const n = Number(text);
  return n <= 0xfffffffe ? n : undefined;
}

/** /etc/passwd lines (name:pw:uid:gid:gecos:home:shell); malformed lines and comments are skipped. */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 7 || !f[0] || f[0].startsWith('#')) continue;
    const uid = id(f[2]!);
    const gid = id(f[3]!);
    if (uid === undefined || gid === undefined) continue;
    out.push({ name: f[0], uid, gid, home: f[5]! });
  }
  return out;
}

/** /etc/group lines (name:pw:gid:member,member); malformed lines and comments are skipped. */
export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 4 || !f[0] || f[0].startsWith('#')) continue;
    const gid = id(f[2]!);
    if (gid === undefined) continue;
    out.push({ name: f[0], gid, members: f[3]!.split(',').map((m) => m.trim()).filter(Boolean) });
  }
  return out;
}

export interface AccountDb {
  passwd: PasswdEntry[];
  group: GroupEntry[];
}

/** A group by name, or a number that names no group taken as a gid. */
export function groupId(db: AccountDb, token: string): number | undefined {
  const g = db.group.find((e) => e.name === token);
  if (g) return g.gid;
  return id(token);
}

/**
 * `USER`, `USER:GROUP[:GROUP...]`, or chpst's numeric `:UID:GID[:GID...]`. With no
 * group given, `supplementary` says whether the user's /etc/group memberships are
 * added to its primary group (the `user` file: as a login does) or not (chpst: runit
 * sets the primary group alone). Listed groups are exactly the groups, the first the gid.
 * A USER that is a number naming no user is taken as a uid (a group must then be given).
 */
export function resolveAccount(spec: string, db: AccountDb, supplementary: boolean): Account | { problem: string } {
  const s = spec.trim();
  const unknown = { problem: `unknown user/group: ${s}` };
  if (s === '') return { problem: 'no user given' };
  if (s.startsWith(':')) {
    const parts = s.slice(1).split(':');
    const uid = id(parts[0]!);
    const gids = parts.slice(1).map(id);
    if (uid === undefined || gids.length === 0 || gids.some((g) => g === undefined)) return { problem: `bad numeric account ${s} (want :UID:GID[:GID...])` };
    const pw = db.passwd.find((e) => e.uid === uid);
    return { uid, gid: gids[0]!, groups: gids as number[], name: pw?.name, home: pw?.home };
  }
  const [user, ...groupTokens] = s.split(':');
  let pw = db.passwd.find((e) => e.name === user);
  if (!pw) {
    const uid = id(user!);
    if (uid === undefined) return unknown;
    pw = db.passwd.find((e) => e.uid === uid);
    if (!pw && groupTokens.length === 0) return { problem: `uid ${uid} has no /etc/passwd entry; give its group too (${uid}:GROUP)` };
    if (!pw) pw = { name: '', uid, gid: -1, home: '' };
  }
  if (groupTokens.length) {
    const gids = groupTokens.map((t) => groupId(db, t));
    if (gids.some((g) => g === undefined)) return unknown;
    return { uid: pw.uid, gid: gids[0]!, groups: gids as number[], name: pw.name || undefined, home: pw.home || undefined };
  }
  const groups = [pw.gid];
  if (supplementary) {
    for (const g of db.group) if (g.members.includes(pw.name) && !groups.includes(g.gid)) groups.push(g.gid);
  }
  return { uid: pw.uid, gid: pw.gid, groups, name: pw.name, home: pw.home };
}

/** /etc/passwd and /etc/group as they are now (a missing file reads as empty). */
export function readAccountDb(root = '/etc'): AccountDb {
  const read = (f: string) => {
    try {
      return fs.readFileSync(`${root}/${f}`, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
      throw err;
    }
  };
  return { passwd: parsePasswd(read('passwd')), group: parseGroup(read('group')) };
}

/** HOME, USER and LOGNAME for a process run as `a` (HOME / when the user has none, as login does). */
export function accountEnv(a: Account): Record<string, string> {
  const env: Record<string, string> = { HOME: a.home || '/' };
  if (a.name) {
    env.USER = a.name;
    env.LOGNAME = a.name;
  }
  return env;
}
