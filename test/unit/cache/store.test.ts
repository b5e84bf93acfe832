import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openCacheDir, readIndex, REF_NAME_ANNOTATION, type Descriptor } from "../../../src/cache/store.ts";

let root: string;
let savedUmask: number;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "shim-store-"));
  savedUmask = process.umask(0o077); // the most hostile umask: modes must not depend on it
});
afterEach(async () => {
  process.umask(savedUmask);
  await rm(root, { recursive: true, force: true });
});

function digestOf(data: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

async function putBlob(layoutDir: string, data: Uint8Array | string, mediaType: string): Promise<Descriptor> {
  const digest = digestOf(data);
  await mkdir(join(layoutDir, "blobs", "sha256"), { recursive: true });
  await writeFile(join(layoutDir, "blobs", "sha256", digest.slice(7)), data);
  return { mediaType, digest, size: Buffer.byteLength(data) };
}

/** Writes what a buildx `type=local` cache export leaves in its dest: layers, cache config, manifest, index. */
async function fakeExport(layoutDir: string, tag = "latest", layers = 2): Promise<{ manifest: Descriptor; all: string[] }> {
  const layerDescs: Descriptor[] = [];
  for (let i = 0; i < layers; i++) {
    layerDescs.push(await putBlob(layoutDir, randomBytes(64), "application/vnd.oci.image.layer.v1.tar+gzip"));
  }
  const config = await putBlob(layoutDir, JSON.stringify({ layers: layerDescs.length }), "application/vnd.buildkit.cacheconfig.v0");
  const manifestJson = JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config, layers: layerDescs });
  const manifest = await putBlob(layoutDir, manifestJson, "application/vnd.oci.image.manifest.v1+json");
  const index = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [{ ...manifest, annotations: { [REF_NAME_ANNOTATION]: tag } }],
  };
  await writeFile(join(layoutDir, "index.json"), JSON.stringify(index));
  return { manifest, all: [manifest.digest, config.digest, ...layerDescs.map((d) => d.digest)] };
}

async function assertIndexConsistent(dir: string): Promise<Descriptor[]> {
  const read = await readIndex(dir);
  expect(read.state).toBe("ok");
  if (read.state !== "ok") return [];
  const cache = openCacheDir(dir);
  for (const entry of read.index.manifests) {
    const manifest = JSON.parse(await readFile(cache.blobPath(entry.digest), "utf8"));
    for (const child of [manifest.config, ...manifest.layers] as Descriptor[]) {
      expect(existsSync(cache.blobPath(child.digest)), `blob ${child.digest} named by the index`).toBe(true);
    }
  }
  return read.index.manifests;
}

describe("openCacheDir", () => {
  it("maps digests to blob paths and refuses anything that could escape the directory", () => {
    const cache = openCacheDir(join(root, "k"));
    const hex = "a".repeat(64);
    expect(cache.blobPath(`sha256:${hex}`)).toBe(join(root, "k", "blobs", "sha256", hex));
    for (const bad of ["sha256:../../etc/passwd", `sha256:${"A".repeat(64)}`, "sha256:abc", `md5:${hex}`, hex, ""]) {
      expect(() => cache.blobPath(bad), bad).toThrow(/not a valid digest/);
    }
  });

  it("resolveTag tolerates a missing directory, a missing index and a broken index", async () => {
    const cache = openCacheDir(join(root, "k"));
    expect(await cache.resolveTag("latest")).toBeUndefined();
    await mkdir(join(root, "k"));
    await writeFile(join(root, "k", "index.json"), "{not json");
    expect(await cache.resolveTag("latest")).toBeUndefined();
    await writeFile(join(root, "k", "index.json"), JSON.stringify({ manifests: "nope" }));
    expect(await cache.resolveTag("latest")).toBeUndefined();
  });

  it("resolveTag returns the entry for a tag whose blob exists, and nothing for a dangling one", async () => {
    const dir = join(root, "k");
    const { manifest } = await fakeExport(dir, "latest");
    const cache = openCacheDir(dir);
    expect(await cache.resolveTag("latest")).toMatchObject({ digest: manifest.digest, size: manifest.size });
    expect(await cache.resolveTag("other")).toBeUndefined();
    await rm(cache.blobPath(manifest.digest));
    expect(await cache.resolveTag("latest")).toBeUndefined();
  });
});

describe("staging and commit", () => {
  it("creates a private staging dir inside the cache dir, shared-writable whatever the umask", async () => {
    const dir = join(root, "key");
    const staging = await openCacheDir(dir).beginExport();
    expect(staging.dir.startsWith(join(dir, ".staging") + "/")).toBe(true);
    for (const path of [dir, join(dir, "blobs"), join(dir, "blobs", "sha256"), join(dir, ".staging"), staging.dir, join(staging.dir, "ingest")]) {
      expect((await stat(path)).mode & 0o777, path).toBe(0o777);
    }
    expect((await stat(join(dir, "oci-layout"))).mode & 0o777).toBe(0o666);
    expect(JSON.parse(await readFile(join(dir, "oci-layout"), "utf8"))).toEqual({ imageLayoutVersion: "1.0.0" });
    await staging.discard();
    expect(existsSync(staging.dir)).toBe(false);
  });

  it("commit() publishes what the exporter wrote into staging, moves the blobs and removes staging", async () => {
    const dir = join(root, "key");
    const cache = openCacheDir(dir);
    const staging = await cache.beginExport();
    const { manifest, all } = await fakeExport(staging.dir, "latest");
    const result = await staging.commit();
    expect(result.published).toEqual(["latest"]);
    expect(result.blobsAdded).toBe(all.length);
    expect(existsSync(staging.dir)).toBe(false);
    const entries = await assertIndexConsistent(dir);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ digest: manifest.digest, annotations: { [REF_NAME_ANNOTATION]: "latest" } });
    expect((await stat(join(dir, "index.json"))).mode & 0o777).toBe(0o666);
    for (const d of all) expect((await stat(cache.blobPath(d))).mode & 0o777).toBe(0o666);
    const meta = await cache.readMeta();
    expect(meta?.blobCount).toBe(all.length);
    expect(meta?.size).toBeGreaterThan(0);
    expect(meta?.lastExport).toBe(meta?.lastUsed);
  });

  it("keeps blobs already present, and entries for other tags", async () => {
    const dir = join(root, "key");
    const cache = openCacheDir(dir);
    const first = await cache.beginExport();
    const { all } = await fakeExport(first.dir, "a");
    await first.commit();
    const inodeBefore = (await stat(cache.blobPath(all[2]!))).ino;

    const second = await cache.beginExport({ linkExisting: false });
    // The second export shares a layer with the first (same bytes → same digest), written as a new file.
    const sharedLayer = await readFile(cache.blobPath(all[2]!));
    await writeFile(join(second.dir, "blobs", "sha256", all[2]!.slice(7)), sharedLayer);
    await fakeExport(second.dir, "b");
    const result = await second.commit();
    expect(result.published).toEqual(["b"]);
    expect((await stat(cache.blobPath(all[2]!))).ino).toBe(inodeBefore);
    const entries = await assertIndexConsistent(dir);
    expect(entries.map((e) => e.annotations?.[REF_NAME_ANNOTATION]).sort()).toEqual(["a", "b"]);
  });

  it("hard-links the blobs already cached into a new staging dir, so the exporter skips them", async () => {
    const dir = join(root, "key");
    const cache = openCacheDir(dir);
    const first = await cache.beginExport();
    const { all } = await fakeExport(first.dir, "a");
    await first.commit();
    const second = await cache.beginExport({ id: "fixed-id" });
    expect(second.dir).toBe(join(dir, ".staging", "fixed-id"));
    for (const d of all) {
      expect((await stat(join(second.dir, "blobs", "sha256", d.slice(7)))).ino).toBe((await stat(cache.blobPath(d))).ino);
    }
    const result = await second.commit([]);
    expect(result.blobsAdded).toBe(0);
    for (const d of all) expect(existsSync(cache.blobPath(d))).toBe(true);
    await expect(cache.beginExport({ id: "../x" })).rejects.toThrow(/not a valid staging id/);
  });

  it("replaces the entry of the same tag", async () => {
    const dir = join(root, "key");
    const cache = openCacheDir(dir);
    const s1 = await cache.beginExport();
    await fakeExport(s1.dir, "latest");
    await s1.commit();
    const s2 = await cache.beginExport();
    const { manifest } = await fakeExport(s2.dir, "latest");
    await s2.commit();
    const entries = await assertIndexConsistent(dir);
    expect(entries.map((e) => e.digest)).toEqual([manifest.digest]);
  });

  it("refuses to publish a tag whose manifest reaches a missing blob", async () => {
    const dir = join(root, "key");
    const cache = openCacheDir(dir);
    const staging = await cache.beginExport();
    const { all } = await fakeExport(staging.dir, "latest");
    await rm(join(staging.dir, "blobs", "sha256", all[3]!.slice(7))); // a layer the export never finished
    const result = await staging.commit();
    expect(result.published).toEqual([]);
    expect(result.skipped).toEqual([{ tag: "latest", missing: [all[3]] }]);
    expect(existsSync(join(dir, "index.json"))).toBe(false);
  });

  it("accepts explicit tagged descriptors (the Content-service path) and [] for blobs only", async () => {
    const dir = join(root, "key");
    const cache = openCacheDir(dir);
    const staging = await cache.beginExport();
    const { manifest } = await fakeExport(staging.dir, "ignored-from-index");
    const result = await staging.commit([{ tag: "v1", descriptor: manifest }]);
    expect(result.published).toEqual(["v1"]);
    expect(await cache.resolveTag("v1")).toMatchObject({ digest: manifest.digest });
    expect(await cache.resolveTag("ignored-from-index")).toBeUndefined();

    const blobsOnly = await cache.beginExport();
    const other = await fakeExport(blobsOnly.dir, "x");
    expect((await blobsOnly.commit([])).published).toEqual([]);
    expect(existsSync(cache.blobPath(other.manifest.digest))).toBe(true);
    expect(await cache.resolveTag("x")).toBeUndefined();
  });

  it("keeps a broken index.json aside, writes a valid one and loses no blob", async () => {
    const dir = join(root, "key");
    const cache = openCacheDir(dir);
    const s1 = await cache.beginExport();
    const old = await fakeExport(s1.dir, "old");
    await s1.commit();
    await writeFile(join(dir, "index.json"), '{"schemaVersion":2,"manifests":[');
    const s2 = await cache.beginExport();
    await fakeExport(s2.dir, "latest");
    const result = await s2.commit();
    expect(result.published).toEqual(["latest"]);
    expect(result.notes.join("\n")).toMatch(/not valid JSON; kept it as .*index\.json\.broken-/);
    const names = await readdir(dir);
    const aside = names.find((n) => n.startsWith("index.json.broken-"));
    expect(await readFile(join(dir, aside!), "utf8")).toBe('{"schemaVersion":2,"manifests":[');
    await assertIndexConsistent(dir);
    for (const d of old.all) expect(existsSync(cache.blobPath(d))).toBe(true);
  });

  it("drops index entries (left by another tool) whose blob is missing", async () => {
    const dir = join(root, "key");
    const cache = openCacheDir(dir);
    await mkdir(dir, { recursive: true });
    const dangling = { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: `sha256:${"b".repeat(64)}`, size: 10, annotations: { [REF_NAME_ANNOTATION]: "gone" } };
    await writeFile(join(dir, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [dangling] }));
    const staging = await cache.beginExport();
    await fakeExport(staging.dir, "latest");
    const result = await staging.commit();
    expect(result.notes.join("\n")).toMatch(/dropped index entry gone/);
    const entries = await assertIndexConsistent(dir);
    expect(entries.map((e) => e.annotations?.[REF_NAME_ANNOTATION])).toEqual(["latest"]);
  });

  it("8 concurrent commits into one key all succeed and leave a consistent index", async () => {
    const dir = join(root, "key");
    const stagings = await Promise.all(Array.from({ length: 8 }, () => openCacheDir(dir).beginExport()));
    const exports = await Promise.all(stagings.map((s, i) => fakeExport(s.dir, i % 2 === 0 ? "latest" : `t${i}`, 3)));
    const results = await Promise.all(stagings.map((s) => s.commit()));
    for (const r of results) expect(r.skipped).toEqual([]);
    const entries = await assertIndexConsistent(dir);
    expect(entries.map((e) => e.annotations?.[REF_NAME_ANNOTATION]).sort()).toEqual(["latest", "t1", "t3", "t5", "t7"]);
    const latest = entries.find((e) => e.annotations?.[REF_NAME_ANNOTATION] === "latest")!;
    expect(exports.filter((_, i) => i % 2 === 0).map((e) => e.manifest.digest)).toContain(latest.digest);
    for (const e of exports) for (const d of e.all) expect(existsSync(openCacheDir(dir).blobPath(d))).toBe(true);
    expect(await readdir(join(dir, ".staging"))).toEqual([]);
  });

  it("waits for the index lock instead of failing, and gives up after the bound", async () => {
    const dir = join(root, "key");
    const staging = await openCacheDir(dir, { lockTimeoutMs: 5_000 }).beginExport();
    await fakeExport(staging.dir);
    await mkdir(join(dir, ".shim-index.lock"));
    const started = Date.now();
    setTimeout(() => void rm(join(dir, ".shim-index.lock"), { recursive: true }), 300);
    expect((await staging.commit()).published).toEqual(["latest"]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);

    const late = await openCacheDir(dir, { lockTimeoutMs: 300 }).beginExport();
    await fakeExport(late.dir, "late");
    await mkdir(join(dir, ".shim-index.lock"));
    await expect(late.commit()).rejects.toThrow(/timed out after 0s waiting for .*\.shim-index\.lock/);
    expect(existsSync(late.dir)).toBe(false); // staging is removed even when the commit fails
    expect(await openCacheDir(dir).resolveTag("latest")).toBeDefined(); // and the store is still valid
  });

  it("breaks a lock left by a killed process", async () => {
    const dir = join(root, "key");
    const staging = await openCacheDir(dir, { lockStaleMs: 1_000, lockTimeoutMs: 5_000 }).beginExport();
    await fakeExport(staging.dir);
    await mkdir(join(dir, ".shim-index.lock"));
    const old = new Date(Date.now() - 10_000);
    await utimes(join(dir, ".shim-index.lock"), old, old);
    expect((await staging.commit()).published).toEqual(["latest"]);
    expect(existsSync(join(dir, ".shim-index.lock"))).toBe(false);
  });

  it("removes stale staging and temp files by age, and leaves live ones alone", async () => {
    const dir = join(root, "key");
    const cache = openCacheDir(dir, { stagingStaleMs: 60_000 });
    const killed = await cache.beginExport();
    await fakeExport(killed.dir);
    const live = await cache.beginExport();
    const old = new Date(Date.now() - 120_000);
    for (const p of [killed.dir, join(killed.dir, "ingest"), join(killed.dir, "blobs", "sha256")]) await utimes(p, old, old);
    const staleTmp = join(dir, ".index.json.123-abc.tmp");
    await writeFile(staleTmp, "{");
    await utimes(staleTmp, old, old);
    const next = await cache.beginExport();
    expect(existsSync(killed.dir)).toBe(false);
    expect(existsSync(staleTmp)).toBe(false);
    expect(existsSync(live.dir)).toBe(true);
    await Promise.all([live.discard(), next.discard(), killed.discard()]);
  });

  it("recordUse keeps size and updates lastUsed", async () => {
    const dir = join(root, "key");
    const cache = openCacheDir(dir);
    const staging = await cache.beginExport();
    await fakeExport(staging.dir);
    await staging.commit();
    const before = (await cache.readMeta())!;
    await new Promise((r) => setTimeout(r, 5));
    await cache.recordUse();
    const after = (await cache.readMeta())!;
    expect(after.size).toBe(before.size);
    expect(after.lastExport).toBe(before.lastExport);
    expect(Date.parse(after.lastUsed)).toBeGreaterThan(Date.parse(before.lastUsed));
  });
});
