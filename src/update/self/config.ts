// MOLT_SELF and MOLT_SELF_POLICY (issue 15): molt's own release source, in the
// app's forms, validated by the app's own readers under the names they know
// (MOLT_GITHUB, MOLT_OCI, MOLT_DIR) so that both sources obey the same rules.
// The GitHub token and API, and the registry's credentials, are shared with the app's.
import { ConfigError, Settings, type Raw } from '../config-settings.js';
import { githubSource, ociSource, type SelfConfig, type SourceConfig } from '../config.js';

const GITHUB_SHARED = ['GITHUB_TOKEN', 'MOLT_GITHUB_API'];
const OCI_SHARED = ['MOLT_OCI_INSECURE', 'MOLT_OCI_USER', 'MOLT_OCI_PASSWORD'];

export type SelfSourceForm = { kind: 'github'; repo: string } | { kind: 'dir'; dir: string } | { kind: 'oci'; ref: string };

/** Which form MOLT_SELF's value is in: `github:owner/repo`, an absolute path, or else an OCI reference. */
export function selfSourceForm(value: string): SelfSourceForm {
  const v = value.trim();
  if (v.startsWith('github:')) return { kind: 'github', repo: v.slice('github:'.length) };
  if (v.startsWith('/')) return { kind: 'dir', dir: v };
  return { kind: 'oci', ref: v };
}

export function readSelfConfig(s: Settings): SelfConfig | undefined {
  const spec = s.get('MOLT_SELF')?.trim();
  if (spec === undefined || spec === '' || spec === 'off') return undefined;
  const form = selfSourceForm(spec);
  const requireChecksum = s.bool('MOLT_REQUIRE_CHECKSUM', false);
  const pick = (name: string, shared: string[]): Settings => {
    const m = new Map<string, Raw>([[name, { value: form.kind === 'github' ? form.repo : form.kind === 'dir' ? form.dir : form.ref }]]);
    for (const n of shared) {
      const r = s.raw(n);
      if (r) m.set(n, r);
    }
    return new Settings(m);
  };
  let source: SourceConfig;
  try {
    if (form.kind === 'github') source = githubSource(pick('MOLT_GITHUB', GITHUB_SHARED), requireChecksum);
    else if (form.kind === 'oci') source = ociSource(pick('MOLT_OCI', OCI_SHARED), requireChecksum);
    else source = { kind: 'dir', dir: pick('MOLT_DIR', []).absPath('MOLT_DIR')!, requireChecksum };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // The reader named the app's variable: say which one was meant.
    const why = err.message.replace(/^MOLT_(GITHUB|OCI|DIR)=("[^"]*"|\S+)\s*/, '');
    throw new ConfigError(`${s.show('MOLT_SELF')} ${why} (MOLT_SELF is github:owner/repo, an OCI reference, or an absolute directory)`);
  }
  const policy = s.oneOf('MOLT_SELF_POLICY', ['latest', 'minor', 'patch', 'manual'] as const, 'patch');
  return { source, spec, policy };
}
