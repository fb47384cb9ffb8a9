// Command-line and environment parsing for `molt sv`, pure. It follows runit's
// sv, which uses djb's getopt: options end at the first word that does not
// start with '-', at '-' alone (kept), and at any word starting with '--'
// (dropped); '-w' takes the rest of its word or the next word.

export const PROGNAME = 'molt sv';
export const USAGE = `usage: ${PROGNAME} [-v] [-w sec] command service ...\n\n`;
/** sv's default wait for -v and the LSB commands, in seconds. */
export const DEFAULT_WAIT_SEC = 7;

export interface SvOptions {
  verbose: boolean;
  waitSec: number;
  action: string;
  services: string[];
  /** Directory that plain service names are relative to. */
  serviceDir: string;
}

export type ParseResult = { ok: true; options: SvOptions } | { ok: false; stderr: string };

/** `MOLT_SERVICES`, then runit's `SVDIR`, else molt's default. */
export function serviceDirFrom(env: NodeJS.ProcessEnv): string {
  const molt = env.MOLT_SERVICES;
  if (molt) return molt;
  const sv = env.SVDIR;
  // sv uses SVDIR even when empty (and then fails to change to it): so do we.
  return sv !== undefined ? sv : '/etc/service';
}

/**
 * Like C's scan_ulong: the value of the leading decimal digits, 0 when there
 * are none ("abc" and "-3" both mean 0; "1.5" means 1).
 */
export function scanUlong(s: string): number {
  const m = /^[0-9]*/.exec(s)![0];
  return m ? Math.min(Number(m), Number.MAX_SAFE_INTEGER) : 0;
}

export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv, version: string): ParseResult {
  let verbose = false;
  let waitSec = env.SVWAIT !== undefined ? scanUlong(env.SVWAIT) : DEFAULT_WAIT_SEC;
  let stderr = '';
  const usage = () => ({ ok: false as const, stderr: stderr + USAGE });

  let i = 0;
  options: while (i < argv.length) {
    const word = argv[i]!;
    if (word[0] !== '-') break;
    if (word.length === 1) break; // '-' alone is the command (and then a usage error)
    if (word[1] === '-') {
      i++;
      break;
    }
    for (let pos = 1; pos < word.length; pos++) {
      const c = word[pos]!;
      if (c === 'v') {
        verbose = true;
      } else if (c === 'w') {
        let arg = word.slice(pos + 1);
        i++;
        if (!arg) {
          if (i >= argv.length) {
            stderr += `${PROGNAME}: option requires an argument -- w\n`;
            return usage();
          }
          arg = argv[i]!;
          i++;
        }
        waitSec = scanUlong(arg);
        verbose = true; // -w implies -v
        continue options;
      } else if (c === 'V') {
        stderr += `molt ${version}\n`;
        return usage();
      } else {
        stderr += `${PROGNAME}: illegal option -- ${c}\n`;
        return usage();
      }
    }
    i++;
  }

  const action = argv[i];
  if (action === undefined) return usage();
  const services = argv.slice(i + 1);
  if (services.length === 0) return usage();
  return { ok: true, options: { verbose, waitSec, action, services, serviceDir: serviceDirFrom(env) } };
}
