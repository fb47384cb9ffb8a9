// The fleet settings (environment only): MOLT_FLEET, MOLT_REPLICA_ID, MOLT_CANARY,
// MOLT_CANARY_COMMITS, MOLT_FLEET_KEY (signs verdicts) and MOLT_FLEET_KEYS
// (verifies them; MOLT_TRUST_KEYS when unset). A bad value is a ConfigError: one line, exit 2.
import fs from 'node:fs';
import { ConfigError } from '../config-settings.js';
import type { TrustConfig } from '../trust/config.js';
import { loadTrustKeys, type TrustKey } from '../trust/keys.js';
import { parseSigningKey, type SigningKey } from '../trust/sign.js';
import { parseCanary } from './wave.js';

export interface FleetConfig {
  /** off: no verdicts read or written (MOLT_FLEET=0); read: verdicts read (the default); write: read and written (MOLT_FLEET=1). */
  mode: 'off' | 'read' | 'write';
  replica: string;
  canaryShare: number;
  needCommits: number;
  key?: SigningKey;
  /** Verdicts must carry a signature by one of `keys` when required (a trust setting or MOLT_FLEET_KEYS). */
  trust: { required: boolean; keys: TrustKey[] };
}

const REPLICA_RE = /^[A-Za-z0-9._:@\-/]{1,128}$/;

export function readFleetConfig(env: NodeJS.ProcessEnv, trust: Pick<TrustConfig, 'required' | 'keys'>, hostname: string): FleetConfig {
  const f = (env.MOLT_FLEET ?? '').trim();
  if (!['', '0', '1'].includes(f)) throw new ConfigError(`MOLT_FLEET=${JSON.stringify(f)}: want 1 (share verdicts), 0 (ignore them) or unset (read them)`);
  const mode = f === '1' ? 'write' : f === '0' ? 'off' : 'read';
  const replica = (env.MOLT_REPLICA_ID ?? '').trim() || hostname;
  if (!REPLICA_RE.test(replica)) throw new ConfigError(`MOLT_REPLICA_ID=${JSON.stringify(replica.slice(0, 140))}: want 1-128 of A-Z a-z 0-9 . _ : @ - /`);
  const share = parseCanary(env.MOLT_CANARY);
  if (typeof share === 'string') throw new ConfigError(share);
  const commitsText = (env.MOLT_CANARY_COMMITS ?? '').trim() || '1';
  if (!/^\d{1,6}$/.test(commitsText) || Number(commitsText) < 1) throw new ConfigError(`MOLT_CANARY_COMMITS=${JSON.stringify(commitsText)}: want an integer >= 1`);
  const keysSetting = env.MOLT_FLEET_KEYS?.trim();
  let keys: TrustKey[] = trust.keys;
  try {
    if (keysSetting) keys = loadTrustKeys(keysSetting, 'MOLT_FLEET_KEYS');
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  let key: SigningKey | undefined;
  const keyFile = env.MOLT_FLEET_KEY?.trim();
  if (keyFile) {
    let text: string;
    try {
      text = fs.readFileSync(keyFile, 'utf8');
    } catch (err) {
      throw new ConfigError(`MOLT_FLEET_KEY=${keyFile}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    const k = parseSigningKey(text);
    if (typeof k === 'string') throw new ConfigError(`MOLT_FLEET_KEY=${keyFile}: ${k}`);
    key = k;
  }
  return { mode, replica, canaryShare: share, needCommits: Number(commitsText), ...(key ? { key } : {}), trust: { required: trust.required || Boolean(keysSetting), keys } };
}
