// The trust settings, read once at start. Any of them present makes a valid
// signature required for every release; none keeps today's behaviour, with one
// warning line. A bad setting is a TrustConfigError: one line, exit 2.
import fs from 'node:fs';
import { loadTrustKeys, TrustConfigError, type TrustKey } from './keys.js';

/** GitHub Actions' OIDC issuer: what a keyless identity is pinned to unless MOLT_TRUST_ISSUER says otherwise. */
export const GITHUB_ACTIONS_ISSUER = 'https://token.actions.githubusercontent.com';

export interface TrustConfig {
  required: boolean;
  keys: TrustKey[];
  /** Keyless (Sigstore) identity and issuer; verification of bundles is not wired yet. */
  identity?: string;
  issuer?: string;
  /** Path of a private Sigstore trusted root JSON. */
  root?: string;
}

export function loadTrustConfig(env: NodeJS.ProcessEnv): TrustConfig {
  const keysSetting = env.MOLT_TRUST_KEYS?.trim() || undefined;
  const identity = env.MOLT_TRUST_IDENTITY?.trim() || undefined;
  const issuerSetting = env.MOLT_TRUST_ISSUER?.trim() || undefined;
  const root = env.MOLT_TRUST_ROOT?.trim() || undefined;
  if (issuerSetting && !identity) throw new TrustConfigError('MOLT_TRUST_ISSUER: set without MOLT_TRUST_IDENTITY (the issuer qualifies an identity)');
  if (root) {
    try {
      JSON.parse(fs.readFileSync(root, 'utf8'));
    } catch (err) {
      throw new TrustConfigError(`MOLT_TRUST_ROOT: ${root}: not a readable JSON file (${(err as Error).message.split('\n')[0]})`);
    }
  }
  const keys = keysSetting ? loadTrustKeys(keysSetting) : [];
  const config: TrustConfig = { required: Boolean(keysSetting || identity || root), keys };
  if (identity) {
    config.identity = identity;
    config.issuer = issuerSetting ?? GITHUB_ACTIONS_ISSUER;
  }
  if (root) config.root = root;
  return config;
}

/** The one line logged at start when nothing is trusted, or null. */
export function trustStartupWarning(config: TrustConfig): string | null {
  return config.required
    ? null
    : 'molt: updater: warning: no MOLT_TRUST_KEYS or MOLT_TRUST_IDENTITY; releases are installed without a signature check';
}
