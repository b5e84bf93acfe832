// Compose v1 builds through `docker build -t <project>_<service>` on PATH, i.e. through the shim in docker mode.
// With a session suffix in the project name the tag differs per session, so compose mode tells docker mode (in the
// environment compose v1 passes on to `docker build`) which session-independent key each tag stands for.
import { isSafeKey } from "../cache/key.ts";

export const V1_CACHE_KEYS_VAR = "SHIM_COMPOSE_CACHE_KEYS";

/** The value of V1_CACHE_KEYS_VAR: tag → key. */
export function encodeV1CacheKeys(keys: Readonly<Record<string, string>>): string {
  return JSON.stringify(keys);
}

/** The shared key compose mode chose for the image tag `docker build` was given; undefined when it chose none. */
export function composeV1CacheKey(tag: string | undefined, env: Readonly<Record<string, string | undefined>>): string | undefined {
  const encoded = env[V1_CACHE_KEYS_VAR];
  if (tag === undefined || !encoded) return undefined;
  try {
    const keys: unknown = JSON.parse(encoded);
    const key = typeof keys === "object" && keys !== null ? (keys as Record<string, unknown>)[tag] : undefined;
    return typeof key === "string" && isSafeKey(key) ? key : undefined;
  } catch {
    return undefined;
  }
}
