// Registry faults, each put in by a small loopback proxy in front of the real docker-registry:
// 5xx then success, 429 with Retry-After, a Bearer challenge answered by our own token
// endpoint (and a blob redirect that must not carry the token), a hanging server, a truncated
// body, a connection reset, malformed or unknown manifests, paginated tag lists.
import { describe, test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import type http from 'node:http';
import { startRegistry, startServer, forward, reply, passThrough, type Registry, type TestServer } from '../helpers/registry.js';
import { OciSource, type OciSourceOptions } from '../../src/update/sources/oci.js';
import { publish } from '../../src/update/publish.js';
import { parseReference } from '../../src/update/oci/reference.js';
import { sha256Hex } from '../../src/update/oci/client.js';
import { MT } from '../../src/update/oci/manifest.js';
import { UpdateError } from '../../src/update/types.js';
import { setLogLevel } from '../../src/common/log.js';

setLogLevel('error');

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>;

let reg: Registry;
let proxy: TestServer;
let handler: Handler;
let tmp: string;
let blobDigest: string;
let blobBytes: Buffer;
let delays: number[];

function isErr(code: string, re?: RegExp) {
  return (e: unknown) => e instanceof UpdateError && e.code === code && (!re || re.test(e.message));
}

/** Source through the proxy, with retries recorded instead of slept. */
function source(ref: string, opts: OciSourceOptions = {}): OciSource {
  return new OciSource(`127.0.0.1:${proxy.port}/${ref}`, { sleep: async (ms) => void delays.push(ms), retries: 3, credentials: null, ...opts });
}

function staging(): string {
  return fs.mkdtempSync(path.join(tmp, 'staging-'));
}

const isBlobGet = (req: http.IncomingMessage) => req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '');
const isManifest = (req: http.IncomingMessage, method: string) => req.method === method && /\/manifests\//.test(req.url ?? '');
const count = (pred: (e: TestServer['log'][number]) => boolean) => proxy.log.filter(pred).length;

before(async () => {
  reg = await startRegistry();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-ocifault-'));
  const file = path.join(tmp, 'app.bin');
  blobBytes = crypto.randomBytes(64 * 1024);
  fs.writeFileSync(file, blobBytes);
  blobDigest = sha256Hex(blobBytes);
  for (const t of ['1.0.0', '1.1.0', '1.2.0', '2.0.0', '2.1.0-rc.1', 'latest']) await publish(parseReference(`${reg.host}/f/app:${t}`), [file], {});
  await publish(parseReference(`${reg.host}/f/app:stable`), [file], { version: '2.0.0' });
  proxy = await startServer((req, res) => handler(req, res));
});
after(async () => {
  await proxy?.close();
  await reg?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});
beforeEach(() => {
  handler = (req, res) => passThrough(reg.url, req, res);
  proxy.log.length = 0;
  delays = [];
});

describe('retries', () => {
  test('500 on the manifest HEAD, then success: retried once after a backoff', async () => {
    let n = 0;
    handler = (req, res) => {
      if (isManifest(req, 'HEAD') && n++ === 0) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end('{"errors":[{"code":"UNKNOWN","message":"boom"}]}');
        return;
      }
      return passThrough(reg.url, req, res);
    };
    const { releases } = await source('f/app:stable').list();
    assert.equal(releases[0]!.version, '2.0.0');
    assert.equal(count((e) => e.method === 'HEAD'), 2);
    assert.equal(delays.length, 1);
  });

  test('429 with Retry-After: 1 waits exactly what the registry asked, then succeeds', async () => {
    let n = 0;
    handler = (req, res) => {
      if (isManifest(req, 'GET') && n++ === 0) {
        res.writeHead(429, { 'retry-after': '1' });
        res.end();
        return;
      }
      return passThrough(reg.url, req, res);
    };
    const { releases } = await source('f/app:stable').list();
    assert.equal(releases.length, 1);
    assert.deepEqual(delays, [1000]);
  });

  test('429 with a long Retry-After is handed to the scheduler as rate-limited, not waited out', async () => {
    handler = (req, res) => {
      res.writeHead(429, { 'retry-after': '3600' });
      res.end();
    };
    await assert.rejects(source('f/app:stable').list(), (e: unknown) => isErr('rate-limited')(e) && (e as UpdateError).retryAfterMs === 3_600_000);
    assert.equal(proxy.log.length, 1);
    assert.deepEqual(delays, []);
  });

  test('during a Retry-After window later polls send nothing: rate-limited with the time left, until the window ends', async () => {
    let n = 0;
    handler = (req, res) => {
      if (n++ === 0) {
        res.writeHead(429, { 'retry-after': '1' });
        res.end();
        return;
      }
      return passThrough(reg.url, req, res);
    };
    // maxRetryAfterMs 0: the 429 goes back to the scheduler at once instead of being waited out.
    const src = source('f/app:stable', { maxRetryAfterMs: 0 });
    await assert.rejects(src.list(), (e: unknown) => isErr('rate-limited')(e) && (e as UpdateError).retryAfterMs === 1000);
    for (const poll of [() => src.list(), () => src.client.getManifest('2.0.0')]) {
      await assert.rejects(poll(), (e: unknown) => isErr('rate-limited', /Retry-After/)(e) && (e as UpdateError).retryAfterMs! > 0 && (e as UpdateError).retryAfterMs! <= 1000);
    }
    assert.equal(proxy.log.length, 1, 'nothing reached the registry inside the window');
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal((await src.list()).releases.length, 1);
  });

  test('while one call waits out a Retry-After, the others are refused without a request; the waiting call then goes', async () => {
    let n = 0;
    handler = (req, res) => {
      if (isManifest(req, 'HEAD') && n++ === 0) {
        res.writeHead(503, { 'retry-after': '30' });
        res.end();
        return;
      }
      return passThrough(reg.url, req, res);
    };
    let wake!: () => void;
    let sleeping!: () => void;
    const asleep = new Promise<void>((r) => (sleeping = r));
    const src = source('f/app:stable', { sleep: (ms) => (delays.push(ms), sleeping(), new Promise<void>((r) => (wake = r))) });
    const first = src.list();
    await asleep;
    assert.deepEqual(delays, [30_000]);
    await assert.rejects(src.client.getManifest('1.0.0'), (e: unknown) => isErr('rate-limited')(e) && (e as UpdateError).retryAfterMs! > 29_000);
    assert.equal(proxy.log.length, 1);
    wake();
    assert.equal((await first).releases.length, 1);
    assert.ok(proxy.log.length > 1, 'the call that waited went on');
  });

  test('500 every time: gives up after the retries with an error naming the status', async () => {
    handler = (_req, res) => {
      res.writeHead(503);
      res.end();
    };
    await assert.rejects(source('f/app:stable', { retries: 2 }).list(), isErr('http', /HTTP 503/));
    assert.equal(proxy.log.length, 3);
    assert.equal(delays.length, 2);
  });
});

describe('authentication', () => {
  test('401 Bearer challenge: token fetched with Basic credentials, sent to the registry, never to the redirected blob host', async () => {
    const storageAuth: (string | undefined)[] = [];
    const storage = await startServer(async (req, res) => {
      storageAuth.push(req.headers.authorization);
      reply(res, await forward(reg.url, req, { path: req.url!.replace(/^\/storage/, '') }));
    });
    const tokenReqs: { auth?: string; query: string }[] = [];
    try {
      handler = async (req, res) => {
        const url = new URL(req.url!, 'http://x');
        if (url.pathname === '/token') {
          tokenReqs.push({ auth: req.headers.authorization, query: url.search });
          const ok = req.headers.authorization === 'Basic ' + Buffer.from('bob:pa:ss').toString('base64');
          res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
          res.end(ok ? JSON.stringify({ token: 'tok-123', expires_in: 300 }) : '{}');
          return;
        }
        if (req.headers.authorization !== 'Bearer tok-123') {
          res.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.1:${proxy.port}/token",service="test-registry",scope="repository:f/app:pull"` });
          res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
          return;
        }
        if (isBlobGet(req)) {
          res.writeHead(307, { location: `http://127.0.0.1:${storage.port}/storage${req.url}` });
          res.end();
          return;
        }
        return passThrough(reg.url, req, res);
      };
      const src = source('f/app:stable', { credentials: { username: 'bob', password: 'pa:ss' } });
      const [rel] = (await src.list()).releases;
      const got = await src.fetch(rel!, staging());
      assert.deepEqual(fs.readFileSync(path.join(got.dir, 'app.bin')), blobBytes);
      assert.equal(tokenReqs.length, 1, 'one token, cached for the next requests');
      assert.match(tokenReqs[0]!.query, /service=test-registry/);
      assert.match(tokenReqs[0]!.query, /scope=repository%3Af%2Fapp%3Apull/);
      const registryCalls = proxy.log.filter((e) => e.url.startsWith('/v2/'));
      assert.ok(registryCalls.some((e) => e.authorization === 'Bearer tok-123'));
      assert.deepEqual(storageAuth, [undefined], 'the blob host got the request without Authorization');

      // Wrong credentials: a clear refusal, no loop.
      await assert.rejects(source('f/app:stable', { credentials: { username: 'bob', password: 'wrong' } }).list(), isErr('http', /refused the credentials/));
      // No credentials at all: the anonymous token request is refused too.
      await assert.rejects(source('f/app:stable').list(), isErr('http', /refused anonymous access/));
    } finally {
      await storage.close();
    }
  });

  test('credentials come from a docker config.json when MOLT_OCI_USER is unset (Basic challenge)', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'dockercfg-'));
    const host = `127.0.0.1:${proxy.port}`;
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ auths: { [host]: { auth: Buffer.from('ann:pw').toString('base64') } } }));
    handler = (req, res) => {
      if (req.headers.authorization !== 'Basic ' + Buffer.from('ann:pw').toString('base64')) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="registry"' });
        res.end();
        return;
      }
      return passThrough(reg.url, req, res);
    };
    const src = new OciSource(`${host}/f/app:stable`, { env: { DOCKER_CONFIG: dir }, sleep: async () => {} });
    const { releases } = await src.list();
    assert.equal(releases[0]!.version, '2.0.0');
    await assert.rejects(new OciSource(`${host}/f/app:stable`, { env: { DOCKER_CONFIG: path.join(tmp, 'none') } }).list(), isErr('http', /authentication required/));
  });
});

describe('registry quirks', () => {
  test('a registry that refuses HEAD (405) or omits the digest on it is polled with a verified GET', async () => {
    handler = async (req, res) => {
      if (isManifest(req, 'HEAD')) {
        res.writeHead(405);
        res.end();
        return;
      }
      return passThrough(reg.url, req, res);
    };
    const { releases } = await source('f/app:stable').list();
    assert.equal(releases[0]!.version, '2.0.0');
    handler = async (req, res) => {
      const up = await forward(reg.url, req);
      if (isManifest(req, 'HEAD')) delete up.headers['docker-content-digest'];
      reply(res, up);
    };
    const again = await source('f/app:stable').list();
    assert.equal(again.releases[0]!.digest, releases[0]!.digest);
    assert.ok(proxy.log.some((e) => e.method === 'GET' && /\/manifests\/stable$/.test(e.url)));
  });
});

describe('network faults', () => {
  test('a server that never answers times out', async () => {
    const hang = await startServer(() => {
      /* accept and say nothing */
    });
    try {
      const src = new OciSource(`127.0.0.1:${hang.port}/f/app:stable`, { timeoutMs: 300, retries: 1, sleep: async () => {}, credentials: null });
      await assert.rejects(src.list(), isErr('network', /no response within/));
      assert.equal(hang.log.length, 2, 'tried again once');
    } finally {
      await hang.close();
    }
  });

  test('a blob that stalls mid-body ends on the idle timeout, leaving no debris', async () => {
    handler = async (req, res) => {
      if (isBlobGet(req)) {
        res.writeHead(200, { 'content-length': String(blobBytes.length) });
        res.write(blobBytes.subarray(0, 1000));
        return; // never finishes
      }
      return passThrough(reg.url, req, res);
    };
    const src = source('f/app:stable', { idleMs: 300, blobRetries: 0 });
    const [rel] = (await src.list()).releases;
    const root = staging();
    await assert.rejects(src.fetch(rel!, root), isErr('network', /idle/));
    assert.deepEqual(fs.readdirSync(root), []);
  });

  test('a truncated blob body is retried; when it keeps happening the fetch fails with no debris', async () => {
    let cut = 1;
    handler = async (req, res) => {
      if (isBlobGet(req) && cut-- > 0) {
        res.writeHead(200, { 'content-length': String(blobBytes.length) });
        res.write(blobBytes.subarray(0, 5000), () => res.socket?.end());
        return;
      }
      return passThrough(reg.url, req, res);
    };
    const src = source('f/app:stable', { blobRetries: 2 });
    const [rel] = (await src.list()).releases;
    const got = await src.fetch(rel!, staging());
    assert.deepEqual(fs.readFileSync(path.join(got.dir, 'app.bin')), blobBytes);
    assert.equal(count((e) => /\/blobs\//.test(e.url)), 2);

    cut = 100;
    proxy.log.length = 0;
    const root = staging();
    await assert.rejects(src.fetch(rel!, root), (e: unknown) => e instanceof UpdateError && (e.code === 'network' || e.code === 'integrity') && /truncated|interrupted|closed/.test(e.message));
    assert.equal(count((e) => /\/blobs\//.test(e.url)), 3);
    assert.deepEqual(fs.readdirSync(root), []);
  });

  test('a connection reset is retried, and fails cleanly when it persists', async () => {
    let resets = 1;
    handler = (req, res) => {
      if (/\/manifests\//.test(req.url ?? '') && resets-- > 0) {
        req.socket.destroy();
        return;
      }
      return passThrough(reg.url, req, res);
    };
    const { releases } = await source('f/app:stable').list();
    assert.equal(releases[0]!.version, '2.0.0');
    assert.equal(delays.length, 1);
    resets = 100;
    await assert.rejects(source('f/app:stable').list(), isErr('network', /ECONNRESET|socket hang up/));
  });
});

describe('bad manifests', () => {
  /** Serve `body` as the manifest for every manifest request, with a digest header that matches it. */
  function serveManifest(body: Buffer, contentType: string): Handler {
    return (req, res) => {
      if (/\/manifests\//.test(req.url ?? '')) {
        res.writeHead(200, { 'content-type': contentType, 'docker-content-digest': sha256Hex(body), 'content-length': String(body.length) });
        res.end(req.method === 'HEAD' ? undefined : body);
        return;
      }
      return passThrough(reg.url, req, res);
    };
  }

  test('malformed manifest JSON is a bad-input error', async () => {
    handler = serveManifest(Buffer.from('{"schemaVersion": 2, "layers": ['), MT.ociManifest);
    await assert.rejects(source('f/app:stable').list(), isErr('bad-input', /malformed manifest JSON/));
  });

  test('an unknown manifest media type is refused by name', async () => {
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.example.bundle+json', layers: [] }));
    handler = serveManifest(body, 'application/vnd.example.bundle+json');
    await assert.rejects(source('f/app:stable').list(), isErr('bad-input', /unknown manifest media type 'application\/vnd\.example\.bundle\+json'/));
  });

  test('a layer of unusable media type refuses the release before any blob is downloaded', async () => {
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: { mediaType: MT.empty, digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', digest: blobDigest, size: blobBytes.length }] }));
    handler = serveManifest(body, MT.ociManifest);
    const src = source('f/app:stable');
    const [rel] = (await src.list()).releases;
    const root = staging();
    await assert.rejects(src.fetch(rel!, root), isErr('bad-input', /zstd/));
    assert.equal(count((e) => /\/blobs\//.test(e.url)), 0);
    assert.deepEqual(fs.readdirSync(root), []);
  });

  test('a release larger than the free space is refused before a byte is downloaded', async () => {
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: { mediaType: MT.empty, digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 }, layers: [{ mediaType: MT.layerTarGzip, digest: blobDigest, size: 2 ** 50 }] }));
    handler = serveManifest(body, MT.ociManifest);
    // Limits raised past the layer's size, so that the free space is what refuses it.
    const src = source('f/app:stable', { extractLimits: { maxBytes: 2 ** 52 } });
    const [rel] = (await src.list()).releases;
    const root = staging();
    await assert.rejects(src.fetch(rel!, root), isErr('disk-full', /not enough free space/));
    assert.equal(count((e) => /\/blobs\//.test(e.url)), 0);
    assert.deepEqual(fs.readdirSync(root), []);
  });

  test('layers over the release size limit are a hostile archive, refused before a byte is downloaded', async () => {
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: { mediaType: MT.empty, digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 }, layers: [{ mediaType: MT.layerTarGzip, digest: blobDigest, size: 2 ** 50 }] }));
    handler = serveManifest(body, MT.ociManifest);
    const src = source('f/app:stable');
    const [rel] = (await src.list()).releases;
    const root = staging();
    await assert.rejects(src.fetch(rel!, root), isErr('hostile-archive', /exceed the limit of 2147483648 bytes/));
    assert.equal(count((e) => /\/blobs\//.test(e.url)), 0);
    assert.deepEqual(fs.readdirSync(root), []);
  });

  test('manifest bytes that do not match the registry digest are an integrity error', async () => {
    handler = async (req, res) => {
      const up = await forward(reg.url, req);
      if (isManifest(req, 'GET')) {
        const body = Buffer.from(up.body.toString().replace('"size":', '"size": '));
        reply(res, up, body); // same Docker-Content-Digest header, different bytes
        return;
      }
      reply(res, up);
    };
    await assert.rejects(source('f/app').fetch({ version: '1.0.0', tag: '1.0.0', prerelease: false, locator: { tag: '1.0.0' } }, staging()), isErr('integrity', /does not match its digest/));
  });
});

describe('tag list pagination', () => {
  /** A registry that honours n: pages of the sorted list, with or without a Link header. */
  function paginate(withLink: boolean): Handler {
    return async (req, res) => {
      const url = new URL(req.url!, 'http://x');
      if (!url.pathname.endsWith('/tags/list')) return passThrough(reg.url, req, res);
      const up = await forward(reg.url, req, { path: url.pathname });
      const all = (JSON.parse(up.body.toString()) as { tags: string[] }).tags.sort();
      const n = Number(url.searchParams.get('n') ?? all.length);
      const last = url.searchParams.get('last');
      const from = last ? all.findIndex((t) => t > last) : 0;
      const page = from < 0 ? [] : all.slice(from, from + n);
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (withLink && from >= 0 && from + n < all.length) headers.link = `<${url.pathname}?n=${n}&last=${encodeURIComponent(page[page.length - 1]!)}>; rel="next"`;
      res.writeHead(200, headers);
      res.end(JSON.stringify({ name: 'f/app', tags: page }));
    };
  }
  const want = ['2.1.0-rc.1', '2.0.0', '1.2.0', '1.1.0', '1.0.0'];

  test('pages followed through the Link header with a small n', async () => {
    handler = paginate(true);
    const { releases } = await source('f/app', { pageSize: 2 }).list();
    assert.deepEqual(releases.map((r) => r.version), want);
    const pages = proxy.log.filter((e) => e.url.includes('/tags/list'));
    assert.equal(pages.length, 4); // 7 tags in pages of 2
    assert.ok(pages.every((e) => e.url.includes('n=2')));
  });

  test('a registry that pages without a Link header is read with last=', async () => {
    handler = paginate(false);
    const { releases } = await source('f/app', { pageSize: 3 }).list();
    assert.deepEqual(releases.map((r) => r.version), want);
    assert.ok(proxy.log.filter((e) => e.url.includes('/tags/list')).length >= 3);
  });

  test('the real registry ignores n and answers everything at once; a repeat poll is notModified', async () => {
    const src = source('f/app', { pageSize: 2 });
    const first = await src.list();
    assert.deepEqual(first.releases.map((r) => r.version), want);
    assert.equal(first.notModified, false);
    assert.equal((await src.list()).notModified, true);
  });
});
