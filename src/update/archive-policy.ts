// What a release tree may contain, as pure functions over paths: used for tar
// entries and for directory releases alike. Each refusal names its reason; the
// caller adds the entry name and the archive.

/** A refusal of one entry; the caller turns it into UpdateError('hostile-archive'). */
export class PolicyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PolicyError';
  }
}

export const MAX_DEPTH = 128;
const MAX_NAME_BYTES = 255;
const MAX_PATH_BYTES = 4096;

/**
 * Normalise an entry path to 'a/b/c' ('' is the release root, e.g. "./").
 * Refuses absolute paths, '..' components, over-long names and absurd depth.
 */
export function normalizeEntryPath(raw: string): string {
  if (raw.includes('\0')) throw new PolicyError('path contains a NUL byte');
  if (raw.startsWith('/')) throw new PolicyError('absolute path');
  if (Buffer.byteLength(raw) > MAX_PATH_BYTES) throw new PolicyError('path too long');
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  for (const p of parts) {
    if (p === '..') throw new PolicyError("path has a '..' component");
    if (Buffer.byteLength(p) > MAX_NAME_BYTES) throw new PolicyError('file name too long');
  }
  if (parts.length > MAX_DEPTH) throw new PolicyError(`path deeper than ${MAX_DEPTH} levels`);
  return parts.join('/');
}

export function parentsOf(p: string): string[] {
  const parts = p.split('/');
  const out: string[] = [];
  for (let i = 1; i < parts.length; i++) out.push(parts.slice(0, i).join('/'));
  return out;
}

function dirParts(p: string): string[] {
  const parts = p.split('/');
  parts.pop();
  return parts.filter((x) => x !== '');
}

/**
 * A symlink at `linkPath` (normalised) pointing at `target`: the target must be
 * relative and, read lexically from the link's directory, stay in the release.
 * Chains through other symlinks are checked once the tree is complete
 * (resolveInTree), because a later entry can change what a path resolves to.
 */
export function checkSymlinkTarget(linkPath: string, target: string): void {
  if (target === '') throw new PolicyError('symlink with an empty target');
  if (target.includes('\0')) throw new PolicyError('symlink target contains a NUL byte');
  if (target.startsWith('/')) throw new PolicyError(`symlink target ${JSON.stringify(target)} is absolute`);
  if (Buffer.byteLength(target) > MAX_PATH_BYTES) throw new PolicyError('symlink target too long');
  const stack = dirParts(linkPath);
  for (const c of target.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (stack.length === 0) throw new PolicyError(`symlink target ${JSON.stringify(target)} leaves the release`);
      stack.pop();
    } else stack.push(c);
  }
}

export type NodeKind = 'dir' | 'file' | 'symlink';
export interface TreeNode {
  kind: NodeKind;
  /** Symlink target, as stored. */
  target?: string;
}

const MAX_HOPS = 40; // the kernel's own limit on symlinks followed in one lookup

/**
 * Resolve where the symlink at `linkPath` leads, following the other symlinks
 * of the tree exactly as the kernel would ('..' after a symlink is taken from
 * the symlink's target, not lexically). Throws when any step leaves the root or
 * the chain loops. Components that do not exist are taken lexically: such a
 * path does not resolve at all, which is harmless.
 */
export function resolveInTree(tree: ReadonlyMap<string, TreeNode>, linkPath: string): string {
  const start = tree.get(linkPath);
  if (!start || start.kind !== 'symlink' || start.target === undefined) return linkPath;
  const stack = dirParts(linkPath);
  let todo = start.target.split('/');
  let hops = 1;
  while (todo.length > 0) {
    const c = todo.shift() as string;
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (stack.length === 0) throw new PolicyError(`symlink ${JSON.stringify(linkPath)} resolves outside the release`);
      stack.pop();
      continue;
    }
    stack.push(c);
    const node = tree.get(stack.join('/'));
    if (node?.kind === 'symlink' && node.target !== undefined) {
      if (++hops > MAX_HOPS) throw new PolicyError(`symlink ${JSON.stringify(linkPath)} is part of a loop`);
      if (node.target.startsWith('/')) throw new PolicyError(`symlink ${JSON.stringify(linkPath)} resolves outside the release`);
      stack.pop();
      todo = [...node.target.split('/'), ...todo];
    }
  }
  return stack.join('/');
}

/** setuid, setgid and sticky never survive; the owner can always read (and, for directories, enter and write). */
export function fileMode(mode: number): number {
  return (mode & 0o777) | 0o400;
}
export function dirMode(mode: number): number {
  return (mode & 0o777) | 0o700;
}
