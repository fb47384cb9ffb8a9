// Fault injection: kill -9 of the updater in every phase of an update, and a
// kill -9 of the whole container mid-update followed by a restart. Afterwards
// the app runs the old or the new complete version, `current` always resolves,
// state.json is valid, and no staging debris is left.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { molt, stopAndWait, waitFor } from '../helpers/molt.js';
import { currentResolves, makeStack, stagingEmpty, type Stack } from '../helpers/stack.js';
import { parseJournal } from '../../src/update/journal.js';

const svKillUpdater = (s: Stack) => {
  const r = molt(['sv', 'kill', path.join(s.services, 'updater')]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
};

async function settled(s: Stack, version: string) {
  try {
    await waitFor(`app answering ${version}`, async () => (await s.appVersion()) === version, 40_000);
    await waitFor('journal idle', () => s.journal()?.phase === 'idle', 20_000);
  } catch (err) {
    // What molt said is the evidence a failure needs.
    throw new Error(`${(err as Error).message}\n--- molt output (tail) ---\n${s.molt.out().split('\n').slice(-40).join('\n')}`);
  }
  const text = fs.readFileSync(path.join(s.home, 'state.json'), 'utf8');
  assert.doesNotThrow(() => parseJournal(text), 'state.json is valid');
  assert.ok(stagingEmpty(s.home), 'no staging debris');
  for (const v of fs.readdirSync(path.join(s.home, 'versions'))) {
    assert.ok(fs.existsSync(path.join(s.home, 'versions', v, 'run')), `versions/${v} is complete`);
  }
}

describe('kill -9 of the updater in every phase', () => {
  let s: Stack;
  let sampler: NodeJS.Timeout;
  let installed = false;
  let brokenSamples = 0;
  let pauseFile: string;

  before(async () => {
    const root = fs.mkdtempSync('/tmp/molt-faults-');
    pauseFile = path.join(root, 'pause');
    // The updater is killed nine times in a row: keep init's restart backoff short.
    s = await makeStack({ MOLT_FAULT_PAUSE: `@${pauseFile}`, MOLT_TRIAL: '1s', MOLT_MAX_BACKOFF: '2s' });
    s.publish('1.0.0');
    await settled(s, '1.0.0');
    sampler = setInterval(() => {
      if (!installed) installed = currentResolves(s.home);
      else if (!currentResolves(s.home)) brokenSamples++;
    }, 5);
  });
  after(async () => {
    clearInterval(sampler);
    await stopAndWait(s.molt);
  });

  // [phase, next release, does it crash, where the app ends up]
  const cases: [string, string, boolean][] = [
    ['checking', '1.1.0', false],
    ['downloading', '1.2.0', false],
    ['staged', '1.3.0', false],
    ['stopping', '1.4.0', false],
    ['swapping', '1.5.0', false],
    ['starting', '1.6.0', false],
    ['trial', '1.7.0', false],
    ['committed', '1.8.0', false],
    ['rolling-back', '1.9.0', true],
  ];
  let running = '1.0.0';
  for (const [phase, next, crashes] of cases) {
    test(`killed in ${phase}: recovers to a complete version`, async () => {
      fs.writeFileSync(pauseFile, `${phase}:4000`);
      s.publish(next, crashes ? 'crash' : 'ok');
      await waitFor(`phase ${phase} of ${next}`, () => {
        const j = s.journal();
        return j?.phase === phase && (phase === 'checking' || j.target?.version === next);
      }, 30_000);
      svKillUpdater(s);
      fs.rmSync(pauseFile);
      const expect = crashes ? running : next;
      await settled(s, expect);
      if (crashes) {
        const st = await waitFor('blocked', async () => {
          const x = await s.status();
          return x?.blocked.some((b) => b.version === next) ? x : undefined;
        }, 10_000);
        assert.equal(st.current, running);
      }
      running = expect;
    });
  }

  test('current resolved at every sample (every 5 ms) through all of it', () => {
    assert.equal(brokenSamples, 0);
  });
});

describe('kill -9 of the whole container mid-update, then a restart', () => {
  for (const phase of ['swapping', 'trial']) {
    test(`container killed in ${phase}`, async () => {
      const root = fs.mkdtempSync('/tmp/molt-faults-');
      const pauseFile = path.join(root, 'pause');
      const s = await makeStack({ MOLT_FAULT_PAUSE: `@${pauseFile}`, MOLT_TRIAL: '1s' });
      try {
        s.publish('2.0.0');
        await settled(s, '2.0.0');
        fs.writeFileSync(pauseFile, `${phase}:5000`);
        s.publish('2.1.0');
        await waitFor(`phase ${phase}`, () => s.journal()?.phase === phase && s.journal()?.target?.version === '2.1.0', 30_000);
        // PID 1 of the namespace dies: the kernel kills everything in it, as `docker kill` would.
        await s.molt.kill('SIGKILL');
        await s.molt.exited;
        assert.ok(currentResolves(s.home), 'current resolves after the crash');
        fs.rmSync(pauseFile);
        s.restart();
        await settled(s, '2.1.0');
        const hist = (await s.status())?.history ?? [];
        assert.ok(hist.some((h) => h.event === 'recover'), 'the restart recovered the interrupted update');
      } finally {
        await stopAndWait(s.molt);
      }
    });
  }
});
