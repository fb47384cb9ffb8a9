// The blob cache (MOLT_HOME/cache/sha256) follows the versions kept: releases
// from GitHub (the local fake) with MOLT_KEEP=1 leave the blobs of the versions
// still installed, not one per release ever downloaded.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tmpdir } from '../helpers/molt.js';
import { FakeGitHub } from '../helpers/fake-github.js';
import { packHello, Stack } from './updater-stack.js';

const TOKEN = 'ghp_e2eFakeToken0123456789abcdefABCDEF';
const arch = os.arch() === 'x64' ? 'amd64' : os.arch();

describe('updater: cached blobs are collected with the versions pruned', { timeout: 240_000 }, () => {
  let gh: FakeGitHub | undefined;
  let stack: Stack | undefined;
  const work = tmpdir('blobs');
  after(async () => {
    await stack?.dispose();
    await gh?.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  test('five releases with MOLT_KEEP=1: only the blobs of current and previous stay', async () => {
    gh = await FakeGitHub.start({ owner: 'acme', repo: 'hello', token: TOKEN });
    stack = await Stack.create({ label: 'e2e-blobs', env: { MOLT_GITHUB: 'acme/hello', MOLT_GITHUB_API: gh.baseUrl, GITHUB_TOKEN: TOKEN, MOLT_KEEP: '1', MOLT_TRIAL: '2s' } });
    const digests: Record<string, string> = {};
    const publish = (version: string) => {
      const data = fs.readFileSync(packHello(version, path.join(work, version), 'ok'));
      digests[version] = createHash('sha256').update(data).digest('hex');
      gh!.addRelease({ tag: `v${version}`, assets: [{ name: `hello-${version}-linux-${arch}.tar.gz`, data }] });
    };
    const versions = ['1.0.0', '2.0.0', '3.0.0', '4.0.0', '5.0.0'];
    for (const [i, v] of versions.entries()) {
      publish(v);
      if (i === 0) stack.start();
      await stack.waitStatus(`${v} committed`, (x) => x.phase === 'idle' && x.history.some((h) => h.event === 'commit' && h.version === v), 60_000);
    }
    assert.deepEqual(stack.installedVersions(), ['4.0.0', '5.0.0']);
    const blobs = fs.readdirSync(path.join(stack.home, 'cache', 'sha256')).sort();
    assert.deepEqual(blobs, [digests['4.0.0'], digests['5.0.0']].sort(), 'the blobs of the kept versions, and no others');
  });
});
