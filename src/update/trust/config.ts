// The trust settings, read once at start. Any of them present makes a valid
// signature required for every release; none keeps today's behaviour, with one
// warning line. A bad setting is a TrustConfigError: one line, exit 2.
import fs from 'node:fs';
import { loadTrustKeys, TrustConfigError, type TrustKey } from './keys.js';
import { keylessTrust, type KeylessTrust } from './sigstore.js';

/** GitHub Actions' OIDC issuer: what a keyless identity is pinned to unless MOLT_TRUST_ISSUER says otherwise. */
export const GITHUB_ACTIONS_ISSUER = 'https://token.actions.githubusercontent.com';

export interface TrustConfig {
  required: boolean;
  keys: TrustKey[];
  /** Keyless (Sigstore) identity and issuer, and the verifier built from the trusted root. */
  identity?: string;
  issuer?: string;
  keyless?: KeylessTrust;
  /** Path of a private Sigstore trusted root JSON. */
  root?: string;
  /**
   * Keyless without MOLT_TRUST_ROOT: the root comes through TUF (tuf.ts), which sets `keyless`
   * once it has one; until then keyless signatures cannot be checked (gate.ts).
   */
  tuf?: { mirrorUrl?: string; initialRoot?: string };
}

export function loadTrustConfig(env: NodeJS.ProcessEnv): TrustConfig {
  const keysSetting = env.MOLT_TRUST_KEYS?.trim() || undefined;
  const identity = env.MOLT_TRUST_IDENTITY?.trim() || undefined;
  const issuerSetting = env.MOLT_TRUST_ISSUER?.trim() || undefined;
  const root = env.MOLT_TRUST_ROOT?.trim() || undefined;
  if (issuerSetting && !identity) throw new TrustConfigError('MOLT_TRUST_ISSUER: set without MOLT_TRUST_IDENTITY (the issuer qualifies an identity)');
  if (root && !identity) throw new TrustConfigError('MOLT_TRUST_ROOT: set without MOLT_TRUST_IDENTITY (the root verifies keyless identities)');
  const tufUrl = env.MOLT_TRUST_TUF_URL?.trim() || undefined;
  const tufRoot = env.MOLT_TRUST_TUF_ROOT?.trim() || undefined;
  for (const [name, v] of [['MOLT_TRUST_TUF_URL', tufUrl], ['MOLT_TRUST_TUF_ROOT', tufRoot]] as const) {
    if (v && !identity) throw new TrustConfigError(`${name}: set without MOLT_TRUST_IDENTITY (TUF keeps the root for keyless identities)`);
    if (v && root) throw new TrustConfigError(`${name}: set with MOLT_TRUST_ROOT (a fixed trusted root needs no TUF)`);
  }
  if (tufUrl && !/^https?:\/\/[^/]/.test(tufUrl)) throw new TrustConfigError(`MOLT_TRUST_TUF_URL: ${tufUrl}: not an http(s) URL`);
  let rootJson: unknown;
  if (root) {
    try {
      rootJson = JSON.parse(fs.readFileSync(root, 'utf8'));
    } catch (err) {
      throw new TrustConfigError(`MOLT_TRUST_ROOT: ${root}: not a readable JSON file (${firstLine(err)})`);
    }
  }
  const keys = keysSetting ? loadTrustKeys(keysSetting) : [];
  const config: TrustConfig = { required: Boolean(keysSetting || identity), keys };
  if (identity) {
    config.identity = identity;
    config.issuer = issuerSetting ?? GITHUB_ACTIONS_ISSUER;
    if (rootJson === undefined) {
      config.tuf = { ...(tufUrl ? { mirrorUrl: tufUrl } : {}), ...(tufRoot ? { initialRoot: tufRoot } : {}) };
    } else {
      try {
        config.keyless = keylessTrust(rootJson, { identity, issuer: config.issuer });
      } catch (err) {
        throw new TrustConfigError(`${root ? `MOLT_TRUST_ROOT: ${root}` : 'MOLT_TRUST_IDENTITY'}: not a Sigstore trusted root (${firstLine(err)})`);
      }
    }
  }
  if (root) config.root = root;
  return config;
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}

/** The one line logged at start when nothing is trusted, or null. */
export function trustStartupWarning(config: TrustConfig): string | null {
  return config.required
    ? null
    : 'molt: updater: warning: no MOLT_TRUST_KEYS or MOLT_TRUST_IDENTITY; releases are installed without a signature check';
}
