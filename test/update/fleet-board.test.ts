// The fleet's notice board against Debian's docker-registry on loopback (no referrers API:
// the referrers tag schema path): verdicts written and read back, writers racing on the
// index, a registry that refuses writes, garbage and oversized verdicts, signed verdicts
// required with a trust setting, and the pause tag.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setLogSink } from '../../src/common/log.js';
import { VerdictBoard } from '../../src/update/fleet/board.js';
import { OciFleetBoard } from '../../src/update/fleet/boards.js';
import { Fleet } from '../../src/update/fleet/fleet.js';
import { ANN_VERDICT, encodeVerdict, foldVerdicts, VERDICT_TYPE, type Verdict } from '../../src/update/fleet/verdict.js';
import { RegistryClient } from '../../src/update/oci/client.js';
import { MT } from '../../src/update/oci/manifest.js';
import { parseReference } from '../../src/update/oci/reference.js';
import { addToReferrersIndex, buildReferrerManifest, referrersTag } from '../../src/update/oci/referrers.js';
import { pushSmall } from '../../src/update/oci/attach.js';
import { sha256Hex } from '../../src/update/oci/errors.js';
import { publish } from '../../src/update/publish.js';
import { parseTrustKey, type TrustKey } from '../../src/update/trust/keys.js';
import { parseSigningKey, type SigningKey } from '../../src/update/trust/sign.js';
import { passThrough, startRegistry, startServer, type Registry, type TestServer, readOnlyProxy } from '../helpers/registry.js';
import { tmpdir } from '../helpers/molt.js';

const none = { required: false, keys: [] as TrustKey[] };

function pemPair(): { key: SigningKey; pub: TrustKey } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    key: parseSigningKey(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()) as SigningKey,
    pub: parseTrustKey(publicKey.export({ type: 'spki', format: 'pem' }).toString(), 'fleet.pem') as TrustKey,
  };
}

describe('fleet board on a real registry', { timeout: 120_000 }, () => {
  let reg: Registry;
  let work: string;
  const servers: TestServer[] = [];
  let n = 0;

  before(async () => {
    reg = await startRegistry();
    work = tmpdir('fleet-board');
  });
  after(async () => {
    for (const s of servers) await s.close();
    await reg?.stop();
    fs.rmSync(work, { recursive: true, force: true });
  });

  /** A fresh release in its own repository: its manifest is the verdicts' subject. */
  async function release(host = reg.host): Promise<{ repo: string; subject: { mediaType: string; digest: string; size: number } }> {
    const repo = `app${++n}`;
    const file = path.join(work, `app-${n}.txt`);
    fs.writeFileSync(file, `release ${n}\n`);
    const ref = parseReference(`${reg.host}/${repo}:1.0.0`);
    await publish(ref, [file], { version: '1.0.0' }, { credentials: null });
    const head = await new RegistryClient(parseReference(`${host}/${repo}`), { credentials: null }).headManifest('1.0.0');
    return { repo, subject: { mediaType: head.mediaType, digest: head.digest, size: head.size ?? 0 } };
  }

  const board = (repo: string, opts: { key?: SigningKey; trust?: { required: boolean; keys: TrustKey[] }; host?: string } = {}) =>
    new VerdictBoard(new RegistryClient(parseReference(`${opts.host ?? reg.host}/${repo}`), { credentials: null, push: true, retries: 0 }), { trust: opts.trust ?? none, ...(opts.key ? { key: opts.key } : {}) });
  const verdict = (subject: string, over: Partial<Verdict> = {}): Verdict => ({ kind: 'blocked', subject, version: '1.0.0', reason: 'crashed 2 times', replica: 'web-1', time: new Date().toISOString(), ...over });

  test('a verdict written is read back by another replica; one GET reads them all', async () => {
    const { repo, subject } = await release();
    await board(repo).write(subject, verdict(subject.digest));
    await board(repo).write(subject, verdict(subject.digest, { kind: 'committed', replica: 'web-2' }));
    const reader = board(repo);
    const got = await reader.read(subject.digest);
    assert.deepEqual(got.map((v) => [v.kind, v.replica]).sort(), [['blocked', 'web-1'], ['committed', 'web-2']]);
    // The referrers API answered 404 once; from then on one request per read.
    const before = reader.requests;
    await reader.read(subject.digest);
    assert.equal(reader.requests - before, 1);
  });

  test('writers racing on the referrers index: every verdict lands', async () => {
    const { repo, subject } = await release();
    const writers = ['web-1', 'web-2', 'web-3', 'web-4', 'web-5'];
    await Promise.all(writers.map((r) => board(repo).write(subject, verdict(subject.digest, { kind: 'committed', replica: r }))));
    const got = await board(repo).read(subject.digest);
    assert.deepEqual(got.map((v) => v.replica).sort(), writers);
  });

  test('a 500 while reading the index (docker-registry, a tag being rewritten) costs a round, not the verdict', async () => {
    const { repo, subject } = await release();
    let failed = 0;
    const proxy = await startServer(async (req, res) => {
      if (req.method === 'GET' && req.url!.includes(`/manifests/${referrersTag(subject.digest)}`) && failed++ === 0) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: 'unknown error' }] }));
        return;
      }
      await passThrough(reg.url, req, res);
    });
    servers.push(proxy);
    await board(repo, { host: `127.0.0.1:${proxy.port}` }).write(subject, verdict(subject.digest, { kind: 'blocked', replica: 'web-1' }));
    assert.equal(failed > 1, true, 'the index was read again after the 500');
    assert.deepEqual((await board(repo).read(subject.digest)).map((v) => v.replica), ['web-1']);
  });

  test('a registry that refuses writes (403): one warning line, nothing thrown, nothing written', async () => {
    const { repo, subject } = await release();
    const proxy = await readOnlyProxy(reg.url);
    servers.push(proxy);
    const lines: string[] = [];
    setLogSink((l) => lines.push(l));
    try {
      const fleet = new Fleet({ mode: 'write', replica: 'web-1', canaryShare: 0, needCommits: 1, trust: none }, new OciFleetBoard(board(repo, { host: `127.0.0.1:${proxy.port}` })), work);
      await fleet.share({ version: '1.0.0', tag: '1.0.0', prerelease: false, digest: subject.digest, locator: {} }, 'blocked', 'crashed');
    } finally {
      setLogSink((l) => process.stderr.write(l + '\n'));
    }
    const warned = lines.filter((l) => /cannot share the verdict/.test(l));
    assert.equal(warned.length, 1, lines.join('\n'));
    assert.match(warned[0]!, /status=403/);
    assert.deepEqual(await board(repo).read(subject.digest), []);
  });

  test('garbage and oversized verdicts are ignored with one line each; good ones are still read', async () => {
    const { repo, subject } = await release();
    await board(repo).write(subject, verdict(subject.digest, { replica: 'good' }));
    // Referrers written by hand (real manifests, as the registry wants): a broken document and one over the size bound.
    const client = new RegistryClient(parseReference(`${reg.host}/${repo}`), { credentials: null, push: true });
    const tag = referrersTag(subject.digest);
    const layer = { ...(await pushSmall(client, Buffer.from('x'))), mediaType: VERDICT_TYPE };
    await pushSmall(client, Buffer.from('{}'));
    const big = encodeVerdict(verdict(subject.digest, { replica: 'big' })).replace('"reason":"', `"reason":"${'x'.repeat(2000)}`);
    for (const text of ['{"v":1,"kind":"blocked",', big]) {
      const bytes = buildReferrerManifest(subject, VERDICT_TYPE, layer, new Date().toISOString(), { [ANN_VERDICT]: text });
      const digest = await client.putManifest(sha256Hex(bytes), bytes, MT.ociManifest);
      const had = await client.getManifest(tag);
      const index = had.manifest.kind === 'index' ? had.manifest : undefined;
      await client.putManifest(tag, addToReferrersIndex(index, { mediaType: MT.ociManifest, digest, size: bytes.length, artifactType: VERDICT_TYPE, annotations: { [ANN_VERDICT]: text } }), MT.ociIndex);
    }
    const lines: string[] = [];
    setLogSink((l) => lines.push(l));
    let got: Verdict[];
    const reader = board(repo);
    try {
      got = await reader.read(subject.digest);
      await reader.read(subject.digest);
    } finally {
      setLogSink((l) => process.stderr.write(l + '\n'));
    }
    assert.deepEqual(got.map((v) => v.replica), ['good']);
    const ignored = lines.filter((l) => /verdict ignored/.test(l));
    assert.equal(ignored.length, 2, `one line per bad entry, not per read:\n${lines.join('\n')}`);
    assert.ok(ignored.some((l) => /not JSON/.test(l)) && ignored.some((l) => /larger than 1024 bytes/.test(l)), ignored.join('\n'));
  });

  test('with a trust setting only verdicts signed by a trusted key count', async () => {
    const { repo, subject } = await release();
    const fleetKey = pemPair();
    const stranger = pemPair();
    const trust = { required: true, keys: [fleetKey.pub] };
    await board(repo).write(subject, verdict(subject.digest, { replica: 'unsigned' }));
    await board(repo, { key: stranger.key }).write(subject, verdict(subject.digest, { replica: 'stranger' }));
    assert.equal(foldVerdicts(await board(repo, { trust }).read(subject.digest)).blocked, undefined, 'no trusted block yet');
    await board(repo, { key: fleetKey.key }).write(subject, verdict(subject.digest, { replica: 'signed' }));
    assert.equal(foldVerdicts(await board(repo, { trust }).read(subject.digest)).blocked?.replica, 'signed');
    // Without a trust setting every well-formed verdict counts (the newest block).
    assert.equal((await board(repo).read(subject.digest)).length, 3);
  });

  test('pause tag: paused, then resumed by overwriting the tag; an unsigned pause is ignored under trust', async () => {
    const { repo } = await release();
    const reader = board(repo);
    assert.equal(await reader.readPause(), undefined);
    await board(repo).writePause(true, 'ops', 'incident 42');
    assert.equal((await reader.readPause())?.reason, 'incident 42');
    const k = pemPair();
    assert.equal(await board(repo, { trust: { required: true, keys: [k.pub] } }).readPause(), undefined, 'unsigned pause not trusted');
    await board(repo).writePause(false, 'ops', 'over');
    assert.equal(await reader.readPause(), undefined);
    // Unchanged tag: a HEAD only.
    const before = reader.requests;
    await reader.readPause();
    assert.equal(reader.requests - before, 1);
  });
});
