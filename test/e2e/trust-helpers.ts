// What the signed-release end-to-end tests share (updater-trust, updater-attacks):
// keys made by Debian's minisign, a loopback notification sink, and the check
// that a release was refused with its reason while the running version runs on.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { freePort } from '../helpers/registry.js';
import { packHello, type Stack } from './updater-stack.js';

/** Debian's minisign, in `dir`, never prompting (-W keys have no password). */
export function minisign(dir: string, ...args: string[]): void {
  execFileSync('minisign', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
}

/** minisign's key id as molt shows it: 16 uppercase hex digits. */
export function keyIdOf(pubFile: string): string {
  return /minisign public key ([0-9A-F]{1,16})/.exec(fs.readFileSync(pubFile, 'utf8'))![1]!.padStart(16, '0');
}

export interface Keys {
  dir: string;
  trustedPub: string;
  trustedKey: string;
  strangerKey: string;
  trustedId: string;
  strangerId: string;
}

export function makeKeys(root: string): Keys {
  const dir = path.join(root, 'keys');
  fs.mkdirSync(dir, { recursive: true });
  minisign(dir, '-G', '-W', '-p', 'trusted.pub', '-s', 'trusted.key');
  minisign(dir, '-G', '-W', '-p', 'stranger.pub', '-s', 'stranger.key');
  return {
    dir,
    trustedPub: path.join(dir, 'trusted.pub'),
    trustedKey: path.join(dir, 'trusted.key'),
    strangerKey: path.join(dir, 'stranger.key'),
    trustedId: keyIdOf(path.join(dir, 'trusted.pub')),
    strangerId: keyIdOf(path.join(dir, 'stranger.pub')),
  };
}

/** hello VERSION packed in build/VERSION/, signed by the minisign `key` unless null; returns the tarball's path there. */
export function packSigned(build: string, version: string, key: string | null, behaviour: 'ok' | 'crash' = 'ok'): string {
  const out = path.join(build, version);
  const tarball = packHello(version, out, behaviour);
  if (key) minisign(out, '-S', '-s', key, '-m', path.basename(tarball));
  return tarball;
}

/** Into the MOLT_DIR `releases` as `as`, signature first, so that a poll never sees the tarball without it. */
export function publishDir(releases: string, tarball: string, as = path.basename(tarball)): void {
  if (fs.existsSync(`${tarball}.minisig`)) fs.copyFileSync(`${tarball}.minisig`, path.join(releases, `${as}.minisig`));
  fs.copyFileSync(tarball, path.join(releases, `.${as}.tmp`));
  fs.renameSync(path.join(releases, `.${as}.tmp`), path.join(releases, as));
}

/** A loopback MOLT_NOTIFY_URL that keeps every body it receives. */
export async function notifySink(): Promise<{ url: string; bodies: string[]; close(): Promise<void> }> {
  const bodies: string[] = [];
  const port = await freePort();
  const srv = http.createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8').on('data', (d: string) => (text += d));
    req.on('end', () => {
      bodies.push(text);
      res.end('ok');
    });
  });
  await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${port}/hook`, bodies, close: () => new Promise<void>((r) => srv.close(() => r())) };
}

export function appPid(stack: Stack): string {
  return fs.readFileSync(path.join(stack.services, 'app', 'supervise', 'pid'), 'utf8').trim();
}

export async function metric(stack: Stack, name: string): Promise<number | undefined> {
  const r = await stack.api('GET', '/metrics');
  const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(r.text);
  return m ? Number(m[1]) : undefined;
}

/** The running version is untouched and `version` is refused with exactly `reason`, once. */
export async function assertRefused(stack: Stack, notes: { bodies: string[] }, version: string, reason: string, running: { version: string; pid: string; by: string }): Promise<void> {
  const s = await stack.waitStatus(`${version} refused and blocked`, (x) => x.phase === 'idle' && x.blocked.some((b) => b.version === version), 30_000);
  assert.equal(s.blocked.find((b) => b.version === version)!.reason, reason, `${version}: the block names the reason`);
  assert.equal(s.current, running.version, 'the running version stays current');
  assert.equal(s.verifiedBy, running.by, 'and still shows what verified it');
  assert.equal(await stack.appVersion(), running.version, 'the app still answers with the running version');
  assert.equal(appPid(stack), running.pid, 'the app was not restarted');
  assert.ok(!stack.installedVersions().includes(version), `${version} was not installed`);
  assert.deepEqual(stack.stagingEntries(), [], 'no staging debris');
  const lines = stack.logs().split('\n').filter((l) => l.includes('release refused and blocked') && l.includes(`version=${version}`));
  assert.equal(lines.length, 1, `one log line for ${version}:\n${lines.join('\n')}`);
  assert.ok(lines[0]!.includes(reason), `the line gives the reason: ${lines[0]}`);
  assert.ok(s.history.some((h) => h.event === 'block' && h.version === version && h.cause === 'signature'), 'the history says why');
  await stack.waitStatus(`a notification for ${version}`, () => notes.bodies.some((b) => b.includes(version) && b.includes(reason.replace(/"/g, '\\"'))), 10_000);
}

