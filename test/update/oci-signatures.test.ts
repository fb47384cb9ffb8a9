// Signatures for OCI releases (issue 12): the pure formats (cosign's simple-signing payload and
// `.sig` tag, the referrers tag schema's index, the name and version a signature binds), and
// discovery against Debian's docker-registry (no referrers API: the tag schema) and against a
// loopback front that adds the referrers API (OCI-Subject on PUT, GET /referrers/<digest>).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { forward, passThrough, readAll, reply, startRegistry, startServer, type Registry, type TestServer } from '../helpers/registry.js';
import { OciSource } from '../../src/update/sources/oci.js';
import { publish } from '../../src/update/publish.js';
import { RegistryClient, sha256Hex } from '../../src/update/oci/client.js';
import { MT, parseManifest, type ImageIndex } from '../../src/update/oci/manifest.js';
import { parseReference } from '../../src/update/oci/reference.js';
import {
  addToReferrersIndex,
  buildSimpleSigning,
  cosignSignatureTag,
  normalizeSignedName,
  parseSimpleSigning,
  referrersTag,
  repositoryName,
  SIG,
  signatureReferrers,
} from '../../src/update/oci/referrers.js';
import { attachReferrer, pushSignature } from '../../src/update/oci/attach.js';
import { discoverSignatures } from '../../src/update/oci/signatures.js';
import { UpdateError } from '../../src/update/types.js';
import { Readable } from 'node:stream';
import { testSigstore, WORKFLOW } from '../helpers/sigstore.js';
import { cosignVerdict, decideOciTrust } from '../../src/update/trust/oci.js';
import { loadTrustConfig } from '../../src/update/trust/config.js';
import { parseSigningKey } from '../../src/update/trust/sign.js';
import { pemKeyId, parseTrustKey } from '../../src/update/trust/keys.js';
import { signPem, parsePemPrivateKey } from '../../src/update/trust/pem.js';
import { TrustRefusal } from '../../src/update/trust/gate.js';
import { setLogLevel } from '../../src/common/log.js';
import { createPublicKey } from 'node:crypto';

setLogLevel('error');

const D1 = `sha256:${'a'.repeat(64)}`;
const D2 = `sha256:${'b'.repeat(64)}`;

let tmp: string;
let pemKey: string;
let pemPub: string;
let pemId: string;
let miniKey: string;
let miniPub: string;

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-oci-sig-'));
  pemKey = path.join(tmp, 'p256.pem');
  pemPub = path.join(tmp, 'p256.pub');
  execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', pemKey]);
  execFileSync('openssl', ['pkey', '-in', pemKey, '-pubout', '-out', pemPub]);
  pemId = pemKeyId(createPublicKey(fs.readFileSync(pemPub)));
  miniKey = path.join(tmp, 'mini.key');
  miniPub = path.join(tmp, 'mini.pub');
  execFileSync('minisign', ['-G', '-W', '-p', miniPub, '-s', miniKey], { stdio: 'ignore' });
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('OCI signature formats (pure)', () => {
  test('tag names: cosign .sig and the referrers tag schema', () => {
    assert.equal(cosignSignatureTag(D1), `sha256-${'a'.repeat(64)}.sig`);
    assert.equal(referrersTag(D1), `sha256-${'a'.repeat(64)}`);
    assert.throws(() => referrersTag('sha512:abc'), /not a sha256 digest/);
  });

  test('signed names are compared as registry/repository: tags dropped, Docker Hub aliases made one, case folded', () => {
    assert.equal(normalizeSignedName('127.0.0.1:5000/hello:1.0.0'), '127.0.0.1:5000/hello');
    assert.equal(normalizeSignedName('docker.io/acme/app'), 'index.docker.io/acme/app');
    assert.equal(normalizeSignedName('index.docker.io/library/alpine'), repositoryName(parseReference('docker.io/alpine')));
    assert.equal(normalizeSignedName('ghcr.io/Acme/App'), 'ghcr.io/acme/app');
    assert.equal(normalizeSignedName('not a reference'), 'not a reference');
  });

  test('a simple-signing payload: digest and reference read; wrong type or no digest refused', () => {
    assert.deepEqual(parseSimpleSigning(buildSimpleSigning('127.0.0.1:5000/hello', D1)), { digest: D1, reference: '127.0.0.1:5000/hello' });
    // cosign's spec writes Docker-manifest-digest; its reader ignores case.
    const odd = Buffer.from(JSON.stringify({ critical: { identity: {}, image: { 'Docker-manifest-digest': D2 }, type: 'cosign container image signature' } }));
    assert.deepEqual(parseSimpleSigning(odd), { digest: D2, reference: null });
    assert.match(parseSimpleSigning(Buffer.from('{"critical":{"type":"x","image":{"docker-manifest-digest":"' + D1 + '"}}}')) as string, /of type "x"/);
    assert.match(parseSimpleSigning(Buffer.from('{"critical":{"type":"cosign container image signature"}}')) as string, /without a sha256/);
    assert.match(parseSimpleSigning(Buffer.from('garbage')) as string, /not JSON/);
  });

  test('the referrers tag index: an entry is added once, entries of other tools are kept', () => {
    const other = { mediaType: MT.ociManifest, digest: D1, size: 10, artifactType: 'application/spdx+json', annotations: { a: 'b' } };
    const first = parseManifest(addToReferrersIndex(undefined, other), MT.ociIndex, 't') as ImageIndex;
    const mine = { mediaType: MT.ociManifest, digest: D2, size: 20, artifactType: SIG.minisig };
    const twice = parseManifest(addToReferrersIndex(parseManifest(addToReferrersIndex(first, mine), MT.ociIndex, 't') as ImageIndex, mine), MT.ociIndex, 't') as ImageIndex;
    assert.deepEqual(twice.manifests.map((d) => [d.digest, d.artifactType]), [[D1, 'application/spdx+json'], [D2, SIG.minisig]]);
    assert.deepEqual(twice.manifests[0]!.annotations, { a: 'b' });
    // Only signature kinds are picked, bundle types in either spelling, and no more than asked.
    const idx: ImageIndex = {
      kind: 'index',
      mediaType: MT.ociIndex,
      annotations: {},
      manifests: [
        other,
        { mediaType: MT.ociManifest, digest: D2, size: 1, artifactType: 'application/vnd.dev.sigstore.bundle+json;version=0.3' },
        { mediaType: MT.ociManifest, digest: `sha256:${'c'.repeat(64)}`, size: 1, artifactType: SIG.bundle },
        { mediaType: MT.ociManifest, digest: `sha256:${'d'.repeat(64)}`, size: 1, artifactType: SIG.cosignReferrer },
      ],
    };
    assert.deepEqual(signatureReferrers(idx, 8).map((r) => r.kind), ['bundle', 'bundle', 'cosign']);
    assert.equal(signatureReferrers(idx, 2).length, 2);
  });

  test('a cosign signature: valid for its digest; another digest is a bad signature; a stranger key is unknown', () => {
    const key = parsePemPrivateKey(fs.readFileSync(pemKey, 'utf8'));
    assert.ok(typeof key !== 'string');
    const trusted = [parseTrustKey(fs.readFileSync(pemPub, 'utf8'), 'pub')];
    assert.ok(typeof trusted[0] !== 'string');
    const keys = trusted as Exclude<ReturnType<typeof parseTrustKey>, string>[];
    const payload = buildSimpleSigning('127.0.0.1:5000/hello', D1);
    const sig = { payload, signature: signPem(key, payload) };
    assert.deepEqual(cosignVerdict(keys, sig, D1), { kind: 'valid', by: pemId, signedFor: '127.0.0.1:5000/hello' });
    assert.deepEqual(cosignVerdict(keys, sig, D2), { kind: 'bad', detail: `the signed payload is for ${D1}, the manifest is ${D2}` });
    assert.equal(cosignVerdict([], sig, D1).kind, 'unknown-key');
    assert.equal(cosignVerdict(keys, { payload: Buffer.from(payload.toString().replace('hello', 'hellp')), signature: sig.signature }, D1).kind, 'bad');
    // An openssl Ed25519 key signs the payload itself, as cosign does for images.
    const ed = path.join(tmp, 'ed.pem');
    execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', ed]);
    const edPub = execFileSync('openssl', ['pkey', '-in', ed, '-pubout'], { encoding: 'utf8' });
    const edKey = parsePemPrivateKey(fs.readFileSync(ed, 'utf8'));
    assert.ok(typeof edKey !== 'string');
    const edTrusted = parseTrustKey(edPub, 'ed.pub');
    assert.ok(typeof edTrusted !== 'string');
    assert.deepEqual(cosignVerdict([edTrusted], { payload, signature: signPem(edKey, payload) }, D1), { kind: 'valid', by: edTrusted.id, signedFor: '127.0.0.1:5000/hello' });
  });

  test('the decision binds repository and the signed version', () => {
    const config = loadTrustConfig({ MOLT_TRUST_KEYS: pemPub });
    const key = parsePemPrivateKey(fs.readFileSync(pemKey, 'utf8'));
    assert.ok(typeof key !== 'string');
    const material = (ref: string) => {
      const payload = buildSimpleSigning(ref, D1);
      return { cosign: [{ payload, signature: signPem(key, payload) }], bundles: [], minisigs: [], broken: [], via: [] };
    };
    const subject = { digest: D1, bytes: Buffer.from('{}'), name: '127.0.0.1:5000/hello', version: '1.0.0', signedVersion: '1.0.0' };
    assert.deepEqual(decideOciTrust(config, material('127.0.0.1:5000/hello'), subject), { ok: true, by: pemId });
    assert.deepEqual(decideOciTrust(config, material('127.0.0.1:5000/hello'), { ...subject, version: '5.0.0' }), {
      ok: false,
      reason: 'signed for 127.0.0.1:5000/hello:1.0.0, served as 127.0.0.1:5000/hello:5.0.0',
    });
    assert.deepEqual(decideOciTrust(config, material('localhost:5000/hello'), subject), {
      ok: false,
      reason: 'signed for localhost:5000/hello:1.0.0, served as 127.0.0.1:5000/hello:1.0.0',
    });
    assert.deepEqual(decideOciTrust(config, { cosign: [], bundles: [], minisigs: [], broken: [], via: [] }, subject), { ok: false, reason: 'no signature' });
    const broken = decideOciTrust(config, { cosign: [], bundles: [], minisigs: [], broken: ['signature tag x: too big'], via: [] }, subject);
    assert.deepEqual(broken, { ok: false, reason: 'bad signature', detail: 'signature tag x: too big' });
  });
});

describe('OCI signatures in a registry', { timeout: 120_000 }, () => {
  let reg: Registry;
  let front: TestServer | undefined;
  before(async () => {
    reg = await startRegistry();
  });
  after(async () => {
    await front?.close();
    await reg?.stop();
  });

  const app = (version: string): string => {
    const f = path.join(tmp, `app-${version}`);
    fs.writeFileSync(f, `#!/bin/sh\necho ${version}\n`);
    return f;
  };
  const signer = (file: string) => {
    const k = parseSigningKey(fs.readFileSync(file, 'utf8'));
    assert.ok(typeof k !== 'string', String(k));
    return k;
  };
  const fetchWith = async (host: string, repo: string, trustEnv: NodeJS.ProcessEnv) => {
    const src = new OciSource(`${host}/${repo}`, { credentials: null });
    const [rel] = (await src.list()).releases;
    const staging = fs.mkdtempSync(path.join(tmp, 'staging-'));
    return src.fetch(rel!, staging, { trust: loadTrustConfig(trustEnv) });
  };

  test('docker-registry 2.8 (no referrers API): a PEM signature in the .sig tag and a minisign referrer in the tag schema verify', async () => {
    const noApi = await fetch(`${reg.url}/v2/sig/pem/referrers/${D1}`);
    assert.equal(noApi.status, 404, 'this registry has no referrers API');
    const ref = parseReference(`${reg.host}/sig/pem:1.0.0`);
    const digest = await publish(ref, [app('1.0.0')], {}, { credentials: null, signWith: signer(pemKey) });
    const got = await fetchWith(reg.host, 'sig/pem', { MOLT_TRUST_KEYS: pemPub });
    assert.equal(got.trustedBy, pemId);
    const sigTag = await (await fetch(`${reg.url}/v2/sig/pem/manifests/${cosignSignatureTag(digest)}`, { headers: { accept: MT.ociManifest } })).json();
    assert.equal(sigTag.layers[0].mediaType, SIG.simpleSigning);

    const mref = parseReference(`${reg.host}/sig/mini:1.0.0`);
    const md = await publish(mref, [app('1.0.0')], {}, { credentials: null, signWith: signer(miniKey) });
    const index = await (await fetch(`${reg.url}/v2/sig/mini/manifests/${referrersTag(md)}`, { headers: { accept: MT.ociIndex } })).json();
    assert.deepEqual(index.manifests.map((d: { artifactType: string }) => d.artifactType), [SIG.minisig]);
    const mgot = await fetchWith(reg.host, 'sig/mini', { MOLT_TRUST_KEYS: miniPub });
    assert.match(String(mgot.trustedBy), /^[0-9A-F]{16}$/);
    // Signed again (a second CI run, another timestamp): a second referrer, appended to the index.
    const mclient = new RegistryClient(mref, { credentials: null, push: true });
    const mbytes = (await mclient.getManifest(md)).bytes;
    await pushSignature(mclient, { mediaType: MT.ociManifest, digest: md, size: mbytes.length }, mbytes, signer(miniKey), { now: () => new Date(1e12) });
    const again = await (await fetch(`${reg.url}/v2/sig/mini/manifests/${referrersTag(md)}`, { headers: { accept: MT.ociIndex } })).json();
    assert.equal(again.manifests.length, 2, 'a second signature (another timestamp) is a second referrer');
  });

  test('unsigned: no signature; a huge or garbage .sig manifest: bad signature, read no further than the bound', async () => {
    const ref = parseReference(`${reg.host}/sig/bad:1.0.0`);
    const digest = await publish(ref, [app('1.0.0')], {}, { credentials: null });
    await assert.rejects(fetchWith(reg.host, 'sig/bad', { MOLT_TRUST_KEYS: pemPub }), (e: unknown) => e instanceof TrustRefusal && e.reason === 'no signature');

    const client = new RegistryClient(ref, { credentials: null, push: true });
    const junk = Buffer.from('not a payload at all');
    await client.uploadBlob(sha256Hex(junk), junk.length, () => Readable.from([junk]));
    const layer = (sig: string) => ({ mediaType: SIG.simpleSigning, digest: sha256Hex(junk), size: junk.length, annotations: { [SIG.cosignAnnotation]: sig } });
    const manifest = (sig: string) => Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: { mediaType: MT.empty, digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 }, layers: [layer(sig)] }));
    await client.uploadBlob('sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', 2, () => Readable.from([Buffer.from('{}')])).catch(() => undefined);
    const key = parsePemPrivateKey(fs.readFileSync(pemKey, 'utf8'));
    assert.ok(typeof key !== 'string');
    // A trusted key's signature over garbage: the payload is no simple-signing payload.
    await client.putManifest(cosignSignatureTag(digest), manifest(signPem(key, junk)), MT.ociManifest);
    await assert.rejects(fetchWith(reg.host, 'sig/bad', { MOLT_TRUST_KEYS: pemPub }), (e: unknown) => e instanceof TrustRefusal && e.reason === 'bad signature' && /not JSON/.test(e.detail ?? ''));
    // 2 MiB of signature annotation: the registry takes it (4 MiB limit), molt reads 1 MiB and stops.
    await client.putManifest(cosignSignatureTag(digest), manifest('A'.repeat(2 << 20)), MT.ociManifest);
    await assert.rejects(fetchWith(reg.host, 'sig/bad', { MOLT_TRUST_KEYS: pemPub }), (e: unknown) => e instanceof TrustRefusal && e.reason === 'bad signature' && /is more than the 1048576 allowed/.test(e.detail ?? ''));
  });

  test('publish --sign pushes the manifest by digest, then the signature, and only then the tag', async () => {
    const proxy = await startServer((req, res) => passThrough(reg.url, req, res));
    try {
      const digest = await publish(parseReference(`127.0.0.1:${proxy.port}/sig/order:1.0.0`), [app('1.0.0')], {}, { credentials: null, signWith: signer(pemKey) });
      const puts = proxy.log.filter((e) => e.method === 'PUT' && e.url.includes('/manifests/')).map((e) => e.url.replace(/^.*\/manifests\//, ''));
      assert.deepEqual(puts, [digest, cosignSignatureTag(digest), '1.0.0']);
    } finally {
      await proxy.close();
    }
  });

  test('a registry that never answers for the signature: the search ends at its deadline as a network fault (retried, not blocked)', async () => {
    const digest = await publish(parseReference(`${reg.host}/sig/slow:1.0.0`), [app('1.0.0')], {}, { credentials: null });
    const hang = await startServer((req, res) => (req.url?.includes('/manifests/sha256-') ? undefined : passThrough(reg.url, req, res)));
    try {
      const client = new RegistryClient(parseReference(`127.0.0.1:${hang.port}/sig/slow`), { credentials: null });
      await assert.rejects(discoverSignatures(client, digest, { deadlineMs: 300 }), (e: unknown) => e instanceof UpdateError && e.code === 'network' && /not read within 300 ms/.test(e.message));
    } finally {
      await hang.close();
    }
  });

  test("a referrer listed for a manifest but made for another (a copied tag schema index) is a bad signature", async () => {
    const a = await publish(parseReference(`${reg.host}/sig/copy:1.0.0`), [app('1.0.0')], {}, { credentials: null, signWith: signer(miniKey) });
    const b = await publish(parseReference(`${reg.host}/sig/copy:2.0.0`), [app('2.0.0')], {}, { credentials: null });
    const client = new RegistryClient(parseReference(`${reg.host}/sig/copy`), { credentials: null, push: true });
    await client.putManifest(referrersTag(b), (await client.getManifest(referrersTag(a))).bytes, MT.ociIndex);
    await assert.rejects(fetchWith(reg.host, 'sig/copy', { MOLT_TRUST_KEYS: miniPub }), (e: unknown) => e instanceof TrustRefusal && e.reason === 'bad signature' && new RegExp(`its subject is ${a}, not ${b}`).test(e.detail ?? ''));
  });

  test('a registry with the referrers API: publish sees OCI-Subject and writes no tag index; discovery asks /referrers; a keyless bundle verifies', async () => {
    // A loopback front for docker-registry that answers what 2.8 lacks: OCI-Subject on a PUT with a subject, and GET /referrers/<digest>.
    const subjects = new Map<string, Array<{ mediaType: string; digest: string; size: number; artifactType?: string }>>();
    front = await startServer(async (req, res) => {
      const m = /^\/v2\/.+\/referrers\/(sha256:[0-9a-f]{64})$/.exec(req.url ?? '');
      if (req.method === 'GET' && m) {
        const body = JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: subjects.get(m[1]!) ?? [] });
        res.writeHead(200, { 'content-type': MT.ociIndex, 'content-length': Buffer.byteLength(body) });
        res.end(body);
        return;
      }
      if (req.method !== 'PUT' || !/\/manifests\//.test(req.url ?? '')) return reply(res, await forward(reg.url, req));
      const body = await readAll(req);
      const up = await forward(reg.url, req, { body });
      const doc = JSON.parse(body.toString()) as { subject?: { digest: string }; artifactType?: string };
      if (up.status === 201 && doc.subject) {
        const list = subjects.get(doc.subject.digest) ?? [];
        list.push({ mediaType: MT.ociManifest, digest: sha256Hex(body), size: body.length, ...(doc.artifactType ? { artifactType: doc.artifactType } : {}) });
        subjects.set(doc.subject.digest, list);
        up.headers['oci-subject'] = doc.subject.digest;
      }
      reply(res, up);
    });
    const host = `127.0.0.1:${front.port}`;
    const ref = parseReference(`${host}/sig/api:1.0.0`);
    const digest = await publish(ref, [app('1.0.0')], {}, { credentials: null, signWith: signer(miniKey) });
    assert.ok(!front.log.some((e) => e.method === 'PUT' && e.url.endsWith(`/manifests/${referrersTag(digest)}`)), 'no tag schema index where the registry has the API');
    assert.equal(subjects.get(digest)?.length, 1);
    front.log.length = 0;
    const got = await fetchWith(host, 'sig/api', { MOLT_TRUST_KEYS: miniPub });
    assert.match(String(got.trustedBy), /^[0-9A-F]{16}$/);
    assert.ok(front.log.some((e) => e.url === `/v2/sig/api/referrers/${digest}`), 'the referrers API was asked');
    assert.ok(!front.log.some((e) => e.url.endsWith(`/manifests/${referrersTag(digest)}`)), 'and its answer was enough: no tag schema read');

    // Keyless: a Sigstore bundle whose in-toto subject is the manifest digest under the repository's name.
    const sigstore = testSigstore(fs.mkdtempSync(path.join(tmp, 'sigstore-')));
    const rootFile = path.join(tmp, 'trusted_root.json');
    fs.writeFileSync(rootFile, JSON.stringify(sigstore.root()));
    const kref = parseReference(`${host}/sig/keyless:2.0.0`);
    const kd = await publish(kref, [app('2.0.0')], {}, { credentials: null });
    const kclient = new RegistryClient(kref, { credentials: null, push: true });
    const subject = { mediaType: MT.ociManifest, digest: kd, size: (await kclient.getManifest(kd)).bytes.length };
    const bundle = (name: string) => Buffer.from(sigstore.bundle([{ name, sha256: kd.slice('sha256:'.length) }], WORKFLOW));
    await attachReferrer(kclient, subject, { artifactType: SIG.bundle, blob: bundle(`${host}/sig/keyless`), mediaType: SIG.bundle, title: 'bundle.json' });
    const kenv = { MOLT_TRUST_IDENTITY: WORKFLOW, MOLT_TRUST_ROOT: rootFile };
    assert.equal((await fetchWith(host, 'sig/keyless', kenv)).trustedBy, WORKFLOW);
  });
});
