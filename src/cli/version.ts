import { moltVersion } from '../common/version.js';

export async function main(): Promise<number> {
  process.stdout.write(`molt ${moltVersion()}\n`);
  return 0;
}
