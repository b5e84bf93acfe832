import { describe, expect, it } from "vitest";
import { composeV1CacheKey, encodeV1CacheKeys, V1_CACHE_KEYS_VAR } from "../../../src/compose/v1-cache-keys.ts";

describe("compose v1 cache keys handed to docker mode", () => {
  const env = { [V1_CACHE_KEYS_VAR]: encodeV1CacheKeys({ "proj-sessa_web": "proj_web", "own/image:1": "proj_api", bad: "../escape" }) };
  it.each<[string | undefined, string | undefined]>([
    ["proj-sessa_web", "proj_web"],
    ["own/image:1", "proj_api"],
    ["proj-sessb_web", undefined],
    ["bad", undefined],
    [undefined, undefined],
  ])("tag %j → key %j", (tag, key) => {
    expect(composeV1CacheKey(tag, env)).toBe(key);
  });

  it("ignores a missing or damaged value", () => {
    expect(composeV1CacheKey("proj-sessa_web", {})).toBeUndefined();
    expect(composeV1CacheKey("proj-sessa_web", { [V1_CACHE_KEYS_VAR]: "{not json" })).toBeUndefined();
  });
});
