// End to end through GitHub Releases, played by the faithful local fake
// (test/helpers/fake-github.ts: real API paths, ETags, rate-limit headers, 302
// to a storage host that refuses Authorization). molt init as PID 1 of a PID
// namespace runs the app and updater services with MOLT_GITHUB=owner/repo,
// MOLT_GITHUB_API at the fake and a GITHUB_TOKEN. Each release carries the hello
// tarball as its asset, with GitHub's `digest` field (v4: digest null and a
// SHA256SUMS asset, as for uploads before 2025-06). The same path as the
// registry test: v1, v2 taken, v3 crashes -> rolled back and blocked across an
// updater kill, v4 taken; and the token is used for the API, never sent to the
// storage host, never logged.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tmpdir } from '../helpers/molt.js';
import { FakeGitHub } from '../helpers/fake-github.js';
import { oneToFour, packHello, Stack } from './updater-stack.js';

const TOKEN = 'ghp_e2eFakeToken0123456789abcdefABCDEF';
const arch = os.arch() === 'x64' ? 'amd64' : os.arch();

describe('updater end to end: GitHub Releases (local fake)', { timeout: 180_000 }, () => {
  let gh: FakeGitHub | undefined;
  let stack: Stack | undefined;
  let work: string | undefined;

  after(async () => {
    await stack?.dispose();
    await gh?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('v1 runs; v2 is taken within an interval; v3 crashes: rolled back to v2 and blocked across an updater restart; v4 is taken', async () => {
    gh = await FakeGitHub.start({ owner: 'acme', repo: 'hello', token: TOKEN });
    work = tmpdir('gh-releases');
    stack = await Stack.create({
      label: 'e2e-gh',
      env: { MOLT_GITHUB: 'acme/hello', MOLT_GITHUB_API: gh.baseUrl, GITHUB_TOKEN: TOKEN },
    });
    const digests: Record<string, string> = {};
    const publish = async (version: string, behaviour: 'ok' | 'crash') => {
      const data = fs.readFileSync(packHello(version, path.join(work!, version), behaviour));
      digests[version] = createHash('sha256').update(data).digest('hex');
      const name = `hello-${version}-linux-${arch}.tar.gz`;
      if (version !== '4.0.0') {
        // The digest field is filled in by the fake (sha256:<hex>), as GitHub does for assets uploaded since 2025-06.
        gh!.addRelease({ tag: `v${version}`, name: `hello ${version}`, assets: [{ name, data }] });
      } else {
        // An older upload: digest null, verified through the release's SHA256SUMS asset instead.
        gh!.addRelease({
          tag: `v${version}`,
          assets: [
            { name, data, digest: null },
            { name: 'SHA256SUMS', data: `${digests[version]}  ${name}\n`, contentType: 'text/plain', digest: null },
          ],
        });
      }
    };

    await oneToFour(stack, publish, /acme\/hello/, 'github');

    const s = await stack.status();
    const dl = s!.history.find((h) => h.event === 'download' && h.version === '4.0.0');
    assert.ok(dl?.detail?.includes(digests['4.0.0']!), `4.0.0 (digest null) was verified through SHA256SUMS: ${dl?.detail}`);
    const dl2 = s!.history.find((h) => h.event === 'download' && h.version === '2.0.0');
    assert.ok(dl2?.detail?.includes(digests['2.0.0']!), `2.0.0 was verified against its digest field: ${dl2?.detail}`);

    // The token: on every API request (authorized), never on the storage host, never in logs.
    const api = gh.apiRequests();
    assert.ok(api.length > 0);
    assert.ok(api.every((e) => e.authorized), 'every API request carried the token');
    const storage = gh.log.filter((e) => e.server === 'storage');
    assert.ok(storage.length >= 4, 'each release was downloaded from the storage host');
    assert.ok(storage.every((e) => !e.sentAuthorization && e.status === 200), 'no Authorization reached the storage host');
    assert.ok(
      api.some((e) => e.status === 304),
      'polls with nothing new were answered 304 (ETag) and cost no rate limit',
    );
    const r = await stack.stop();
    assert.equal(r?.code, 0, 'molt exits 0 on TERM');
    assert.ok(!stack.logs().includes(TOKEN), 'the token never appears in the logs');
    assert.ok(!fs.readFileSync(path.join(stack.home, 'state.json'), 'utf8').includes(TOKEN), 'nor in state.json');
  });
});
