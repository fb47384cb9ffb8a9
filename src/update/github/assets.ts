// Choosing the release asset for this machine: a MOLT_ASSET glob with {os},
// {arch} and {version} substituted, or by default the single .tar.gz/.tgz
// asset, preferring one whose name holds linux and this machine's arch.

export interface AssetInfo {
  id: number;
  name: string;
  size: number;
  /** "sha256:<hex>" when GitHub computed one (uploads since 2025-06), else undefined. */
  digest?: string;
  /** The asset's API URL (…/releases/assets/{id}). */
  url: string;
}

export interface Platform {
  /** Node's names: process.platform, process.arch. */
  os: string;
  arch: string;
}

/** Spellings of each Node arch seen in release asset names (Go/goreleaser first). */
const ARCH_ALIASES: Record<string, string[]> = {
  x64: ['amd64', 'x86_64', 'x64', 'x86-64'],
  arm64: ['arm64', 'aarch64'],
  arm: ['armv7', 'armv7l', 'armhf', 'armv6', 'armv6l', 'arm'],
  ia32: ['386', 'i386', 'i686', 'x86', 'ia32'],
  ppc64: ['ppc64le', 'ppc64'],
  s390x: ['s390x'],
  riscv64: ['riscv64'],
  loong64: ['loong64', 'loongarch64'],
  mips: ['mips'],
  mipsel: ['mipsle', 'mipsel'],
};

const OS_ALIASES: Record<string, string[]> = {
  linux: ['linux'],
  darwin: ['darwin', 'macos', 'osx', 'apple'],
  win32: ['windows', 'win', 'win32', 'win64'],
  freebsd: ['freebsd'],
  openbsd: ['openbsd'],
  netbsd: ['netbsd'],
  sunos: ['solaris', 'illumos', 'sunos'],
  aix: ['aix'],
};

export function archAliases(arch: string): string[] {
  return ARCH_ALIASES[arch] ?? [arch];
}
export function osAliases(os: string): string[] {
  return OS_ALIASES[os] ?? [os];
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Does `name` hold `word` as a token (bounded by non-alphanumerics or the ends)? */
function holdsToken(name: string, word: string): boolean {
  return new RegExp(`(^|[^a-z0-9])${escapeRe(word.toLowerCase())}($|[^a-z0-9])`).test(name.toLowerCase());
}
function holdsAny(name: string, words: string[]): boolean {
  return words.some((w) => holdsToken(name, w));
}

/**
 * Compile a MOLT_ASSET glob to a RegExp matching a whole asset name.
 * `*` any run of characters, `?` one character; `{os}`, `{arch}` and `{version}`
 * match any spelling of this machine's os/arch and the version with or without "v".
 */
export function assetPattern(glob: string, p: Platform, version: string): RegExp {
  const alt = (xs: string[]) => `(?:${[...new Set(xs)].map(escapeRe).join('|')})`;
  const bare = version.replace(/^v/, '');
  let re = '';
  for (let i = 0; i < glob.length; ) {
    const rest = glob.slice(i);
    const sub = /^\{(os|arch|version)\}/.exec(rest);
    if (sub) {
      const key = sub[1];
      re += key === 'os' ? alt(osAliases(p.os)) : key === 'arch' ? alt(archAliases(p.arch)) : alt([bare, 'v' + bare]);
      i += sub[0].length;
      continue;
    }
    const c = glob[i]!;
    re += c === '*' ? '.*' : c === '?' ? '.' : escapeRe(c);
    i++;
  }
  return new RegExp(`^${re}$`, 'i');
}

const ARCHIVE = /\.(tar\.gz|tgz)$/i;

/** True when the name says it is for another os or arch than ours (and does not also name ours). */
function namesOtherPlatform(name: string, p: Platform): boolean {
  const ours = { os: osAliases(p.os), arch: archAliases(p.arch) };
  const otherOs = Object.entries(OS_ALIASES).filter(([k]) => k !== p.os).flatMap(([, v]) => v);
  const otherArch = Object.entries(ARCH_ALIASES).filter(([k]) => k !== p.arch).flatMap(([, v]) => v);
  if (holdsAny(name, otherOs) && !holdsAny(name, ours.os)) return true;
  if (holdsAny(name, otherArch) && !holdsAny(name, ours.arch)) return true;
  return false;
}

function prefer(cands: AssetInfo[], p: Platform): AssetInfo[] {
  return cands.filter((a) => holdsAny(a.name, osAliases(p.os)) && holdsAny(a.name, archAliases(p.arch)));
}

/** A fleet verdict uploaded to a release (fleet/github-board.ts): never the release's download. */
export const VERDICT_ASSET_RE = /^molt-verdict-[A-Za-z0-9._-]+\.json$/;

export type Selection = { ok: true; asset: AssetInfo } | { ok: false; reason: 'none' | 'ambiguous'; pattern: string; candidates: string[] };

/**
 * Pick the asset for this machine. With a glob: the one match, or among several the one naming
 * our os and arch. Without: the .tar.gz/.tgz assets not meant for another platform; the single
 * one, or among several the one naming our os and arch.
 */
export function selectAsset(all: AssetInfo[], p: Platform, version: string, glob?: string): Selection {
  const assets = all.filter((a) => !VERDICT_ASSET_RE.test(a.name));
  let cands: AssetInfo[];
  let pattern: string;
  if (glob) {
    const re = assetPattern(glob, p, version);
    cands = assets.filter((a) => re.test(a.name));
    pattern = glob;
  } else {
    cands = assets.filter((a) => ARCHIVE.test(a.name) && !namesOtherPlatform(a.name, p));
    pattern = '*.tar.gz|*.tgz (the default; set MOLT_ASSET to choose)';
  }
  if (cands.length === 1) return { ok: true, asset: cands[0]! };
  if (cands.length === 0) return { ok: false, reason: 'none', pattern, candidates: [] };
  const best = prefer(cands, p);
  if (best.length === 1) return { ok: true, asset: best[0]! };
  return { ok: false, reason: 'ambiguous', pattern, candidates: (best.length ? best : cands).map((a) => a.name) };
}

export type AssetKind = 'tar' | 'unsupported' | 'bare';

/** How an asset is installed: extracted (.tar.gz/.tgz/.tar), refused (other archive formats), or a bare executable. */
export function assetKind(name: string): AssetKind {
  const n = name.toLowerCase();
  if (/\.(tar\.gz|tgz|tar)$/.test(n)) return 'tar';
  if (/\.(zip|tar\.xz|txz|tar\.bz2|tbz2?|tar\.zst|tzst|7z|rar|gz|xz|bz2|zst|deb|rpm|apk|dmg|msi|exe|pkg)$/.test(n)) return 'unsupported';
  return 'bare';
}
