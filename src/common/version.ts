import fs from 'node:fs';

/** molt's own version, from the package.json beside the build (scripts/bundle.mjs inlines it). */
export function moltVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}
