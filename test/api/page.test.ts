// The status page in real headless Chromium (Debian's /usr/bin/chromium driven by
// playwright-core; no browser is downloaded): token prompt, what it renders, the
// buttons, no token in URLs or cookies, no CSP violations, and a screenshot kept in
// test-artifacts/ for people to look at.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startApi, type ApiHandle } from '../../src/api/server.js';
import { readServices } from '../../src/api/services.js';
import { setLogLevel } from '../../src/common/log.js';
import { encodeStatus } from '../../src/supervise/status.js';
import { repoRoot } from '../helpers/molt.js';
import { FakeUpdater } from './fake-updater.js';

setLogLevel('warn');

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'page-test-token-0123456789abcdef';
const artifacts = path.join(repoRoot, 'test-artifacts');

describe('status page in headless Chromium', () => {
  let tmp: string;
  let fake: FakeUpdater;
  let api: ApiHandle;
  let ctx: BrowserContext;
  let page: Page;
  let base: string;
  const problems: string[] = [];
  const requested: string[] = [];
  const okReaders: number[] = [];

  before(async () => {
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium`);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'molt-page-'));
    const services = path.join(tmp, 'service');
    const svc = (name: string, pid: number, ageMs: number, state: 'run' | 'down') => {
      const dir = path.join(services, name, 'supervise');
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'status'), encodeStatus({ stampMs: Date.now() - ageMs, pid, paused: false, want: 'up', gotTerm: false, state }));
      assert.equal(spawnSync('mkfifo', [path.join(dir, 'ok')]).status, 0);
      okReaders.push(fs.openSync(path.join(dir, 'ok'), fs.constants.O_RDONLY | fs.constants.O_NONBLOCK));
    };
    svc('app', 2114, 42_000, 'run');
    // The app has a check script that passes, as molt init records it in supervise/health.
    fs.writeFileSync(
      path.join(services, 'app', 'supervise', 'health'),
      JSON.stringify({ pid: 2114, ready: true, healthy: true, failures: 0, checks: 4, heals: 0, gaveUp: false, hasCheck: true, notificationFd: null, lastCheck: new Date().toISOString() }) + '\n',
    );
    svc('app/log', 2101, 3 * 86400_000 + 7_200_000, 'run');
    svc('updater', 2102, 3 * 86400_000 + 7_300_000, 'run');
    svc('worker', 0, 12_000, 'down');
    fs.writeFileSync(path.join(services, 'worker', 'supervise', 'exit'), '1 0\n');

    fake = new FakeUpdater({ tickMs: 40, trialTicks: 1500 }); // a 60 s trial: on screen while the test runs
    api = await startApi(fake, {
      socket: path.join(tmp, 'molt.sock'),
      adminAddr: '127.0.0.1:0',
      adminToken: TOKEN,
      services: () => readServices(services),
      host: 'web-1',
    });
    base = `http://127.0.0.1:${api.admin!.port}`;
    ctx = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1280, height: 1000 },
      timeout: 30_000,
    });
    page = ctx.pages()[0] ?? (await ctx.newPage());
    page.setDefaultTimeout(10_000);
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('request', (r) => requested.push(r.url()));
    page.on('console', (m) => {
      // 401s before the token is typed are expected; anything else (a CSP violation) is not.
      if (m.type() === 'error' && !/401/.test(m.text())) problems.push(`console: ${m.text()}`);
    });
  });

  after(async () => {
    await ctx?.close();
    await api?.close();
    fake?.close();
    for (const fd of okReaders) fs.closeSync(fd);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('asks for the token, keeps it in sessionStorage only, then renders versions, blocked and history', async () => {
    await page.goto(base + '/');
    await page.locator('#banner').waitFor({ state: 'visible' });
    assert.match(await page.locator('#banner-msg').innerText(), /admin token/);
    assert.equal(await page.locator('#current').innerText(), '—', 'nothing is shown without the token');

    await page.fill('#token', 'wrong-token-wrong-token');
    await page.click('#token-form button');
    await page.waitForFunction(() => /refused/.test(document.getElementById('banner-msg')!.textContent ?? ''));

    await page.fill('#token', TOKEN);
    await page.click('#token-form button');
    await page.locator('#current', { hasText: '1.1.0' }).waitFor();
    await page.locator('#banner').waitFor({ state: 'hidden' });
    assert.equal(await page.locator('#previous').innerText(), '1.0.0');
    assert.match(await page.locator('#facts').innerText(), /signed by\s+0123456789ABCDEF/, 'the key that verified the running version');
    assert.equal(await page.locator('#host').innerText(), 'web-1');
    assert.equal(await page.locator('#token').inputValue(), '', 'the field is cleared');

    const blocked = page.locator('#blocked tr[data-version="1.2.1"]');
    await blocked.waitFor();
    assert.match(await blocked.innerText(), /crashed 2 times during its trial/);
    const history = await page.locator('#history').innerText();
    assert.match(history, /rollback/);
    assert.match(history, /1\.1\.0 → 1\.2\.1/);
    const services = await page.locator('#services').innerText();
    assert.match(services, /app\s+up healthy\s+2114\s+\d+s/);
    assert.match(services, /worker\s+down/);
    assert.match(services, /exit 1/);

    assert.equal(new URL(page.url()).search, '', 'no token in the URL');
    assert.deepEqual(await ctx.cookies(), [], 'no cookies');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('molt-admin-token')), TOKEN);
    assert.equal(await page.evaluate(() => localStorage.length), 0);
  });

  test('"Check now" starts a check that appears and finishes; the available version shows', async () => {
    const calls = fake.checkCalls;
    await page.click('#btn-check');
    await page.locator('#actions tr', { hasText: 'check' }).first().waitFor();
    await page.locator('#available', { hasText: '1.3.0' }).waitFor();
    await page.locator('#actions tr', { hasText: '1.3.0 is available' }).waitFor();
    assert.equal(fake.checkCalls, calls + 1);
    const options = await page.locator('#version option').allInnerTexts();
    assert.ok(options.some((o) => o.startsWith('1.3.0')), options.join('|'));
    assert.ok(options.some((o) => /1\.2\.1\s+\(blocked\)/.test(o)), options.join('|'));
  });

  test('"Update" to a chosen version shows download progress, then the trial bar with its deadline', async () => {
    await page.selectOption('#version', '1.3.0');
    await page.click('#btn-update');
    await page.locator('#progress').waitFor({ state: 'visible' });
    await page.locator('#trial').waitFor({ timeout: 15_000 });
    assert.match(await page.locator('#trial').innerText(), /Trial of 1\.3\.0[\s\S]*deadline in[\s\S]*crashes 0\/2/);
    assert.equal(await page.locator('#current').innerText(), '1.3.0');
    assert.equal(await page.locator('#phase').innerText(), 'trial');
    const width = await page.locator('#trial-bar > div').evaluate((e) => (e as HTMLElement).style.width);
    assert.match(width, /^\d+(\.\d+)?%$/);
  });

  test('screenshots (desktop and narrow) are saved as test artifacts', async () => {
    fs.mkdirSync(artifacts, { recursive: true });
    await page.locator('#toast.show').waitFor({ state: 'detached', timeout: 10_000 }); // the toast fades after 3 s
    await page.waitForTimeout(500); // and the bar's width transition settles
    const file = path.join(artifacts, 'status-page.png');
    await page.screenshot({ path: file, fullPage: true });
    assert.ok(fs.statSync(file).size > 10_000);
    await page.setViewportSize({ width: 420, height: 900 });
    const narrow = path.join(artifacts, 'status-page-narrow.png');
    await page.screenshot({ path: narrow, fullPage: true });
    assert.ok(fs.statSync(narrow).size > 10_000);
    await page.setViewportSize({ width: 1280, height: 1000 });
  });

  test('"Unblock" lifts a block; "Roll back" needs a second click to confirm', async () => {
    fake.ready(); // end the trial so that a rollback is possible
    await page.locator('#phase', { hasText: /idle|committed/ }).waitFor({ timeout: 15_000 });
    await page.click('#blocked tr[data-version="1.2.1"] button.unblock');
    await page.locator('#blocked tr[data-version="1.2.1"]').waitFor({ state: 'detached' });
    assert.equal(fake.blockedList.length, 0);

    const rollbacks = fake.rollbackCalls;
    await page.click('#btn-rollback');
    assert.match(await page.locator('#btn-rollback').innerText(), /Confirm roll back to 1\.1\.0/);
    assert.equal(fake.rollbackCalls, rollbacks, 'one click does nothing yet');
    await page.click('#btn-rollback');
    await page.locator('#current', { hasText: '1.1.0' }).waitFor({ timeout: 15_000 });
    assert.equal(fake.rollbackCalls, rollbacks + 1);
  });

  test('no script errors, no CSP violations, and no request but to its own API', () => {
    assert.deepEqual(problems, []);
    const paths = new Set(requested.map((u) => (u.startsWith(base) ? u.slice(base.length) : `EXTERNAL ${u}`)));
    for (const p of paths) assert.match(p, /^\/(api\/(status|check|update|rollback|blocked\/[\w.%-]+))?$/, p);
    assert.ok(paths.has('/api/status') && paths.has('/api/check'));
  });
});
