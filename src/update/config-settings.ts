// The raw settings of `molt updater` (environment over the YAML file) and the typed readers
// that turn each into a value or a one-line ConfigError naming the variable (never a secret).
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { MAX_TIMER_MS, MAX_TIMER_TEXT, parseDuration } from '../common/duration.js';
import { ENV_ONLY, KNOWN, SECRET } from './config-reference.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export interface Raw {
  value: string;
  file?: string;
}

export function defaultReadFile(p: string): string | undefined {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError(`MOLT_CONFIG file ${p} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export function firstLine(s: string): string {
  return s.split('\n')[0]!.trim().replace(/:$/, '');
}

/** Why an ENV_ONLY key is refused in the file: trust settings so no file can loosen them, the rest because molt init reads them. */
export function envOnlyReason(key: string): string {
  if (key.startsWith('MOLT_TRUST_')) return 'a trust setting: no file may loosen it';
  if (key === 'MOLT_BUNDLED') return 'installed without a signature check as part of the image: no file may name one';
  if (key.startsWith('MOLT_FLEET') || key.startsWith('MOLT_CANARY') || key === 'MOLT_REPLICA_ID') return 'a fleet setting: read by molt block/pause --fleet as well (docs/fleet.md)';
  if (key === 'MOLT_SELF') return 'it chooses what PID 1 becomes: no file may name it';
  return 'molt init reads it too';
}

/** The file's settings as strings, keyed by variable name. */
export function readFileSettings(file: string, text: string): Map<string, Raw> {
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw new ConfigError(`MOLT_CONFIG file ${file} is not valid YAML: ${firstLine((err as Error).message)}`);
  }
  const out = new Map<string, Raw>();
  if (doc === null || doc === undefined) return out;
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`MOLT_CONFIG file ${file} must be a mapping of variable names to values (e.g. "MOLT_POLICY: minor")`);
  for (const [key, v] of Object.entries(doc as Record<string, unknown>)) {
    if (!KNOWN.has(key)) {
      const upper = key.toUpperCase();
      const meant = KNOWN.has('MOLT_' + upper) ? 'MOLT_' + upper : KNOWN.has(upper) ? upper : undefined;
      if (meant) throw new ConfigError(`unknown key ${JSON.stringify(key)} in MOLT_CONFIG file ${file}: write ${meant} (keys are the variable names)`);
      throw new ConfigError(`unknown key ${JSON.stringify(key)} in MOLT_CONFIG file ${file} (keys are the variable names, e.g. MOLT_POLICY; see docs/configuration.md)`);
    }
    if (ENV_ONLY.has(key)) throw new ConfigError(`${key} in MOLT_CONFIG file ${file} is read from the environment only (${envOnlyReason(key)})`);
    let value: string;
    if (v === null || v === undefined) continue;
    if (typeof v === 'string') {
      if (v.trim() === '') continue; // as in the environment: empty is unset
      value = v;
    }
    else if (typeof v === 'number' && Number.isFinite(v)) value = String(v);
    else if (typeof v === 'boolean') value = v ? '1' : '0';
    else if (key === 'MOLT_SCHEDULE' && Array.isArray(v) && v.every((x) => typeof x === 'string')) value = v.join('; ');
    else throw new ConfigError(`${key} in MOLT_CONFIG file ${file} must be a string, number or boolean`);
    out.set(key, { value, file });
  }
  return out;
}

export class Settings {
  constructor(private readonly values: Map<string, Raw>) {}

  raw(name: string): Raw | undefined {
    return this.values.get(name);
  }
  get(name: string): string | undefined {
    return this.values.get(name)?.value;
  }
  has(name: string): boolean {
    return this.values.has(name);
  }

  /** `NAME="value"` (or just NAME for secrets), and where it came from when that was the file. */
  show(name: string): string {
    const r = this.values.get(name);
    if (!r) return name;
    const v = SECRET.has(name) ? name : `${name}=${JSON.stringify(r.value)}`;
    return r.file ? `${v} (in ${r.file})` : v;
  }
  fail(name: string, allowed: string): never {
    throw new ConfigError(`${this.show(name)} ${allowed}`);
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const v = this.get(name)?.trim().toLowerCase();
    if (v === undefined) return fallback;
    if ((allowed as readonly string[]).includes(v)) return v as T;
    return this.fail(name, `must be one of ${allowed.join(', ')}`);
  }

  bool(name: string, fallback: boolean): boolean {
    const v = this.get(name)?.trim().toLowerCase();
    if (v === undefined) return fallback;
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off'].includes(v)) return false;
    return this.fail(name, 'must be 1 or 0 (or true/false, yes/no, on/off)');
  }

  int(name: string, fallback: number, min: number): number {
    const v = this.get(name)?.trim();
    if (v === undefined) return fallback;
    if (!/^\d{1,9}$/.test(v) || Number(v) < min) return this.fail(name, `must be an integer >= ${min}`);
    return Number(v);
  }

  duration(name: string, fallback: number, o: { bare?: 'ms' | 's'; min?: number; max?: number; minText?: string; maxText?: string } = {}): number {
    const v = this.get(name);
    if (v === undefined) return fallback;
    const bare = o.bare ?? 'ms';
    const ms = parseDuration(v, bare);
    if (ms === undefined) {
      return this.fail(name, bare === 's' ? 'must be a number of seconds (or a duration such as 30s, 5m)' : 'must be a duration such as 500ms, 30s, 5m, 1h (bare numbers are milliseconds)');
    }
    const r = Math.round(ms);
    if (o.min !== undefined && r < o.min) return this.fail(name, `is too short (at least ${o.minText})`);
    if (o.max !== undefined && r > o.max) return this.fail(name, `is too long (at most ${o.maxText})`);
    if (r > MAX_TIMER_MS) return this.fail(name, `is too long (at most ${MAX_TIMER_TEXT})`);
    return r;
  }

  /** An absolute path other than "/", normalized. */
  absPath(name: string, fallback: string): string;
  absPath(name: string, fallback?: undefined): string | undefined;
  absPath(name: string, fallback?: string): string | undefined {
    const v = this.get(name)?.trim();
    if (v === undefined) return fallback;
    if (!v.startsWith('/') || v.includes('\0')) return this.fail(name, 'must be an absolute path');
    const p = path.posix.normalize(v).replace(/\/+$/, '');
    if (p === '') return this.fail(name, 'must be an absolute path other than /');
    return p;
  }

  secret(name: string): string | undefined {
    const v = this.get(name)?.trim();
    if (v === undefined) return undefined;
    if (/[\s\0]/.test(v)) throw new ConfigError(`${this.show(name)} must not contain spaces or line breaks`);
    return v;
  }
}
