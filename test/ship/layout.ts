// The image's file layout, built in a temp directory from docker/Dockerfile's
// own instructions, so that tests run what the image would hold: the bundle
// from scripts/bundle.mjs with koffi beside it (from scripts/koffi-runtime.sh,
// glibc here where the image takes musl), the `molt` wrapper, and every file
// the runtime stage COPYs from the repository, at the same paths under `root`.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../helpers/molt.js';
import { parseCopy, parseDockerfile, parseEnv, type Dockerfile, type Stage } from './dockerfile.js';

export const dockerfilePath = path.join(repoRoot, 'docker/Dockerfile');
export const bundleScript = path.join(repoRoot, 'scripts/bundle.mjs');
export const koffiScript = path.join(repoRoot, 'scripts/koffi-runtime.sh');
/** Where the runtime stage puts the build stage's /out/ (asserted by the Dockerfile test). */
export const LIB = '/usr/local/lib/molt';

export function readDockerfile(): Dockerfile {
  return parseDockerfile(fs.readFileSync(dockerfilePath, 'utf8'));
}

export function runtimeStage(df: Dockerfile): Stage {
  const s = df.stages[df.stages.length - 1];
  if (!s) throw new Error('docker/Dockerfile has no stage');
  return s;
}

export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}) {
  const r = spawnSync(cmd, args, {
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 60_000,
  });
  return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error: r.error };
}

/** shellcheck from Debian's package, installed on first use as the registry helper does. */
export function ensureShellcheck(): void {
  const r = run('sh', ['-c', 'command -v shellcheck >/dev/null || apt-get install -y -qq --no-install-recommends shellcheck >/dev/null 2>&1; command -v shellcheck'], { timeoutMs: 300_000 });
  if (r.status !== 0) throw new Error('shellcheck is missing and apt-get install shellcheck failed');
}

/** `node scripts/bundle.mjs --out FILE [--version V]`; throws with its output when it fails. */
export function bundle(outFile: string, version?: string): void {
  const r = run(process.execPath, [bundleScript, '--out', outFile, ...(version ? ['--version', version] : [])], { cwd: repoRoot });
  if (r.status !== 0) throw new Error(`bundle.mjs failed (${r.status}): ${r.stderr}${r.stdout}`);
}

/** koffi's runtime files for `libc` into DIR/node_modules; returns the koffi.node it kept. */
export function koffiRuntime(dir: string, libc: 'glibc' | 'musl', cpu = process.arch): string {
  const r = run('sh', [koffiScript, path.join(repoRoot, 'node_modules'), dir, libc, cpu]);
  if (r.status !== 0) throw new Error(`koffi-runtime.sh failed (${r.status}): ${r.stderr}`);
  return r.stdout.trim();
}

export interface Layout {
  root: string;
  /** root + path, for an absolute path inside the image. */
  at: (p: string) => string;
  /** The image's ENV, with absolute paths moved under root. */
  env: Record<string, string>;
  /** PATH with the image's /usr/local/bin (the molt wrapper) first. */
  path: string;
}

/**
 * Build the runtime stage's files under `root`: /usr/local/lib/molt (bundle +
 * koffi for this machine), /usr/local/bin/molt (docker/molt, pointed at the
 * bundle under root), and each `COPY <repo path> <dest>` of the runtime stage.
 */
export function buildLayout(root: string): Layout {
  const df = readDockerfile();
  const stage = runtimeStage(df);
  const at = (p: string) => path.join(root, p);
  const lib = at(LIB);
  fs.mkdirSync(lib, { recursive: true });
  bundle(path.join(lib, 'molt.mjs'));
  koffiRuntime(lib, 'glibc');

  for (const ins of stage.instructions) {
    if (ins.op !== 'COPY') continue;
    const c = parseCopy(ins);
    if (c.flags.from !== undefined) continue; // the build stage's output: made above
    if (c.sources.length !== 1) throw new Error(`line ${c.line}: one source per COPY is what this layout reader handles`);
    const src = path.join(repoRoot, c.sources[0]!);
    if (fs.statSync(src).isDirectory()) {
      // COPY dir/ dest/ copies the directory's contents, modes kept, minus what .dockerignore drops.
      if (!c.dest.endsWith('/')) throw new Error(`line ${c.line}: a directory COPY is expected to end its destination with /`);
      if (c.flags.chmod) throw new Error(`line ${c.line}: --chmod on a directory COPY is not handled here`);
      fs.cpSync(src, at(c.dest), { recursive: true, filter: (p) => path.basename(p) !== 'supervise' });
      continue;
    }
    const dest = c.dest.endsWith('/') ? path.join(at(c.dest), path.basename(src)) : at(c.dest);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    let text = fs.readFileSync(src, 'utf8');
    if (c.dest === '/usr/local/bin/molt') {
      // The wrapper names the bundle by its path in the image; here the image lives under root.
      if (!text.includes(`${LIB}/molt.mjs`)) throw new Error(`docker/molt does not run ${LIB}/molt.mjs`);
      text = text.split(`${LIB}/`).join(`${lib}/`);
    }
    fs.writeFileSync(dest, text);
    const mode = c.flags.chmod ? parseInt(c.flags.chmod, 8) : fs.statSync(src).mode & 0o777;
    fs.chmodSync(dest, mode);
  }
  for (const d of ['/var/lib/molt', '/run/molt']) fs.mkdirSync(at(d), { recursive: true, mode: 0o700 });

  const env: Record<string, string> = {};
  for (const ins of stage.instructions) {
    if (ins.op !== 'ENV') continue;
    for (const [k, v] of Object.entries(parseEnv(ins.args))) env[k] = v.startsWith('/') ? at(v) : v;
  }
  return { root, at, env, path: `${at('/usr/local/bin')}:${process.env.PATH ?? '/usr/bin:/bin'}` };
}
