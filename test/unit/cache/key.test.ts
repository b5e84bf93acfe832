import { describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { posix } from "node:path";
import { deriveCacheKey, isSafeKey, keyFromContextDir, keyFromTag } from "../../../src/cache/key.ts";

const hash8 = (path: string) => createHash("sha256").update(path).digest("hex").slice(0, 8);

describe("keyFromTag", () => {
  it.each([
    // the examples
    ["myapp:latest", "myapp"],
    ["localhost:5000/foo", "foo"], // the reference implementation gave `localhost` (cut at the last colon first)
    ["registry.example.com/org/app:v1", "org_app"],
    [`ghcr.io/a/b@sha256:${"0".repeat(64)}`, "a_b"],
    // the rules one by one
    ["localhost:5000/foo:tag", "foo"],
    ["localhost/foo", "foo"],
    ["docker.io/library/busybox", "library_busybox"],
    ["org/app", "org_app"],
    ["myapp", "myapp"],
    ["my.app", "my.app"], // a single component is never a registry
    ["my.app:1.0", "my.app"],
    ["host:5000/a/b:c@sha256:abc", "a_b"],
    ["a:b/c", "c"], // `a:b` contains a colon → registry
    ["My Image!", "myimage"],
    ["MyOrg/App", "myorg_app"],
    ["-leading-dash", "leading-dash"],
    [".hidden", "hidden"],
    ["UPPER_case-1.2", "upper_case-1.2"],
    // keys that would escape the root, or say nothing
    ["..", ""],
    ["../../etc", "_etc"], // `..` is taken as a registry component (contains `.`), the rest is flattened
    ["../..", ""],
    ["a/../../b", "a_.._.._b"],
    ["/etc/passwd", "_etc_passwd"],
    ["./x", "x"], // `.` is a registry-looking component, dropped
    ["", ""],
    [":", ""],
    ["@sha256:abc", ""],
    ["é/ü", "_"],
  ])("%j → %j", (tag, key) => {
    expect(keyFromTag(tag)).toBe(key);
    if (key) expect(isSafeKey(key)).toBe(true);
  });

  it("never produces a key that addresses anything but one child of the root", () => {
    const nasty = ["..", "../..", "../../etc", "/..", "./..", "...", "....//", "..\\..", "%2e%2e", "-t", "--", "~", "$HOME", "a\0b", "x".repeat(400)];
    for (const tag of nasty) {
      const key = keyFromTag(tag);
      if (key === "") continue;
      expect(isSafeKey(key), `${tag} → ${key}`).toBe(true);
      expect(posix.join("/buildkit-cache", key).startsWith("/buildkit-cache/"), tag).toBe(true);
      expect(posix.dirname(posix.join("/buildkit-cache", key)), tag).toBe("/buildkit-cache");
    }
  });
});

describe("keyFromContextDir", () => {
  it("is ctx-<sanitised basename>-<first 8 hex of sha256 of the absolute path>", () => {
    expect(keyFromContextDir("/workspace/My Project")).toBe(`ctx-myproject-${hash8("/workspace/My Project")}`);
    expect(keyFromContextDir("/workspace/app/")).toBe(`ctx-app-${hash8("/workspace/app")}`);
    expect(keyFromContextDir("/srv/.config")).toBe(`ctx-config-${hash8("/srv/.config")}`);
    expect(keyFromContextDir("/")).toBe(`ctx-${hash8("/")}`);
  });
});

describe("deriveCacheKey", () => {
  it.each([
    [{ tag: "myapp:latest", context: ".", cwd: "/w" }, "myapp", /from tag "myapp:latest"/],
    [{ tag: undefined, context: ".", cwd: "/workspace/app" }, `ctx-app-${hash8("/workspace/app")}`, /no tag; from context directory \/workspace\/app$/],
    [{ tag: undefined, context: "../other", cwd: "/workspace/app" }, `ctx-other-${hash8("/workspace/other")}`, /\/workspace\/other/],
    [{ tag: undefined, context: "/abs/dir", cwd: "/ignored" }, `ctx-dir-${hash8("/abs/dir")}`, /\/abs\/dir/],
    [{ tag: "..", context: ".", cwd: "/w/proj" }, `ctx-proj-${hash8("/w/proj")}`, /tag "\.\." gives no usable key/],
    [{ tag: "", context: ".", cwd: "/w/proj" }, `ctx-proj-${hash8("/w/proj")}`, /gives no usable key/],
    [{ tag: undefined, context: "-", cwd: "/w" }, "default", /not a local directory/],
    [{ tag: undefined, context: "https://github.com/a/b.git#main", cwd: "/w" }, "default", /not a local directory/],
    [{ tag: undefined, context: "git://example.com/r.git", cwd: "/w" }, "default", /not a local directory/],
    [{ tag: undefined, context: "git@github.com:a/b.git", cwd: "/w" }, "default", /not a local directory/],
    [{ tag: undefined, context: "github.com/a/b", cwd: "/w" }, "default", /not a local directory/],
    [{ tag: "x", context: "-", cwd: "/w" }, "x", /from tag/],
  ])("%j → %s", (input, key, reason) => {
    const derived = deriveCacheKey(input);
    expect(derived?.key).toBe(key);
    expect(derived?.reason).toMatch(reason);
  });

  it("gives nothing without a tag and a context (the real CLI reports the usage error)", () => {
    expect(deriveCacheKey({ tag: undefined, context: undefined, cwd: "/w" })).toBeUndefined();
  });
});
