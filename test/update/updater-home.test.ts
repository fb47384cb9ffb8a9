// `molt updater` with a MOLT_HOME that cannot be one: one line naming MOLT_HOME and exit 2, like every
// other configuration error (not a raw EEXIST with exit 1, not a silent spin in Node's recursive mkdir).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runCli, tmpdir } from '../helpers/molt.js';

describe('molt updater refuses an unusable MOLT_HOME', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  before(() => {
    dir = tmpdir('home');
    fs.mkdirSync(path.join(dir, 'releases'));
    fs.writeFileSync(path.join(dir, 'molt.yaml'), '');
    env = { PATH: process.env.PATH, MOLT_CONFIG: path.join(dir, 'molt.yaml'), MOLT_DIR: path.join(dir, 'releases'), MOLT_SOCKET: path.join(dir, 'molt.sock') };
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const cases: [string, RegExp][] = [
    ['/etc/passwd', /^molt updater: MOLT_HOME="\/etc\/passwd" cannot be used: \/etc\/passwd exists and is not a directory\n$/],
    ['/etc/passwd/x', /^molt updater: MOLT_HOME="\/etc\/passwd\/x" cannot be used: \/etc\/passwd exists and is not a directory\n$/],
    ['/proc/self', /^molt updater: MOLT_HOME="\/proc\/self" cannot be used: mkdir \/proc\/self\/versions: ENOENT\n$/],
  ];
  for (const [home, re] of cases) {
    test(`MOLT_HOME=${home}: one line, exit 2`, async () => {
      // The bound is for a failure to stop at all (the /proc spin): a refusal comes at once.
      const r = await runCli(['updater'], { ...env, MOLT_HOME: home }, 20_000);
      assert.match(r.err, re);
      assert.equal(r.code, 2);
    });
  }

  test('a file where the store keeps a directory is named too', async () => {
    const home = path.join(dir, 'h');
    fs.mkdirSync(home);
    fs.writeFileSync(path.join(home, 'staging'), 'x');
    const r = await runCli(['updater'], { ...env, MOLT_HOME: home }, 20_000);
    assert.equal(r.err, `molt updater: MOLT_HOME=${JSON.stringify(home)} cannot be used: ${home}/staging exists and is not a directory\n`);
    assert.equal(r.code, 2);
  });
});
