// The override's lifetime and the per-service cache exports, on a real temporary file system.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { composeEffect, exportComplete, removeOrphans } from "../../../src/compose/effect.ts";
import type { StagedExport } from "../../../src/compose/cache-plan.ts";

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "shim-unit-effect-"));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** Writes what BuildKit's local cache exporter leaves in a dest dir: blobs, then index.json naming a manifest. */
function writeExport(dest: string): string {
  const layer = Buffer.from("layer bytes");
  const layerDigest = createHash("sha256").update(layer).digest("hex");
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: `sha256:${layerDigest}`, size: layer.length }] }));
  const manifestDigest = createHash("sha256").update(manifest).digest("hex");
  mkdirSync(join(dest, "blobs", "sha256"), { recursive: true });
  writeFileSync(join(dest, "blobs", "sha256", layerDigest), layer);
  writeFileSync(join(dest, "blobs", "sha256", manifestDigest), manifest);
  writeFileSync(
    join(dest, "index.json"),
    JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: `sha256:${manifestDigest}`, size: manifest.length, annotations: { "org.opencontainers.image.ref.name": "latest" } }] }),
  );
  return manifestDigest;
}

function staged(service: string, key: string): StagedExport {
  const keyDir = join(root, "cache", key);
  return { service, key, keyDir, stagingId: `st-${service}`, stagingDir: join(keyDir, ".staging", `st-${service}`) };
}

describe("the override file", () => {
  it("is written privately before compose starts and removed after it ends, whatever the end", async () => {
    for (const result of [{ code: 0 }, { code: 1 }, { signal: "SIGTERM" as const }, { signal: "SIGKILL" as const }]) {
      const file = join(root, "shim-0", `compose-${process.pid}-x`, "shim.override.yaml");
      const effect = composeEffect({ file, render: () => '{"services":{}}\n', exports: [], importOnly: [], debug: false });
      await effect.before!();
      expect(readFileSync(file, "utf8")).toBe('{"services":{}}\n');
      expect(statSync(join(root, "shim-0", `compose-${process.pid}-x`)).mode & 0o777).toBe(0o700);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      await effect.after!(result);
      expect(readdirSync(join(root, "shim-0"))).toEqual([]);
    }
  });

  it("abort removes it synchronously", async () => {
    const file = join(root, "shim-0", "compose-1-y", "shim.override.yaml");
    const effect = composeEffect({ file, render: () => "{}", exports: [], importOnly: [], debug: false });
    await effect.before!();
    effect.abort!();
    expect(readdirSync(join(root, "shim-0"))).toEqual([]);
  });

  it("orphans of killed shims are removed once old; live ones and fresh ones stay", () => {
    const parent = join(root, "shim-0");
    const dead = join(parent, "compose-999999999-a");
    const deadFresh = join(parent, "compose-999999998-b");
    const live = join(parent, `compose-${process.pid}-c`);
    for (const d of [dead, deadFresh, live]) mkdirSync(d, { recursive: true });
    const old = new Date(Date.now() - 2 * 60 * 60_000);
    utimesSync(dead, old, old);
    utimesSync(live, old, old);
    removeOrphans(parent);
    expect(readdirSync(parent).sort()).toEqual([`compose-${process.pid}-c`, "compose-999999998-b"]);
  });
});

describe("cache exports", () => {
  it("merges a service's export as soon as it is complete, while compose still runs", async () => {
    const web = staged("web", "proj_web");
    const api = staged("api", "proj_api");
    const effect = composeEffect({ exports: [web, api], importOnly: [], debug: false });
    await effect.before!();
    expect(existsSync(web.stagingDir)).toBe(true);
    const digest = writeExport(web.stagingDir);
    let merged = false;
    for (let i = 0; i < 40 && !merged; i++) {
      await new Promise((r) => setTimeout(r, 100));
      merged = existsSync(join(web.keyDir, "index.json"));
    }
    expect(merged).toBe(true);
    expect(existsSync(join(web.keyDir, "blobs", "sha256", digest))).toBe(true);
    expect(existsSync(web.stagingDir)).toBe(false);
    // api never exported: discarded at the end, nothing published.
    await effect.after!({ code: 130 });
    expect(existsSync(api.stagingDir)).toBe(false);
    expect(existsSync(join(api.keyDir, "index.json"))).toBe(false);
  });

  it("merges complete exports at exit even when compose failed afterwards, and skips incomplete ones", async () => {
    const web = staged("web", "k1");
    const effect = composeEffect({ exports: [web], importOnly: [], debug: false });
    await effect.before!();
    writeExport(web.stagingDir);
    writeFileSync(join(web.stagingDir, "index.json.lock"), "");
    expect(await exportComplete(web.stagingDir)).toBe(false);
    rmSync(join(web.stagingDir, "index.json.lock"));
    expect(await exportComplete(web.stagingDir)).toBe(true);
    await effect.after!({ code: 1 });
    expect(JSON.parse(readFileSync(join(web.keyDir, "index.json"), "utf8")).manifests).toHaveLength(1);
  });

  it("prepares import-only key dirs shared (so any session's uid can export there later)", async () => {
    const keyDir = join(root, "cache", "proj_tool");
    const effect = composeEffect({ exports: [], importOnly: [keyDir], debug: false });
    const umask = process.umask(0o022);
    try {
      await effect.before!();
    } finally {
      process.umask(umask);
    }
    expect(statSync(keyDir).mode & 0o777).toBe(0o777);
    await effect.after!({ code: 0 });
    expect(readdirSync(keyDir)).toEqual([]);
  });

  it("does not take a half-written index.json for a finished export", async () => {
    const dest = join(root, "half");
    writeExport(dest);
    writeFileSync(join(dest, "index.json"), '{"schemaVersion":2,"manif');
    expect(await exportComplete(dest)).toBe(false);
  });
});
