// A signed SHA256SUMS as the evidence for an artifact it lists: the signature
// covers the small list (so any signer works without buffering the artifact),
// the list binds each name to its sha256, and the sha256 comes from the digest
// the download computed anyway. A signed list from an old release cannot vouch
// for a renamed file: the digest is listed under its old name.
import { parseSha256Sums } from '../sha256sums.js';
import type { SignatureVerdict } from './decide.js';
import type { ArtifactDigests } from './hasher.js';

/**
 * `listVerdict`: the signature check over the list's bytes. A valid one that
 * names a file (minisign's `file:`) must name the list itself.
 */
export function verdictFromSignedSums(
  listVerdict: SignatureVerdict,
  list: { name: string; content: Uint8Array },
  servedAs: string,
  artifact: Pick<ArtifactDigests, 'sha256'>,
): SignatureVerdict {
  if (listVerdict.kind !== 'valid') return listVerdict;
  if (artifact.sha256 === undefined) return { kind: 'bad', detail: `internal: ${servedAs} was not hashed with SHA-256` };
  if (listVerdict.signedFor !== null && listVerdict.signedFor !== list.name) return listVerdict;
  const sums = parseSha256Sums(Buffer.from(list.content).toString('utf8'));
  const listed = sums.get(servedAs);
  if (listed === artifact.sha256) return { kind: 'valid', by: listVerdict.by, signedFor: servedAs };
  for (const [name, hex] of sums) {
    if (hex === artifact.sha256) return { kind: 'valid', by: listVerdict.by, signedFor: name };
  }
  if (listed !== undefined) return { kind: 'bad', detail: `${servedAs}: sha256 ${artifact.sha256} differs from the signed ${list.name} (${listed})` };
  return { kind: 'absent' };
}
