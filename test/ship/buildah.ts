// Debian's buildah, daemonless, with its storage in a temp directory (vfs driver,
// chroot isolation: no overlay or user namespaces needed), and a Node base image
// made here from the machine's own node, its libraries and a few tools, so that
// the build needs no network but the npm registry.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { childrenOf, repoRoot, waitFor } from '../helpers/molt.js';

export interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

export class Buildah {
  readonly storage: string[];
  constructor(readonly dir: string) {
    this.storage = ['--root', path.join(dir, 'storage'), '--runroot', path.join(dir, 'runroot'), '--storage-driver', 'vfs'];
  }

  run(args: string[], timeoutMs = 120_000): Result {
    const r = spawnSync('buildah', [...this.storage, ...args], { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
    return { status: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
  }

  ok(args: string[], timeoutMs?: number): string {
    const r = this.run(args, timeoutMs);
    if (r.status !== 0) throw new Error(`buildah ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout.slice(-2000)}`);
    return r.stdout.trim();
  }

  /** A local image from a directory tree, with env; never pulled from a registry. */
  imageFrom(rootfs: string, name: string, env: Record<string, string>): void {
    const c = this.ok(['from', '--pull=never', 'scratch']);
    try {
      this.ok(['copy', c, `${rootfs}/.`, '/']);
      this.ok(['config', ...Object.entries(env).flatMap(([k, v]) => ['--env', `${k}=${v}`]), c]);
      this.ok(['commit', '--quiet', c, name]);
    } finally {
      this.run(['rm', c]);
    }
  }

  /** Bytes of the files in the image's root (du -sb of a container of it). */
  size(name: string): number {
    const c = this.ok(['from', '--pull=never', name]);
    try {
      const du = spawnSync('du', ['-sb', this.ok(['mount', c])], { encoding: 'utf8' });
      return Number(du.stdout.split('\t')[0]);
    } finally {
      this.run(['umount', c]);
      this.run(['rm', c]);
    }
  }

  /** Remove every container of this storage and the storage itself. */
  destroy(): void {
    this.run(['rm', '--all']);
    this.run(['rmi', '--all', '--force']);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The file a command name runs (builtins like `true` too: their binaries on PATH). */
function which(cmd: string): string {
  for (const dir of `${process.env.PATH ?? ''}:/usr/bin:/bin`.split(':').filter(Boolean)) {
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return fs.realpathSync(p);
    } catch {
      // not here
    }
  }
  throw new Error(`${cmd} is not on PATH`);
}

/** The shared libraries `ldd` lists for a binary, by absolute path. */
function libraries(binary: string): string[] {
  const r = spawnSync('ldd', [binary], { encoding: 'utf8' });
  if (r.status !== 0) return []; // static, or a script
  return [...r.stdout.matchAll(/(\/\S+)/g)].map((m) => m[1]!);
}

function copyIn(root: string, file: string, as = file): void {
  const dest = path.join(root, as);
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  if (!fs.existsSync(dest)) fs.copyFileSync(file, dest);
  fs.chmodSync(dest, fs.statSync(file).mode & 0o7777);
}

/**
 * A minimal Debian-like root: sh (dash) and the tools the Dockerfile's RUN steps
 * and the example services use, each with its libraries; with `node`, also the
 * machine's node binary and npm, as a Node base image would have them.
 */
/** The Node base the image tests build on: `baseRootfs` with node, made an image `tag` in `b`. */
export function nodeBaseImage(b: Buildah, work: string, tag: string): void {
  const rootfs = path.join(work, 'base');
  baseRootfs(rootfs, true);
  b.imageFrom(rootfs, tag, { PATH: '/usr/local/bin:/usr/bin:/bin', NODE_EXTRA_CA_CERTS: '/etc/ssl/certs/ca-certificates.crt' });
}

export function baseRootfs(root: string, withNode: boolean): void {
  const tools = ['dash', 'env', 'mkdir', 'chmod', 'mktemp', 'cp', 'rm', 'rmdir', 'mv', 'ln', 'cat', 'sed', 'grep', 'true', 'sleep', 'readlink', 'date', 'ls', 'id'];
  if (withNode) tools.push('node');
  for (const t of tools) {
    const bin = which(t);
    copyIn(root, bin, path.join('/usr/bin', path.basename(bin)));
    // The loader and libc are libraries too: ldd lists them with their paths.
    for (const lib of libraries(bin)) copyIn(root, fs.realpathSync(lib), lib);
  }
  fs.mkdirSync(path.join(root, 'bin'), { recursive: true });
  fs.symlinkSync('/usr/bin/dash', path.join(root, 'bin/sh'));
  fs.symlinkSync('dash', path.join(root, 'usr/bin/sh'));
  for (const d of ['tmp', 'root', 'etc/ssl/certs']) fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.chmodSync(path.join(root, 'tmp'), 0o1777);
  // The machine's CA bundle: npm's registry may sit behind a TLS proxy here.
  const ca = process.env.NODE_EXTRA_CA_CERTS ?? '/etc/ssl/certs/ca-certificates.crt';
  if (fs.existsSync(ca)) copyIn(root, ca, '/etc/ssl/certs/ca-certificates.crt');
  if (!withNode) return;
  // npm as Debian and Node's images lay it out: the package, and bin links to its CLIs.
  const npmCli = which('npm'); // .../node_modules/npm/bin/npm-cli.js
  const npmDir = path.dirname(path.dirname(npmCli));
  const dest = path.join(root, 'usr/lib/node_modules/npm');
  fs.cpSync(npmDir, dest, { recursive: true, dereference: true });
  fs.symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', path.join(root, 'usr/bin/npm'));
  fs.symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', path.join(root, 'usr/bin/npx'));
}

/** docker/Dockerfile built on `base` (a local image, never pulled) as `tag`; buildah's output, or a thrown error with its tail. */
export function buildMoltImage(b: Buildah, base: string, tag: string, version: string): string {
  const r = b.run(
    ['bud', '--isolation', 'chroot', '--pull=never', '--network', 'host', '--format', 'docker', '--build-arg', `NODE_IMAGE=${base}`, '--build-arg', `VERSION=${version}`, '-f', 'docker/Dockerfile', '-t', tag, repoRoot],
    480_000,
  );
  if (r.status !== 0) throw new Error(`buildah bud docker/Dockerfile failed (${r.status}): ${(r.stdout + r.stderr).slice(-4000)}`);
  return r.stdout + r.stderr;
}

/** The image's ENV as a map. */
export function imageEnv(b: Buildah, image: string): Record<string, string> {
  const config = JSON.parse(b.ok(['inspect', '--type', 'image', image])) as { Docker: { config: { Env?: string[] } } };
  const env: Record<string, string> = {};
  for (const kv of config.Docker.config.Env ?? []) env[kv.slice(0, kv.indexOf('='))] = kv.slice(kv.indexOf('=') + 1);
  return env;
}

export interface Container {
  /** Host pid of the container's PID 1 (the ENTRYPOINT, chrooted into the image's root). */
  pid1: number;
  proc: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** `docker exec`: a command in the container's namespaces and root. */
  exec(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /** SIGKILL PID 1 (the kernel then kills the whole PID namespace) and wait. */
  kill(): Promise<void>;
}

/**
 * `docker run` of a mounted image root: `molt init` as PID 1 of new PID and mount namespaces,
 * chrooted into `root` with /proc and /dev mounted, with `env`. With `network: false`, also a
 * new network namespace whose only interface is loopback (`docker run --network none`).
 * `cmd` replaces the ENTRYPOINT (default `molt init`).
 */
export async function runContainer(root: string, env: Record<string, string>, opts: { network: boolean; cmd?: string[] }): Promise<Container> {
  for (const d of ['proc', 'dev']) fs.mkdirSync(path.join(root, d), { recursive: true });
  const script = `${opts.network ? '' : 'ip link set lo up && '}mount -t proc proc "$1/proc" && mount --rbind /dev "$1/dev" && root=$1 && shift && exec /usr/sbin/chroot "$root" "$@"`;
  const ns = ['--pid', '--fork', '--mount', '--propagation', 'private', ...(opts.network ? [] : ['--net'])];
  const proc = spawn('/usr/bin/unshare', [...ns, '/bin/sh', '-c', script, 'sh', root, ...(opts.cmd ?? ['molt', 'init'])], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (output += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const pid1 = await waitFor(`PID 1 of the namespace\n${output.slice(-3000)}`, () => childrenOf(proc.pid!)[0], 10_000);
  return {
    pid1,
    proc,
    output: () => output,
    exited,
    exec: (args) => execIn(pid1, args),
    kill: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      try {
        process.kill(pid1, 'SIGKILL');
      } catch {
        // gone
      }
      proc.kill('SIGKILL');
      await exited;
    },
  };
}

/** `docker exec`: a command in the container's mount, PID and network namespaces and root. */
export function execIn(pid1: number, args: string[], timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('nsenter', ['--target', String(pid1), '--mount', '--pid', '--net', '--root', '--wd', ...args], { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** What GET http://127.0.0.1:port/ answers inside the container (its own loopback), as hello's version; undefined when nothing answers. */
export async function appVersionIn(pid1: number, port: number): Promise<string | undefined> {
  const js = `fetch('http://127.0.0.1:${port}/', { signal: AbortSignal.timeout(2000) }).then((r) => r.json()).then((j) => console.log(j.version), () => process.exit(1))`;
  const r = await execIn(pid1, ['node', '-e', js], 10_000);
  return r.code === 0 ? r.stdout.trim() || undefined : undefined;
}

/** runContainer with the network of the host and `cmd` as the ENTRYPOINT. */
export function startContainer(root: string, env: Record<string, string>, cmd: string[]): Promise<Container> {
  return runContainer(root, env, { network: true, cmd });
}
