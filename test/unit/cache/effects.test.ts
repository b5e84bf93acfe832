import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportEffect, usageEffect } from "../../../src/cache/docker-build.ts";
import { openCacheDir, REF_NAME_ANNOTATION } from "../../../src/cache/store.ts";

let keyDir: string;
let stderr: string[];
beforeEach(async () => {
  keyDir = join(await mkdtemp(join(tmpdir(), "shim-effect-")), "key");
  stderr = [];
  vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
    stderr.push(String(chunk));
    return true;
  });
});
afterEach(async () => {
  vi.restoreAllMocks();
  await rm(join(keyDir, ".."), { recursive: true, force: true });
});

/** What buildx leaves in a `type=local` dest: one manifest blob named by index.json. */
async function exportInto(dir: string, tag = "latest"): Promise<string> {
  const manifest = JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", layers: [] });
  const hex = createHash("sha256").update(manifest).digest("hex");
  await mkdir(join(dir, "blobs", "sha256"), { recursive: true });
  await writeFile(join(dir, "blobs", "sha256", hex), manifest);
  const entry = { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: `sha256:${hex}`, size: manifest.length, annotations: { [REF_NAME_ANNOTATION]: tag } };
  await writeFile(join(dir, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [entry] }));
  return `sha256:${hex}`;
}

describe("exportEffect", () => {
  it("creates the planned staging dir, merges it after exit 0, and leaves no staging behind", async () => {
    const stagingDir = join(keyDir, ".staging", "id1");
    const effect = exportEffect(keyDir, stagingDir, false);
    await effect.before!();
    expect(existsSync(stagingDir)).toBe(true);
    const digest = await exportInto(stagingDir);
    await effect.after!({ code: 0 });
    expect(await openCacheDir(keyDir).resolveTag("latest")).toMatchObject({ digest });
    expect(await readdir(join(keyDir, ".staging"))).toEqual([]);
    expect(stderr).toEqual([]);
  });

  it.each([[{ code: 1 }], [{ signal: "SIGINT" as const }], [{ signal: "SIGTERM" as const }], [{ signal: "SIGKILL" as const }]])(
    "discards the export when the build ends with %j",
    async (result) => {
      const stagingDir = join(keyDir, ".staging", "id2");
      const effect = exportEffect(keyDir, stagingDir, false);
      await effect.before!();
      await exportInto(stagingDir);
      await effect.after!(result);
      expect(existsSync(stagingDir)).toBe(false);
      expect(existsSync(join(keyDir, "index.json"))).toBe(false);
    },
  );

  it("abort() removes the staging dir synchronously", async () => {
    const stagingDir = join(keyDir, ".staging", "id3");
    const effect = exportEffect(keyDir, stagingDir, false);
    await effect.before!();
    await exportInto(stagingDir);
    effect.abort!();
    expect(existsSync(stagingDir)).toBe(false);
  });

  it("a cache problem is one line and never an exception (the build's status stands)", async () => {
    await mkdir(join(keyDir, "..", "blocker"), { recursive: true });
    await writeFile(keyDir, "a file where the key dir should be");
    const stagingDir = join(keyDir, ".staging", "id4");
    const effect = exportEffect(keyDir, stagingDir, false);
    await effect.before!();
    await effect.after!({ code: 0 });
    expect(stderr).toHaveLength(1);
    expect(stderr[0]).toMatch(/^shim: build cache not saved: cannot prepare .*id4: /);
  });

  it("a broken index.json left by another tool: a clear line, a valid index, and the blobs kept", async () => {
    const first = exportEffect(keyDir, join(keyDir, ".staging", "a"), false);
    await first.before!();
    const old = await exportInto(join(keyDir, ".staging", "a"), "old");
    await first.after!({ code: 0 });
    await writeFile(join(keyDir, "index.json"), "garbage");
    const second = exportEffect(keyDir, join(keyDir, ".staging", "b"), false);
    await second.before!();
    await exportInto(join(keyDir, ".staging", "b"), "new");
    await second.after!({ code: 0 });
    expect(stderr.join("")).toMatch(/^shim: build cache: index.json is not valid JSON; kept it as .*index\.json\.broken-/);
    expect(await openCacheDir(keyDir).resolveTag("new")).toBeDefined();
    expect(existsSync(openCacheDir(keyDir).blobPath(old))).toBe(true);
  });
});

describe("usageEffect", () => {
  it("records the use of a key", async () => {
    await mkdir(keyDir, { recursive: true });
    await usageEffect(keyDir).after!({ code: 0 });
    expect((await openCacheDir(keyDir).readMeta())?.lastUsed).toMatch(/^\d{4}-/);
  });
});
