// Path helpers with Go semantics: fsutil and patternmatcher clean every path with Go's filepath.Clean and
// order names by their UTF-8 bytes, and the receiving side rejects anything else.

/** Go's path.Clean for '/'-separated paths ("" → ".", no trailing slash, "." and ".." resolved lexically). */
export function cleanPath(p: string): string {
  if (p === "") return ".";
  const rooted = p.startsWith("/");
  const out: string[] = [];
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!rooted) out.push("..");
      continue;
    }
    out.push(part);
  }
  const joined = out.join("/");
  if (rooted) return "/" + joined;
  return joined === "" ? "." : joined;
}

/** Go's path.Join: the non-empty elements joined with '/', then cleaned ("" when all are empty). */
export function joinPath(...elems: string[]): string {
  const nonEmpty = elems.filter((e) => e !== "");
  return nonEmpty.length === 0 ? "" : cleanPath(nonEmpty.join("/"));
}

/** Go's path.Dir. */
export function dirPath(p: string): string {
  const i = p.lastIndexOf("/");
  return cleanPath(i < 0 ? "" : p.slice(0, i + 1));
}

/** Go's path.Base. */
export function basePath(p: string): string {
  if (p === "") return ".";
  const trimmed = p.replace(/\/+$/, "");
  if (trimmed === "") return "/";
  return trimmed.slice(trimmed.lastIndexOf("/") + 1);
}

/**
 * Compares two names by their UTF-8 bytes, as Go compares strings. Comparing code points gives the same order
 * as comparing UTF-8 bytes; JS's default string order compares UTF-16 units, which differs for characters
 * above U+FFFF versus U+E000–U+FFFF.
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    const surrogateA = ca >= 0xd800 && ca <= 0xdfff;
    const surrogateB = cb >= 0xd800 && cb <= 0xdfff;
    // A surrogate (astral code point) sorts after every BMP unit, including U+E000–U+FFFF.
    if (surrogateA !== surrogateB) return surrogateA ? 1 : -1;
    return ca - cb;
  }
  return a.length - b.length;
}
