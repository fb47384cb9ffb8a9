// MOLT_HOME checked before the version store touches it, so that a home that
// cannot be one is a configuration error (one line, exit 2) like any other bad
// value: a file in the way, a read-only or pseudo file system (/proc, where
// Node's recursive mkdir retries ENOENT for ever), a directory we cannot write.
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from './config-settings.js';

/** The directories the version store keeps under MOLT_HOME (store.ts), parents first. */
const HOME_SUBDIRS = ['versions', 'staging', 'cache', 'cache/sha256'];

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException)?.code ?? (err as Error)?.message ?? String(err);
}

/** mkdir one level (never recursive); true when it is a directory afterwards, the error code otherwise. */
function mkdirOne(dir: string): true | string {
  try {
    fs.mkdirSync(dir, { mode: 0o755 });
    return true;
  } catch (err) {
    if (errCode(err) !== 'EEXIST') return errCode(err);
  }
  try {
    return fs.statSync(dir).isDirectory() ? true : 'not a directory';
  } catch (err) {
    return errCode(err);
  }
}

/**
 * Create MOLT_HOME and the store's directories one level at a time, turning any failure into a
 * ConfigError naming MOLT_HOME, the path and the reason.
 */
export function prepareHome(home: string): void {
  const show = `MOLT_HOME=${JSON.stringify(home)}`;
  const parts = path.resolve(home).split('/').filter((p) => p !== '');
  let at = '';
  for (const part of parts) {
    at += '/' + part;
    const r = mkdirOne(at);
    if (r === 'not a directory') throw new ConfigError(`${show} cannot be used: ${at} exists and is not a directory`);
    if (r !== true) throw new ConfigError(`${show} cannot be used: mkdir ${at}: ${r}`);
  }
  for (const sub of HOME_SUBDIRS) {
    const dir = path.join(at, sub);
    const r = mkdirOne(dir);
    if (r === 'not a directory') throw new ConfigError(`${show} cannot be used: ${dir} exists and is not a directory`);
    if (r !== true) throw new ConfigError(`${show} cannot be used: mkdir ${dir}: ${r}`);
  }
  try {
    fs.accessSync(at, fs.constants.W_OK | fs.constants.X_OK);
  } catch (err) {
    throw new ConfigError(`${show} cannot be used: ${at} is not writable: ${errCode(err)}`);
  }
}
