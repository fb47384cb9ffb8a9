// SHA256SUMS files as `sha256sum` writes them ("<hex>  <name>", or "<hex> *<name>"
// in binary mode), plus the BSD form "SHA256 (<name>) = <hex>". Pure.

/** File name -> lowercase hex. Lines that are neither form are ignored. */
export function parseSha256Sums(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    let m = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line);
    if (m && m[1] && m[2]) {
      out.set(cleanName(m[2]), m[1].toLowerCase());
      continue;
    }
    m = /^SHA256 \((.+)\) = ([0-9a-fA-F]{64})$/.exec(line);
    if (m && m[1] && m[2]) out.set(cleanName(m[1]), m[2].toLowerCase());
  }
  return out;
}

function cleanName(name: string): string {
  return name.startsWith('./') ? name.slice(2) : name;
}
