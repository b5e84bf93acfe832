// Cache key derivation (issue #3 item 3): one directory per key, directly under the cache root. Pure.
import { createHash } from "node:crypto";
import { basename, posix } from "node:path";

/** The key for a build whose context is a URL or stdin (`-`). */
export const DEFAULT_KEY = "default";

/** Longest key kept (a file name is at most 255 bytes; leave room for tools that add suffixes). */
const MAX_KEY_LENGTH = 128;

/** Only these can ever appear in a key, and a key never starts with `.` or `-`: it cannot name `..` or a flag. */
const SAFE_KEY = /^[a-z0-9_][a-z0-9_.-]*$/;

/** Lowercase, keep `[a-z0-9_.-]` (after `/` → `_`), strip leading `.` and `-`, bound the length. */
export function sanitizeKeyPart(text: string): string {
  const kept = text
    .toLowerCase()
    .replaceAll("/", "_")
    .replace(/[^a-z0-9_.-]/g, "")
    .replace(/^[.-]+/, "");
  return kept.slice(0, MAX_KEY_LENGTH);
}

/**
 * The key for an image reference given to `-t`:
 * drop `@digest`; drop `:tag` only when the colon comes after the last `/`; drop the first component when it is a
 * registry (contains `.` or `:`, or is `localhost`, and is not the only component); then sanitise.
 * Returns "" when nothing usable remains (the caller falls back to the context key).
 */
export function keyFromTag(tag: string): string {
  let name = tag;
  const at = name.indexOf("@");
  if (at >= 0) name = name.slice(0, at);
  const colon = name.lastIndexOf(":");
  if (colon > name.lastIndexOf("/")) name = name.slice(0, colon);
  const slash = name.indexOf("/");
  if (slash >= 0) {
    const first = name.slice(0, slash);
    if (first.includes(".") || first.includes(":") || first === "localhost") name = name.slice(slash + 1);
  }
  return sanitizeKeyPart(name);
}

/** True for a build context that is not a local directory: stdin, or anything buildx fetches itself. */
export function isRemoteContext(context: string): boolean {
  return (
    context === "-" ||
    /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(context) ||
    context.startsWith("git@") ||
    context.startsWith("github.com/")
  );
}

/**
 * The key for a build without a usable tag: `ctx-<basename>-<8 hex of sha256(absolute dir)>`, or `ctx-<hash>` when
 * the basename sanitises to nothing (e.g. `/`). `absoluteDir` must already be absolute.
 */
export function keyFromContextDir(absoluteDir: string): string {
  const normalized = posix.normalize(absoluteDir).replace(/(.)\/+$/, "$1");
  const hash = createHash("sha256").update(normalized).digest("hex").slice(0, 8);
  const base = sanitizeKeyPart(basename(normalized)).slice(0, MAX_KEY_LENGTH - 13);
  return base ? `ctx-${base}-${hash}` : `ctx-${hash}`;
}

export interface KeyInput {
  /** The first `-t`/`--tag` value, if any. */
  tag: string | undefined;
  /** The build context argument as the user wrote it (PATH, URL or `-`); undefined when absent. */
  context: string | undefined;
  /** The working directory a relative context is resolved against. */
  cwd: string;
}

export interface DerivedKey {
  key: string;
  /** How it was derived, for `SHIM_DEBUG`. */
  reason: string;
}

/** Derives the key; undefined when there is no tag and no context (the real CLI will report the usage error). */
export function deriveCacheKey(input: KeyInput): DerivedKey | undefined {
  if (input.tag !== undefined) {
    const fromTag = keyFromTag(input.tag);
    if (fromTag) return checked({ key: fromTag, reason: `from tag ${JSON.stringify(input.tag)}` });
  }
  const why = input.tag === undefined ? "no tag" : `tag ${JSON.stringify(input.tag)} gives no usable key`;
  if (input.context === undefined) return undefined;
  if (isRemoteContext(input.context)) {
    return checked({ key: DEFAULT_KEY, reason: `${why}; context ${JSON.stringify(input.context)} is not a local directory` });
  }
  const absolute = posix.resolve(input.cwd, input.context);
  return checked({ key: keyFromContextDir(absolute), reason: `${why}; from context directory ${absolute}` });
}

/** Defence in depth: whatever the derivation did, a key is a single safe path component. */
function checked(derived: DerivedKey): DerivedKey {
  if (!isSafeKey(derived.key)) throw new Error(`internal: unsafe cache key ${JSON.stringify(derived.key)}`);
  return derived;
}

export function isSafeKey(key: string): boolean {
  return SAFE_KEY.test(key) && key.length <= MAX_KEY_LENGTH;
}
