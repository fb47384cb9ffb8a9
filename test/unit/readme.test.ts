// The documentation is part of the contract: README is the front door (the two set-up
// commands at its top, the picture, a link to every page of docs/), every setting the
// code reads is in docs/configuration.md, every runtime dependency is explained, and
// every link resolves inside the repository (files and #anchors).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { configReference } from '../../src/update/config.js';
import { repoRoot } from '../helpers/molt.js';

const read = (rel: string) => fs.readFileSync(path.join(repoRoot, rel), 'utf8');
const readme = read('README.md');
const docPages = fs
  .readdirSync(path.join(repoRoot, 'docs'))
  .filter((f) => f.endsWith('.md'))
  .map((f) => `docs/${f}`);
const pages = ['README.md', ...docPages];
const configuration = read('docs/configuration.md');

/** Upstream homepages a page may link to; everything else stays in the repository. */
const OUTSIDE_ALLOWED = new Set(['https://koffi.dev']);

/** Markdown without fenced blocks, and inline code reduced to a placeholder, so that
 *  brackets in code (`[-e CODE]`) are not taken for links. */
function prose(md: string): string {
  return md.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, 'code');
}

/** [text](target) and ![alt](target), and <scheme://...> autolinks. */
export function linksOf(md: string): string[] {
  const text = prose(md);
  const out: string[] = [];
  for (const m of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) out.push(m[1]!);
  for (const m of text.matchAll(/<([a-z][a-z0-9+.-]*:[^>\s]+)>/gi)) out.push(m[1]!);
  return out;
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, -N for repeats. */
export function anchorsOf(md: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const line of md.replace(/^```[\s\S]*?^```/gm, '').split('\n')) {
    const h = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!h) continue;
    const slug = h[1]!
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n ? `${slug}-${n}` : slug);
  }
  return anchors;
}

/** Fenced code blocks with their info string (```sh → 'sh'). */
function codeBlocks(md: string): { info: string; body: string }[] {
  const blocks: { info: string; body: string }[] = [];
  let open: { info: string; lines: string[] } | undefined;
  for (const line of md.split('\n')) {
    const fence = /^```(.*)$/.exec(line);
    if (fence && !open) open = { info: fence[1]!.trim(), lines: [] };
    else if (fence && open) {
      blocks.push({ info: open.info, body: open.lines.join('\n') });
      open = undefined;
    } else open?.lines.push(line);
  }
  return blocks;
}

describe('README, the front door', () => {
  test('it opens with the demo and the test command, exactly', () => {
    const head = readme.slice(0, 1500);
    assert.ok(head.includes('npm ci && npm start   # the demo: an update, a trial, a rollback and a block, from a local release directory'));
    assert.ok(head.includes('npm ci && npm test    # every test: unit, PID-namespace, runit\'s own sv, a real registry, headless Chromium'));
  });

  test('it is short (the reference lives in docs/) and links to every page of docs/', () => {
    const lines = readme.split('\n').length;
    assert.ok(lines <= 250, `README has ${lines} lines; move reference material to docs/`);
    const links = new Set(linksOf(readme).map((l) => l.split('#')[0]));
    for (const page of docPages) assert.ok(links.has(page), `README links to ${page}`);
  });

  test('its picture shows PID 1, the services, the updater, supervise/, current and previous, and the socket', () => {
    const picture = codeBlocks(readme).find((b) => b.info === '' && b.body.includes('molt init') && b.body.includes('PID 1'))?.body;
    assert.ok(picture, 'a plain code block with the picture');
    for (const part of ['updater', 'supervise/', 'current', 'previous', '/run/molt/molt.sock', 'MOLT_HOME', 'state.json', 'MOLT_ADMIN_ADDR']) {
      assert.ok(picture.includes(part), `the picture shows ${part}`);
    }
  });

  test('every runtime dependency is in the dependency table with why', () => {
    const pkg = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };
    for (const name of Object.keys(pkg.dependencies)) {
      assert.match(readme, new RegExp(`^\\| \`${name.replace(/[/@.]/g, '\\$&')}\` \\| \\S.{10,}\\|$`, 'm'), `${name} and why`);
    }
  });
});

describe('docs/configuration.md', () => {
  test('every variable of the configuration reference is there', () => {
    for (const { name } of configReference) assert.ok(configuration.includes(`\`${name}\``), `${name} documented`);
  });

  test('every MOLT_* name the code reads is there', () => {
    const names = new Set<string>();
    const walk = (dir: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.ts')) for (const m of fs.readFileSync(p, 'utf8').matchAll(/\bMOLT_[A-Z0-9_]*[A-Z0-9]\b/g)) names.add(m[0]);
      }
    };
    walk(path.join(repoRoot, 'src'));
    assert.ok(names.size > 30, `found ${names.size} names in src/`);
    const missing = [...names].filter((n) => !configuration.includes(`\`${n}\``));
    assert.deepEqual(missing, [], 'documented in docs/configuration.md');
  });
});

describe('links', () => {
  test('every link of README and docs/ resolves to a file (and heading) of the repository', () => {
    const problems: string[] = [];
    for (const page of pages) {
      const dir = path.dirname(path.join(repoRoot, page));
      for (const link of linksOf(read(page))) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(link)) {
          if (!OUTSIDE_ALLOWED.has(link.replace(/\/$/, ''))) problems.push(`${page}: ${link} leaves the repository`);
          continue;
        }
        const [file = '', anchor] = link.split('#');
        const target = file ? path.resolve(dir, decodeURIComponent(file)) : path.join(repoRoot, page);
        if (!target.startsWith(repoRoot + path.sep)) {
          problems.push(`${page}: ${link} points outside the repository`);
          continue;
        }
        if (!fs.existsSync(target)) {
          problems.push(`${page}: ${link} names a missing file`);
          continue;
        }
        if (anchor !== undefined) {
          if (!target.endsWith('.md')) problems.push(`${page}: ${link} has an anchor into a file that is not markdown`);
          else if (!anchorsOf(fs.readFileSync(target, 'utf8')).has(anchor)) problems.push(`${page}: ${link} names a missing heading`);
        }
      }
    }
    assert.deepEqual(problems, []);
  });

  test('no page sends a user to files only molt\'s authors have', () => {
    for (const page of pages) {
      const text = read(page);
      for (const outside of ['DESIGN.md', '../shared', 'shared/reference', 'shared/seeds', 'STYLE.md']) {
        assert.ok(!text.includes(outside), `${page} mentions ${outside}`);
      }
    }
  });

  test('the link checker itself: code is not a link, anchors follow GitHub', () => {
    assert.deepEqual(linksOf('a `[x](y)` b [t](docs/a.md#b) ![i](p.png)\n```\n[c](d)\n```\n<https://koffi.dev>'), ['docs/a.md#b', 'p.png', 'https://koffi.dev']);
    const a = anchorsOf('# molt init (PID 1)\n## Sockets held across restarts (`listen`)\n## Rate limits\n## Rate limits\n```\n# not a heading\n```');
    assert.deepEqual([...a], ['molt-init-pid-1', 'sockets-held-across-restarts-listen', 'rate-limits', 'rate-limits-1']);
  });
});
