// deploy.yaml, the Akash SDL 2.0 deployment, validated offline twice: by
// Akash's own @akashnetwork/chain-sdk (validateSDL and generateManifest, the
// schema the network's tools use) and by molt's structural checks (sdl.ts),
// which also catch what chain-sdk lets through. The env it sets is read by
// molt's own configuration parsers, so a typo in a value fails here, not on a
// provider.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { repoRoot } from '../helpers/molt.js';
import { readUpdaterConfig } from '../../src/update/config.js';
import { readInitConfig } from '../../src/init/config.js';
import { validateSdl } from './sdl.js';
import { parseEnv } from './dockerfile.js';
import { readDockerfile, runtimeStage } from './layout.js';

// Parsed YAML and chain-sdk output are walked freely in assertions.
type Doc = Record<string, any>;

interface ChainSdk {
  validateSDL(sdl: unknown, network: string): undefined | { message?: string; instancePath?: string }[];
  generateManifest(sdl: unknown, network: string): { ok: boolean; value: unknown };
}

const text = fs.readFileSync(path.join(repoRoot, 'deploy.yaml'), 'utf8');
const load = (): Doc => YAML.parse(text) as Doc;

function envOf(doc: Doc): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of doc.services.molt.env as string[]) {
    const at = e.indexOf('=');
    out[e.slice(0, at)] = e.slice(at + 1);
  }
  return out;
}

describe('deploy.yaml (Akash SDL 2.0)', () => {
  let sdk: ChainSdk;

  before(async () => {
    sdk = (await import('@akashnetwork/chain-sdk')) as unknown as ChainSdk;
  });

  test('passes chain-sdk validateSDL for mainnet and yields a manifest', () => {
    const doc = load();
    assert.equal(sdk.validateSDL(doc, 'mainnet'), undefined);
    const m = sdk.generateManifest(doc, 'mainnet');
    assert.equal(m.ok, true, JSON.stringify(m.value).slice(0, 500));
    const svc = (m.value as Doc).groups[0].services[0];
    assert.equal(svc.name, 'molt');
    assert.deepEqual(svc.params.storage, [{ name: 'molt-home', mount: '/var/lib/molt', readOnly: false }]);
    assert.equal(svc.expose[0].global, true);
    assert.equal(svc.expose[0].port, 8080);
    const vol = svc.resources.storage.find((s: Doc) => s.name === 'molt-home');
    assert.deepEqual(vol.attributes, [
      { key: 'class', value: 'beta2' },
      { key: 'persistent', value: 'true' },
    ]);
  });

  test('passes molt\'s structural checks', () => {
    assert.deepEqual(validateSdl(load()), []);
  });

  test('is version "2.0" (a string), pins an image tag of the ghcr.io placeholder, and is documented', () => {
    const doc = load();
    assert.equal(doc.version, '2.0');
    assert.match(doc.services.molt.image, /^ghcr\.io\/OWNER\/molt:\d+\.\d+\.\d+$/);
    assert.match(text, /replace:\n#\s+OWNER/, 'the placeholders are explained at the top');
  });

  test('configures the updater through env that molt itself accepts', () => {
    const env = envOf(load());
    assert.ok(env.MOLT_GITHUB || (env.GH_USER && env.GH_REPO), 'a release source');
    const cfg = readUpdaterConfig(env, () => undefined);
    assert.equal(cfg.source.kind, 'github');
    assert.equal(cfg.intervalMs, 5 * 60_000, 'MOLT_INTERVAL=5m: well under 60 unauthenticated API calls an hour');
    assert.equal(cfg.policy, 'latest');
    assert.equal(cfg.trialMs, 30_000);
    assert.equal(readInitConfig(env).stopTimeoutMs, 7000);
  });

  test('the seed\'s names work in its place: GH_USER + GH_REPO, SLEEP in seconds, SVWAIT in seconds', () => {
    const env = { GH_USER: 'OWNER', GH_REPO: 'molt', SLEEP: '600', SVWAIT: '5' };
    const cfg = readUpdaterConfig(env, () => undefined);
    assert.deepEqual([cfg.source.kind, cfg.source.kind === 'github' && cfg.source.repo], ['github', 'OWNER/molt']);
    assert.equal(cfg.intervalMs, 600_000);
    assert.equal(readInitConfig(env).stopTimeoutMs, 5000);
  });

  test('agrees with the image: port 8080 exposed globally, the persistent volume mounted at the image\'s VOLUME', () => {
    const doc = load();
    const rt = runtimeStage(readDockerfile());
    const volume = rt.instructions.find((i) => i.op === 'VOLUME')!.args;
    const expose = rt.instructions.find((i) => i.op === 'EXPOSE')!.args;
    const env = Object.assign({}, ...rt.instructions.filter((i) => i.op === 'ENV').map((i) => parseEnv(i.args))) as Record<string, string>;
    assert.equal(doc.services.molt.params.storage['molt-home'].mount, volume);
    assert.equal(env.MOLT_HOME, volume);
    const x = doc.services.molt.expose[0];
    assert.equal(String(x.port), expose);
    assert.deepEqual(x.to, [{ global: true }]);
    assert.equal(envOf(doc).HELLO_PORT, expose, 'the example app listens where the port is exposed');
    assert.equal(envOf(doc).HELLO_HOST, '0.0.0.0', 'and on every interface, not loopback');
  });

  // Each broken document must be refused. `sdk` says whether chain-sdk catches it
  // (measured with 1.0.0-alpha.25); molt's checks must catch every one.
  const broken: [string, (d: Doc) => void, RegExp, boolean][] = [
    ['version 3.0', (d) => (d.version = '3.0'), /^version must be/, true],
    ['version as a number', (d) => (d.version = 2), /^version must be/, true],
    ['deployment names a missing profile', (d) => (d.deployment.molt.akash.profile = 'nope'), /no compute profile "nope"/, true],
    ['no pricing for the profile', (d) => delete d.profiles.placement.akash.pricing.molt, /has no pricing for profile molt/, true],
    ['a denom that is not uakt or IBC', (d) => (d.profiles.placement.akash.pricing.molt.denom = 'usd'), /denom must be uakt/, true],
    ['zero CPU', (d) => (d.profiles.compute.molt.resources.cpu.units = 0), /cpu\.units must be a positive/, true],
    ['no image', (d) => delete d.services.molt.image, /image: missing/, true],
    ['a relative mount path', (d) => (d.services.molt.params.storage['molt-home'].mount = 'var/lib/molt'), /mount must be an absolute path/, true],
    ['a persistent volume never mounted', (d) => delete d.services.molt.params, /persistent storage molt-home is not mounted/, true],
    ['a mount of an undeclared volume', (d) => (d.services.molt.params.storage = { other: { mount: '/x' } }), /has no storage volume other/, true],
    ['an env entry without =', (d) => d.services.molt.env.push('MOLT_POLICY'), /env\[\d+\] "MOLT_POLICY" is not KEY=VALUE/, false],
    ['no port exposed globally', (d) => (d.services.molt.expose[0].to = [{ service: 'molt' }]), /no service exposes a port to: \[\{global: true\}\]/, false],
    ['a bogus memory unit', (d) => (d.profiles.compute.molt.resources.memory.size = '512XB'), /memory\.size must be a size/, false],
    ['a persistent volume without a class', (d) => delete d.profiles.compute.molt.resources.storage[1].attributes.class, /needs attributes\.class/, false],
    ['a deployment of a service that does not exist', (d) => (d.deployment.ghost = d.deployment.molt), /deployment\.ghost: no service ghost/, false],
    ['the image tag latest', (d) => (d.services.molt.image = 'ghcr.io/OWNER/molt:latest'), /not latest/, false],
  ];
  for (const [what, mutate, expected, sdkCatches] of broken) {
    test(`refuses ${what}`, () => {
      const doc = load();
      mutate(doc);
      const mine = validateSdl(doc);
      assert.ok(mine.some((m) => expected.test(m)), `molt's checks: ${JSON.stringify(mine)}`);
      const theirs = sdk.validateSDL(doc, 'mainnet');
      assert.equal(theirs !== undefined && theirs.length > 0, sdkCatches, `chain-sdk ${sdkCatches ? 'catches' : 'misses'} it: ${JSON.stringify(theirs)?.slice(0, 300)}`);
    });
  }
});
