import fs from 'node:fs';

export function moltVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export async function main(): Promise<number> {
  process.stdout.write(`molt ${moltVersion()}\n`);
  return 0;
}
