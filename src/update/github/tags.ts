// GitHub tag -> molt version label. The label becomes a directory name under
// versions/, so anything that could escape or confuse a path is refused.

const SAFE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;

/** "v1.2.3" -> "1.2.3"; "release-7" stays; undefined when the tag is not safe as a directory name. */
export function versionFromTag(tag: string): string | undefined {
  const t = tag;
  // Only strip the "v" of "v1.2.3"-style tags, not of a word such as "vanilla".
  const v = /^[vV]\d/.test(t) ? t.slice(1) : t;
  if (!SAFE.test(v) || v.includes('..')) return undefined;
  return v;
}
