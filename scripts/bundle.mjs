#!/usr/bin/env node
// Bundle molt for the container image and for copying into an existing image:
// an ESM entry file (default dist/molt.mjs) and, beside it, the chunks it
// imports on demand (dist/molt-chunks/). Each command's code is its own chunk,
// so PID 1 (`molt init`) parses what it runs and not the updater, whose
// dependencies are most of the bundle; init's is one file of its own
// (molt-chunks/init.mjs), as every ES module file PID 1 loads costs start-up
// time (bench: exec → first service). Everything is inlined except koffi: it
// loads a native .node file chosen at run time (glibc or musl, x64 or arm64),
// so it stays a real package in node_modules next to the bundle.
//
// usage: node scripts/bundle.mjs [--out FILE] [--version V]
//   FILE's directory gets FILE and <name>-chunks/ (replaced on each run).
//   --version (or MOLT_BUILD_VERSION) sets what `molt version` prints; the default
//   is package.json's version.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function parseArgs(argv) {
  const out = { out: path.join(root, 'dist/molt.mjs'), version: process.env.MOLT_BUILD_VERSION || '' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--out') out.out = path.resolve(next());
    else if (a === '--version') out.version = next();
    else throw new Error(`unknown argument '${a}' (usage: bundle.mjs [--out FILE] [--version V])`);
  }
  // A leading v (a git tag) is dropped: molt prints bare semver.
  out.version = out.version.replace(/^v(?=\d)/, '');
  if (out.version && !/^[0-9A-Za-z.+-]{1,64}$/.test(out.version)) throw new Error(`--version '${out.version}' is not a version label`);
  return out;
}

// src/common/version.ts reads package.json relative to its own compiled file, a
// path that does not exist next to a bundle: inline the (version-stamped)
// package.json text at that call instead. Fails loudly if the read moves.
function inlinePackageJson(pkgText, required = true) {
  const pattern = /fs\.readFileSync\(new URL\('(?:\.\.\/)+package\.json', import\.meta\.url\), 'utf8'\)/g;
  let replaced = 0;
  return {
    name: 'inline-package-json',
    setup(b) {
      b.onLoad({ filter: /[\\/]src[\\/]common[\\/]version\.ts$/ }, async (args) => {
        const src = await fs.promises.readFile(args.path, 'utf8');
        const out = src.replace(pattern, () => {
          replaced++;
          return JSON.stringify(pkgText);
        });
        if (out === src) throw new Error(`${args.path}: the package.json read that the bundle inlines was not found`);
        return { contents: out, loader: 'ts' };
      });
      b.onEnd(() => {
        if (replaced === 0 && required) throw new Error('src/common/version.ts was not bundled: molt version would fail');
      });
    },
  };
}

// src/common/duration.ts require()s ms (cheaper than an ESM import of a CommonJS
// package when run from dist/), which esbuild would leave to node_modules at run
// time: the bundle imports it instead, and so carries it. Fails loudly if the line moves.
function importMs() {
  const line = "const ms = createRequire(import.meta.url)('ms') as typeof import('ms');";
  let replaced = 0;
  return {
    name: 'import-ms',
    setup(b) {
      b.onLoad({ filter: /[\\/]src[\\/]common[\\/]duration\.ts$/ }, async (args) => {
        const src = await fs.promises.readFile(args.path, 'utf8');
        if (!src.includes(line)) throw new Error(`${args.path}: the require of ms that the bundle turns into an import was not found`);
        replaced++;
        return { contents: src.replace(line, "import ms from 'ms';"), loader: 'ts' };
      });
      b.onEnd(() => {
        if (replaced === 0) throw new Error('src/common/duration.ts was not bundled');
      });
    },
  };
}

// The Sigstore and TUF libraries are require()d on first use through a
// createRequire of their own (they cost ~180 ms to load), which esbuild cannot
// see into: it would leave them to a node_modules that the image does not have.
// Plain require() calls are bundled (and still run only when called).
function bundleLazyRequires() {
  const line = 'const requireCjs = createRequire(import.meta.url);';
  const files = /[\\/]src[\\/]update[\\/]trust[\\/](sigstore|tuf)\.ts$/;
  let replaced = 0;
  return {
    name: 'bundle-lazy-requires',
    setup(b) {
      b.onLoad({ filter: files }, async (args) => {
        const src = await fs.promises.readFile(args.path, 'utf8');
        if (!src.includes(line)) throw new Error(`${args.path}: the createRequire that the bundle replaces was not found`);
        replaced++;
        return { contents: src.replace(line, '').replace(/\brequireCjs\(/g, 'require('), loader: 'ts' };
      });
      b.onEnd(() => {
        if (replaced < 2) throw new Error('src/update/trust/sigstore.ts or tuf.ts was not bundled');
      });
    },
  };
}

// The entry's `import('../init/main.js')` loads init's own file (built apart, below).
function initApart(initFile) {
  return {
    name: 'init-apart',
    setup(b) {
      b.onResolve({ filter: /^\.\.\/init\/main\.js$/ }, (args) => {
        if (!/[\\/]src[\\/]cli[\\/]main\.ts$/.test(args.importer)) return undefined;
        return { path: `./${initFile}`, external: true };
      });
    },
  };
}

// `molt demo` drives examples/ and services/ from a clone of the repository
// (`npm start`); a bundle in an image has neither, so it says so instead.
function demoStub() {
  return {
    name: 'demo-stub',
    setup(b) {
      b.onLoad({ filter: /[\\/]src[\\/]demo[\\/]main\.ts$/ }, () => ({
        contents:
          "export async function main(): Promise<number> {\n" +
          "  process.stderr.write('molt: demo runs from a clone of the molt repository (npm ci && npm start), not from the bundle\\n');\n" +
          '  return 2;\n' +
          '}\n',
        loader: 'ts',
      }));
    },
  };
}

/** The package directories (under node_modules) that the bundle took code from. */
function bundledPackages(inputs) {
  const dirs = new Set();
  for (const p of inputs) {
    const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(p.split(path.sep).join('/'));
    if (m) dirs.add(m[1]);
  }
  return [...dirs].sort();
}

// The bundle carries third-party code: their licenses travel with it, in one file.
function licenseText(inputs) {
  const parts = [`molt bundles the following packages; their licenses follow.\n`];
  for (const dir of bundledPackages(inputs)) {
    const abs = path.resolve(root, dir);
    const pkg = JSON.parse(fs.readFileSync(path.join(abs, 'package.json'), 'utf8'));
    const file = fs.readdirSync(abs).find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f));
    const text = file ? fs.readFileSync(path.join(abs, file), 'utf8').trim() : `(no license file; package.json says ${pkg.license ?? 'nothing'})`;
    parts.push(`\n==== ${pkg.name}@${pkg.version} (${pkg.license ?? 'unknown'})\n\n${text}\n`);
  }
  return parts.join('');
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const version = args.version || pkg.version;
  const pkgText = JSON.stringify({ name: pkg.name, version });
  const outDir = path.dirname(args.out);
  const name = path.basename(args.out).replace(/\.m?js$/, '');
  const chunkDir = `${name}-chunks`;
  fs.mkdirSync(outDir, { recursive: true });
  // Chunk names carry a content hash: the last run's would otherwise pile up.
  fs.rmSync(path.join(outDir, chunkDir), { recursive: true, force: true });
  const ext = path.extname(args.out) || '.mjs';
  const initFile = `${chunkDir}/init${ext}`;
  const options = {
    // Paths in the bundle's comments are relative to the repository, wherever it runs.
    absWorkingDir: root,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    external: ['koffi'],
    // CommonJS dependencies (prom-client, ms, ...) call require() for Node's
    // built-ins; an ESM bundle has no require of its own (each chunk gets one).
    banner: {
      js: "import { createRequire as __moltCreateRequire } from 'node:module';\nconst require = __moltCreateRequire(import.meta.url);",
    },
    // Licenses go to one file beside the bundle (below), not into it.
    legalComments: 'none',
    sourcemap: false,
    minifySyntax: true,
    logLevel: 'warning',
    metafile: true,
  };
  // PID 1's code in one file, its own dynamic imports (re-exec, the CMD helpers) inlined.
  const init = await build({
    ...options,
    entryPoints: [path.join(root, 'src/init/main.ts')],
    outfile: path.join(outDir, initFile),
    plugins: [inlinePackageJson(pkgText, false), importMs()],
  });
  // Every other command: the entry and the chunks it shares among them.
  const rest = await build({
    ...options,
    entryPoints: { [name]: path.join(root, 'src/cli/main.ts') },
    outdir: outDir,
    outExtension: { '.js': ext },
    entryNames: '[name]',
    chunkNames: `${chunkDir}/[name]-[hash]`,
    splitting: true,
    plugins: [initApart(initFile), inlinePackageJson(pkgText), importMs(), demoStub(), bundleLazyRequires()],
  });
  const result = { metafile: { inputs: { ...init.metafile.inputs, ...rest.metafile.inputs }, outputs: { ...init.metafile.outputs, ...rest.metafile.outputs } } };
  const inputs = Object.keys(result.metafile.inputs);
  if (inputs.some((p) => p.includes('node_modules/koffi/'))) throw new Error('koffi was bundled; it must stay external');
  const outputs = Object.keys(result.metafile.outputs);
  if (!fs.existsSync(args.out)) throw new Error(`esbuild did not write ${args.out} (wrote ${outputs.join(', ')})`);
  fs.chmodSync(args.out, 0o755);
  fs.writeFileSync(`${args.out}.licenses.txt`, licenseText(inputs));
  const size = outputs.reduce((n, f) => n + fs.statSync(path.resolve(root, f)).size, 0);
  process.stdout.write(`molt: bundle: wrote ${path.relative(process.cwd(), args.out) || args.out} and ${outputs.length - 1} chunks in ${chunkDir}/ version=${version} bytes=${size} inputs=${inputs.length}\n`);
}

main().catch((err) => {
  process.stderr.write(`molt: bundle: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
