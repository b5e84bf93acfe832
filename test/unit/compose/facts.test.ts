// The per-binary facts file: versions asked once per binary, one-time notices, damage tolerated.
import { chmodSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BinaryFacts, composeVersion, firstTimeFor } from "../../../src/compose/facts.ts";

let dir: string;
let compose: string;
let calls: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "shim-unit-facts-"));
  compose = join(dir, "compose");
  calls = join(dir, "calls");
  // A recording fake: counts how often it is asked.
  writeFileSync(compose, `#!/bin/sh\necho x >> ${calls}\necho v2.2.3\n`);
  chmodSync(compose, 0o755);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const asked = () => {
  try {
    return readFileSync(calls, "utf8").split("\n").filter(Boolean).length;
  } catch {
    return 0;
  }
};

describe("binary facts", () => {
  it("asks a compose binary for its version once, until the binary changes", async () => {
    const env = { PATH: process.env.PATH, XDG_CACHE_HOME: join(dir, "cache") };
    const first = await composeVersion(compose, env, BinaryFacts.forEnv(env));
    expect(first).toMatchObject({ cached: false, version: { text: "v2.2.3", major: 2, minor: 2, patch: 3 } });
    const second = await composeVersion(compose, env, BinaryFacts.forEnv(env));
    expect(second).toMatchObject({ cached: true, version: { major: 2, minor: 2, patch: 3 } });
    expect(asked()).toBe(1);
    const later = new Date(Date.now() + 5000);
    utimesSync(compose, later, later);
    expect((await composeVersion(compose, env, BinaryFacts.forEnv(env))).cached).toBe(false);
    expect(asked()).toBe(2);
  });

  it("shows a notice once per binary and survives a damaged file", () => {
    const file = join(dir, "cache", "shim", "compose-facts.json");
    const facts = new BinaryFacts(file);
    expect(firstTimeFor(compose, "x", facts)).toBe(true);
    expect(firstTimeFor(compose, "x", new BinaryFacts(file))).toBe(false);
    writeFileSync(file, "{damaged");
    expect(firstTimeFor(compose, "x", new BinaryFacts(file))).toBe(true);
  });
});
