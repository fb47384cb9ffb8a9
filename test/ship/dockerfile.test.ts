// docker/Dockerfile, checked without a Docker engine (none runs here; the
// release workflow builds it): its instructions are read and asserted, every
// file it copies from the repository exists and passes .dockerignore, and the
// bundle it ships is built with scripts/bundle.mjs and run: `molt version`,
// `molt init -- CMD` through the image's wrapper, koffi pruned to one binary.
// hadolint is not packaged in Debian (apt-cache policy hadolint is empty), so
// no Dockerfile linter runs here.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { repoRoot, tmpdir, waitFor } from '../helpers/molt.js';
import { testSigstore } from '../helpers/sigstore.js';
import { dockerignoreAllows, execForm, expandArgs, parseCopy, parseEnv, parseInstructions, parseLabels, type Dockerfile, type Stage } from './dockerfile.js';
import { buildLayout, bundle, ensureShellcheck, koffiRuntime, LIB, readDockerfile, run, runtimeStage, type Layout } from './layout.js';

const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };

function only(stage: Stage, op: string): string {
  const found = stage.instructions.filter((i) => i.op === op);
  assert.equal(found.length, 1, `exactly one ${op} in stage ${stage.name} (found ${found.length})`);
  return found[0]!.args;
}

/** The bundle's files in `dir`: molt.mjs and every chunk in molt-chunks/. */
function bundleFiles(dir: string): string[] {
  const chunks = path.join(dir, 'molt-chunks');
  return [path.join(dir, 'molt.mjs'), ...fs.readdirSync(chunks).map((f) => path.join(chunks, f))];
}

/** The relative specifiers of a bundle file's static and dynamic imports. */
function relativeImports(text: string): string[] {
  return [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)["'](\.\.?\/[^"']+)["']/g)].map((m) => m[1]!);
}

/** A chunk and every file its static imports load, transitively (what running it parses). */
function staticClosure(file: string): Set<string> {
  const seen = new Set<string>();
  const visit = (f: string) => {
    if (seen.has(f)) return;
    seen.add(f);
    for (const m of fs.readFileSync(f, 'utf8').matchAll(/^(?:import|export)\b[^;]*?\bfrom\s*["'](\.\.?\/[^"']+)["']|^import\s*["'](\.\.?\/[^"']+)["']/gm)) {
      visit(path.resolve(path.dirname(f), (m[1] ?? m[2])!));
    }
  };
  visit(file);
  return seen;
}

function allRun(stage: Stage): string {
  return stage.instructions.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n');
}

describe('the Dockerfile reader', () => {
  test('joins continuation lines, drops comments inside them, and numbers instructions by their first line', () => {
    const ins = parseInstructions('# c\nFROM a AS b\n\nRUN one \\\n  # inner comment\n  two\nCOPY x /y\n');
    assert.deepEqual(
      ins.map((i) => [i.op, i.args, i.line]),
      [
        ['FROM', 'a AS b', 2],
        ['RUN', 'one two', 4],
        ['COPY', 'x /y', 7],
      ],
    );
    assert.throws(() => parseInstructions('RUN a \\'), /continued instruction/);
  });

  test('.dockerignore allowlists: * then !path', () => {
    const allows = dockerignoreAllows('*\n!src/\n!package.json\n');
    assert.equal(allows('src/cli/main.ts'), true);
    assert.equal(allows('package.json'), true);
    assert.equal(allows('node_modules/koffi/index.js'), false);
    assert.equal(allows('srcx/a'), false);
    assert.throws(() => dockerignoreAllows('**/*.md\n'), /not one this reader understands/);
  });
});

describe('docker/Dockerfile', () => {
  let df: Dockerfile;
  let rt: Stage;
  let build: Stage;

  before(() => {
    df = readDockerfile();
    rt = runtimeStage(df);
    const b = df.stages.find((s) => s.name === 'build');
    assert.ok(b, 'a stage named build');
    build = b;
  });

  test('is multi-stage on node:24-alpine (an LTS line) by default; the build stage runs on the build platform', () => {
    assert.ok(df.stages.length >= 2, 'at least a build and a runtime stage');
    for (const s of df.stages) assert.equal(expandArgs(s.from, df.globalArgs), 'node:24-alpine', `stage ${s.name} is on node:24-alpine`);
    assert.equal(build.platform, '$BUILDPLATFORM');
    assert.equal(rt.platform, undefined, 'the runtime stage is built for each target platform');
  });

  test('ENTRYPOINT is molt init (exec form: molt is PID 1), STOPSIGNAL SIGTERM, no CMD', () => {
    assert.deepEqual(execForm(only(rt, 'ENTRYPOINT')), ['molt', 'init']);
    assert.equal(only(rt, 'STOPSIGNAL'), 'SIGTERM');
    assert.equal(rt.instructions.filter((i) => i.op === 'CMD').length, 0, 'no CMD: molt supervises /etc/service; a user CMD becomes the main program');
  });

  test('HEALTHCHECK runs molt health with bounded timing', () => {
    const hc = only(rt, 'HEALTHCHECK');
    const at = hc.indexOf('CMD ');
    assert.ok(at > 0, 'HEALTHCHECK [OPTIONS] CMD ...');
    assert.deepEqual(execForm(hc.slice(at + 4)), ['molt', 'health']);
    for (const opt of ['interval', 'timeout', 'start-period', 'retries']) assert.match(hc, new RegExp(`--${opt}=\\w+`), `--${opt} set`);
  });

  test('MOLT_HOME is a declared volume and the services live in /etc/service', () => {
    const vol = only(rt, 'VOLUME');
    const vols = execForm(vol) ?? vol.split(/\s+/);
    assert.deepEqual(vols, ['/var/lib/molt']);
    const env = Object.assign({}, ...rt.instructions.filter((i) => i.op === 'ENV').map((i) => parseEnv(i.args))) as Record<string, string>;
    assert.equal(env.MOLT_HOME, '/var/lib/molt');
    assert.equal(env.MOLT_SERVICES, '/etc/service');
  });

  test('OCI labels: title, source, version (from ARG VERSION), licenses; VERSION is also written to /version', () => {
    const labels = Object.assign({}, ...rt.instructions.filter((i) => i.op === 'LABEL').map((i) => parseLabels(i.args))) as Record<string, string>;
    assert.equal(labels['org.opencontainers.image.title'], 'molt');
    assert.equal(labels['org.opencontainers.image.version'], '${VERSION}');
    assert.equal(labels['org.opencontainers.image.source'], '${SOURCE}');
    const license = (JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { license: string }).license;
    assert.equal(labels['org.opencontainers.image.licenses'], license, 'the label matches package.json');
    const args = rt.instructions.filter((i) => i.op === 'ARG').map((i) => i.args.split('=')[0]);
    assert.ok(args.includes('VERSION') && args.includes('SOURCE'), 'ARG VERSION and ARG SOURCE are declared in the runtime stage');
    assert.match(allRun(rt), /printf '%s\\n' "\$\{VERSION:-unknown\}" > \/version/);
    assert.ok(build.instructions.some((i) => i.op === 'ARG' && i.args.startsWith('VERSION')), 'the build stage gets VERSION too');
    assert.match(allRun(build), /bundle\.mjs .*--version "\$VERSION"/, 'molt version reports the image VERSION');
  });

  test('every COPY from the build context exists in the repository and passes .dockerignore', () => {
    const allows = dockerignoreAllows(fs.readFileSync(path.join(repoRoot, '.dockerignore'), 'utf8'));
    const stageNames = new Set(df.stages.map((s) => s.name));
    let fromContext = 0;
    for (const s of df.stages) {
      for (const ins of s.instructions) {
        assert.notEqual(ins.op, 'ADD', `line ${ins.line}: COPY, not ADD`);
        if (ins.op !== 'COPY') continue;
        const c = parseCopy(ins);
        if (c.flags.from !== undefined) {
          assert.ok(stageNames.has(c.flags.from), `line ${c.line}: --from=${c.flags.from} names a stage`);
          continue;
        }
        for (const src of c.sources) {
          fromContext++;
          assert.ok(fs.existsSync(path.join(repoRoot, src)), `line ${c.line}: ${src} exists in the repository`);
          assert.ok(allows(src), `line ${c.line}: ${src} is not excluded by .dockerignore`);
        }
      }
    }
    assert.ok(fromContext >= 8, 'the checks above saw the COPYs');
    for (const junk of ['node_modules/koffi/package.json', 'dist/molt.mjs', 'test/run.mjs', '.git/HEAD']) assert.equal(allows(junk), false, `${junk} stays out of the context`);
  });

  test('the runtime stage carries the wrapper, the build output, and the example services with the app\'s log service', () => {
    const copies = rt.instructions.filter((i) => i.op === 'COPY').map(parseCopy);
    const fromBuild = copies.find((c) => c.flags.from === 'build');
    assert.deepEqual(fromBuild && [fromBuild.sources, fromBuild.dest], [['/out/'], `${LIB}/`]);
    const wrapper = copies.find((c) => c.dest === '/usr/local/bin/molt');
    assert.deepEqual(wrapper?.sources, ['docker/molt']);
    assert.match(fs.readFileSync(path.join(repoRoot, 'docker/molt'), 'utf8'), new RegExp(`^exec node ${LIB}/molt\\.mjs "\\$@"$`, 'm'), 'the wrapper execs node (PID 1 stays node, not sh)');
    // services/ is copied whole to /etc/service; git keeps each run script executable.
    const svc = copies.find((c) => c.sources[0] === 'services/');
    assert.equal(svc?.dest, '/etc/service/');
    const allows = dockerignoreAllows(fs.readFileSync(path.join(repoRoot, '.dockerignore'), 'utf8'));
    const index = run('git', ['-C', repoRoot, 'ls-files', '-s', 'services']);
    assert.equal(index.status, 0, index.stderr);
    const files = index.stdout.trim().split('\n').map((l) => {
      const [mode, , , file] = l.split(/\s+/);
      return { mode: mode!, file: file! };
    });
    const runs = files.filter((f) => path.basename(f.file) === 'run').map((f) => f.file);
    assert.deepEqual(runs.sort(), ['services/app/log/run', 'services/app/run', 'services/updater/run']);
    for (const f of files) {
      assert.ok(allows(f.file), `${f.file} is in the build context`);
      if (path.basename(f.file) === 'run') assert.equal(f.mode, '100755', `${f.file} is executable in git`);
    }
    for (const state of ['services/app/supervise/status', 'services/app/log/supervise/lock', 'services/updater/supervise/pid']) {
      assert.equal(allows(state), false, `${state} (run-time state) stays out of the image`);
    }
  });

  test('the build stage checks the base\'s node, type-checks, bundles, and keeps koffi for the base\'s libc and the target CPU only', () => {
    const runs = allRun(build);
    const first = build.instructions.find((i) => i.op === 'RUN');
    assert.equal(first?.args, 'sh docker/check-node.sh package.json', 'the base is checked before anything runs on it');
    assert.match(runs, /npm ci --ignore-scripts/);
    assert.match(runs, /npx tsc -p tsconfig\.json --noEmit/);
    assert.match(runs, /node scripts\/bundle\.mjs --out \/out\/molt\.mjs/);
    assert.match(runs, /npm ci --omit=dev --ignore-scripts .*--os=linux --cpu="\$cpu"/);
    // libc asked of the base, never assumed (docker/libc.sh, tested on both answers in base-checks).
    assert.match(runs, /libc=\$\(sh \/src\/docker\/libc\.sh\);/);
    assert.match(runs, /sh \/src\/scripts\/koffi-runtime\.sh \/deps\/node_modules \/out "\$libc" "\$cpu"/);
    assert.ok(build.instructions.some((i) => i.op === 'ARG' && i.args === 'TARGETARCH'), 'ARG TARGETARCH');
    // The runtime stage proves koffi's binary loads before the image is pushed.
    assert.match(allRun(rt), /molt version;/);
    assert.match(allRun(rt), /MOLT_SERVICES=\$empty molt init -- true/);
  });
});

describe('the bundle the image ships', { timeout: 120_000 }, () => {
  let work: string;
  let layout: Layout;

  before(() => {
    work = tmpdir('ship-image');
    layout = buildLayout(path.join(work, 'root'));
  });
  after(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('is an ESM entry and its chunks beside it, self-contained; koffi is not inside them but loaded from node_modules beside them', () => {
    const text = fs.readFileSync(layout.at(`${LIB}/molt.mjs`), 'utf8');
    assert.match(text, /^#!\/usr\/bin\/env node\n/);
    const files = bundleFiles(layout.at(LIB));
    assert.ok(files.length > 2, `molt.mjs and its chunks (${files.length} files)`);
    for (const f of files) {
      const body = fs.readFileSync(f, 'utf8');
      assert.doesNotMatch(body, /Cannot find the native Koffi module/, `koffi's loader is not bundled (${path.basename(f)})`);
      // Every relative import names a file of the bundle: nothing outside it is loaded but koffi.
      for (const spec of relativeImports(body)) assert.ok(fs.existsSync(path.resolve(path.dirname(f), spec)), `${path.basename(f)} imports ${spec}, which exists`);
    }
    const licenses = fs.readFileSync(layout.at(`${LIB}/molt.mjs.licenses.txt`), 'utf8');
    for (const dep of ['@octokit/rest', 'yaml', 'semver', 'prom-client', 'ms']) assert.match(licenses, new RegExp(`^==== ${dep.replace('/', '\\/')}@`, 'm'), `${dep}'s license travels with the bundle`);
  });

  test('molt version through the wrapper prints package.json\'s version; --version stamps another', () => {
    const r = run('molt', ['version'], { env: { PATH: layout.path } });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `molt ${pkg.version}\n`);
    const other = path.join(work, 'stamped/molt.mjs');
    bundle(other, 'v9.8.7');
    const s = run(process.execPath, [other, 'version']);
    assert.equal(s.stdout, 'molt 9.8.7\n', 'a leading v is dropped');
  });

  test('molt init -- CMD runs and exits with CMD\'s status (koffi loaded for the subreaper)', () => {
    const empty = path.join(work, 'empty-services');
    fs.mkdirSync(empty, { recursive: true });
    const env = { PATH: layout.path, MOLT_SERVICES: empty };
    const ok = run('molt', ['init', '--', 'true'], { env });
    assert.equal(ok.status, 0, ok.stderr + ok.stdout);
    assert.doesNotMatch(ok.stdout + ok.stderr, /cannot become a child subreaper/);
    const three = run('molt', ['init', '--', 'sh', '-c', 'exit 3'], { env });
    assert.equal(three.status, 3);
    const plain = run(process.execPath, [layout.at(`${LIB}/molt.mjs`), 'init', '--', 'true'], { env: { MOLT_SERVICES: empty } });
    assert.equal(plain.status, 0, 'node dist-style invocation of the bundle works too');
  });

  test("molt init loads one file of PID 1's code: none of the updater, the API or their dependencies", () => {
    const entry = layout.at(`${LIB}/molt.mjs`);
    // The command table maps init to its chunk: `init: { summary: ..., load: () => import("./molt-chunks/...") }`.
    const m = /\binit: \{[^}]*?import\("(\.\/[^"]+)"\)/.exec(fs.readFileSync(entry, 'utf8'));
    assert.ok(m, "molt.mjs's command table names init's chunk");
    const loaded = staticClosure(path.resolve(path.dirname(entry), m[1]!));
    // Each ES module file costs start-up time (bench: exec → first service).
    assert.deepEqual([...loaded].map((f) => path.basename(f)), ['init.mjs'], 'init imports no other chunk');
    // esbuild heads each module's code with its source path, e.g. `// src/init/main.ts`
    // (a symlinked node_modules shows as `// ../elsewhere/node_modules/ms/index.js`).
    const sources = new Set<string>();
    for (const f of loaded) {
      for (const [, src] of fs.readFileSync(f, 'utf8').matchAll(/^\/\/ (\S+\.(?:ts|[mc]?js|json))$/gm)) sources.add(src!.replace(/^.*?(?=node_modules\/)/, ''));
    }
    assert.ok(sources.has('src/init/main.ts') && sources.has('src/supervise/slot.ts'), `init and the supervisor are there (${[...sources].join(' ')})`);
    const foreign = [...sources].filter((src) => !/^src\/(init|supervise|common)\//.test(src) && !src.startsWith('node_modules/ms/'));
    assert.deepEqual(foreign, [], 'only init, supervise, common and ms');
    const all = bundleFiles(layout.at(LIB)).reduce((n, f) => n + fs.statSync(f).size, 0);
    const mine = [...loaded].reduce((n, f) => n + fs.statSync(f).size, 0);
    assert.ok(mine * 4 < all, `PID 1 parses ${mine} of the bundle's ${all} bytes`);
  });

  test("keyless trust works from the bundle: Sigstore's libraries are in it, not left to a node_modules the image lacks", async () => {
    const dir = path.join(work, 'keyless');
    fs.mkdirSync(path.join(dir, 'releases'), { recursive: true });
    const rootFile = path.join(dir, 'trusted_root.json');
    fs.writeFileSync(rootFile, JSON.stringify(testSigstore(dir).root()));
    const updater = spawn(process.execPath, [layout.at(`${LIB}/molt.mjs`), 'updater'], {
      env: {
        PATH: process.env.PATH,
        MOLT_DIR: path.join(dir, 'releases'),
        MOLT_HOME: path.join(dir, 'home'),
        MOLT_SOCKET: path.join(dir, 'molt.sock'),
        MOLT_SERVICES: path.join(dir, 'services'),
        MOLT_TRUST_IDENTITY: 'https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v*',
        MOLT_TRUST_ROOT: rootFile,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    updater.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise<number | null>((resolve) => updater.once('exit', (code) => resolve(code)));
    try {
      await waitFor('the updater has read its trusted root', () => /signatures required/.test(err) || updater.exitCode !== null, 60_000);
      assert.match(err, /signatures required keys=0 identity=/, err);
      assert.doesNotMatch(err, /Cannot find module/);
    } finally {
      updater.kill('SIGTERM');
      await exited;
    }
  });

  test('without koffi beside it, molt init fails: the native part really comes from node_modules', () => {
    const bare = path.join(work, 'bare');
    fs.mkdirSync(bare, { recursive: true });
    fs.copyFileSync(layout.at(`${LIB}/molt.mjs`), path.join(bare, 'molt.mjs'));
    fs.cpSync(layout.at(`${LIB}/molt-chunks`), path.join(bare, 'molt-chunks'), { recursive: true });
    // An ancestor node_modules would be found by Node's lookup: /tmp has none.
    for (const d of [path.dirname(work), '/']) assert.equal(fs.existsSync(path.join(d, 'node_modules')), false, `no ${d}/node_modules`);
    const empty = path.join(work, 'empty-services');
    const r = run(process.execPath, [path.join(bare, 'molt.mjs'), 'init', '--', 'true'], { env: { MOLT_SERVICES: empty } });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /koffi/);
  });

  test('koffi-runtime.sh keeps one prebuilt binary: musl for the image, glibc here; nothing to compile', () => {
    const files: string[] = [];
    (function walk(d: string) {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else files.push(path.relative(layout.at(LIB), p));
      }
    })(layout.at(`${LIB}/node_modules`));
    const natives = files.filter((f) => f.endsWith('.node'));
    assert.deepEqual(natives, [`node_modules/@koromix/koffi-linux-${process.arch}/linux_${process.arch}/koffi.node`]);
    assert.equal(files.filter((f) => /\.(cc|hh|h|c)$|CMakeLists|cnoke/.test(f)).length, 0, 'no sources or build scripts');

    const musl = path.join(work, 'musl');
    const kept = koffiRuntime(musl, 'musl', process.arch);
    assert.equal(kept, path.join(musl, `node_modules/@koromix/koffi-linux-${process.arch}/musl_${process.arch}/koffi.node`));
    assert.ok(fs.existsSync(kept));
    assert.equal(fs.existsSync(path.join(musl, `node_modules/@koromix/koffi-linux-${process.arch}/linux_${process.arch}`)), false, 'no glibc binary in the musl image');
    const bad = run('sh', [path.join(repoRoot, 'scripts/koffi-runtime.sh'), path.join(repoRoot, 'node_modules'), path.join(work, 'x'), 'bionic']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /libc 'bionic' is not musl or glibc/);
  });

  test('the shell scripts the image and release use pass shellcheck', () => {
    ensureShellcheck();
    const scripts = ['docker/molt', 'docker/sv', 'docker/chpst', 'docker/libc.sh', 'docker/check-node.sh', 'scripts/koffi-runtime.sh', 'scripts/pack-release.sh'].map((p) => path.join(repoRoot, p));
    const r = run('shellcheck', ['-s', 'sh', ...scripts]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });
});
