import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  AbortRequestSchema,
  InfoRequestSchema,
  InfoResponseSchema,
  ReadContentRequestSchema,
  ReadContentResponseSchema,
  StatusRequestSchema,
  StatusResponseSchema,
  WriteAction,
  WriteContentRequestSchema,
  WriteContentResponseSchema,
  type WriteContentResponse,
} from "../../../src/buildkit/proto/gen/containerd/content_pb.ts";
import { CONTENT_SERVICE, READ_CHUNK_BYTES, STORE_ID_HEADER } from "../../../src/buildkit/content/service.ts";
import { LocalCacheSession, cacheStoreId, resolveCacheImport } from "../../../src/buildkit/content/cache-session.ts";
import { GrpcCode } from "../../../src/buildkit/session/attachable.ts";
import { fakeCall, type FakeCall } from "../filesync/fake-call.ts";

const sha256 = (data: Uint8Array | string) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

let work: string;
let cacheDir: string;
let session: LocalCacheSession;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), "shim-content-"));
  cacheDir = join(work, "cache");
  session = new LocalCacheSession({ imports: [cacheDir, join(work, "import-only")], exports: [{ dest: cacheDir, tag: "main" }] });
});
afterEach(async () => {
  await session.discard();
  await rm(work, { recursive: true, force: true });
});

/** Starts a Content call on the store for `storeDir` (null: without the store id header). */
function call(method: string, storeDir: string | null = cacheDir): { call: FakeCall; done: Promise<void> } {
  const c = fakeCall(`${CONTENT_SERVICE}/${method}`, storeDir === null ? {} : { [STORE_ID_HEADER]: [cacheStoreId(storeDir)] });
  const done = session.attachable().methods[c.method]!(c);
  done.catch(() => undefined);
  return { call: c, done };
}

type WriteMsg = { action: WriteAction; ref?: string; total?: number; expected?: string; offset?: number; data?: Uint8Array | string };
const writeRequest = (m: WriteMsg) =>
  toBinary(
    WriteContentRequestSchema,
    create(WriteContentRequestSchema, {
      action: m.action,
      ref: m.ref ?? "",
      total: BigInt(m.total ?? 0),
      expected: m.expected ?? "",
      offset: BigInt(m.offset ?? 0),
      data: typeof m.data === "string" ? Buffer.from(m.data) : (m.data ?? new Uint8Array(0)),
    }),
  );

/** Sends one Write message and returns the reply. */
async function exchange(c: FakeCall, m: WriteMsg): Promise<WriteContentResponse> {
  const before = c.sent.length;
  c.push(writeRequest(m));
  const i = await c.waitForSent(() => true, before);
  return fromBinary(WriteContentResponseSchema, c.sent[i]!);
}

/** A whole Write (STAT, one WRITE, COMMIT) as the daemon's content.WriteBlob does it. */
async function writeBlob(data: string | Uint8Array, ref = `layer-${sha256(data)}`, storeDir = cacheDir): Promise<string> {
  const bytes = typeof data === "string" ? Buffer.from(data) : data;
  const { call: c, done } = call("Write", storeDir);
  const stat = await exchange(c, { action: WriteAction.STAT, ref, total: bytes.length, expected: sha256(bytes) });
  expect(stat.offset).toBe(0n);
  await exchange(c, { action: WriteAction.WRITE, offset: 0, data: bytes });
  const commit = await exchange(c, { action: WriteAction.COMMIT, total: bytes.length, offset: bytes.length, expected: sha256(bytes) });
  await done;
  return commit.digest;
}

async function readAll(digest: string, offset = 0, size = 0, storeDir = cacheDir) {
  const { call: c, done } = call("Read", storeDir);
  c.push(toBinary(ReadContentRequestSchema, create(ReadContentRequestSchema, { digest, offset: BigInt(offset), size: BigInt(size) })));
  c.end();
  await done;
  return c.sent.map((m) => fromBinary(ReadContentResponseSchema, m));
}

async function stagingDirs(): Promise<string[]> {
  return readdir(join(cacheDir, ".staging")).catch(() => []);
}

describe("Content service: store selection", () => {
  it("needs the store id header and a known store", async () => {
    const missing = call("Info", null);
    await expect(missing.done).rejects.toMatchObject({ code: GrpcCode.INVALID_ARGUMENT });
    const unknown = call("Info", join(work, "elsewhere"));
    await expect(unknown.done).rejects.toMatchObject({ code: GrpcCode.NOT_FOUND, message: `unknown store local:${join(work, "elsewhere")}` });
  });
  it("answers UNIMPLEMENTED for the calls the cache paths never make", async () => {
    for (const method of ["List", "Delete", "Update", "ListStatuses"]) {
      await expect(call(method).done).rejects.toMatchObject({ code: GrpcCode.UNIMPLEMENTED });
    }
  });
});

describe("Content service: Write", () => {
  it("runs STAT / WRITE / COMMIT into staging, never into the cache dir", async () => {
    const data = "hello content";
    const { call: c, done } = call("Write");
    const stat = await exchange(c, { action: WriteAction.STAT, ref: "ref-1", total: data.length, expected: sha256(data) });
    expect(stat.action).toBe(WriteAction.STAT);
    expect([stat.offset, stat.total]).toEqual([0n, BigInt(data.length)]);
    const w1 = await exchange(c, { action: WriteAction.WRITE, offset: 0, data: data.slice(0, 5) });
    expect(w1.offset).toBe(5n);
    const w2 = await exchange(c, { action: WriteAction.WRITE, offset: 5, data: data.slice(5) });
    expect(w2.offset).toBe(BigInt(data.length));
    expect(w2.digest).toBe(sha256(data));
    const commit = await exchange(c, { action: WriteAction.COMMIT, total: data.length, offset: data.length, expected: sha256(data) });
    expect(commit.action).toBe(WriteAction.COMMIT);
    expect(commit.digest).toBe(sha256(data));
    await done;

    const hex = sha256(data).slice("sha256:".length);
    const [staging] = await stagingDirs();
    expect(await readFile(join(cacheDir, ".staging", staging!, "blobs", "sha256", hex), "utf8")).toBe(data);
    await expect(readFile(join(cacheDir, "blobs", "sha256", hex))).rejects.toThrow(/ENOENT/);
    // …but the daemon can already read it back
    const chunks = await readAll(sha256(data));
    expect(Buffer.concat(chunks.map((r) => r.data)).toString()).toBe(data);
  });

  it("answers ALREADY_EXISTS when the expected blob exists, before taking the ref", async () => {
    const digest = await writeBlob("same bytes");
    const { call: c, done } = call("Write");
    c.push(writeRequest({ action: WriteAction.STAT, ref: "another-ref", total: 10, expected: digest }));
    await expect(done).rejects.toMatchObject({ code: GrpcCode.ALREADY_EXISTS });
    expect(c.sent).toHaveLength(0);
  });

  it("answers UNAVAILABLE while another writer holds the ref", async () => {
    const first = call("Write");
    await exchange(first.call, { action: WriteAction.STAT, ref: "busy" });
    const second = call("Write");
    second.call.push(writeRequest({ action: WriteAction.STAT, ref: "busy" }));
    await expect(second.done).rejects.toMatchObject({ code: GrpcCode.UNAVAILABLE, message: "ref busy locked" });
    first.call.end();
    await first.done;
    // released: a new writer resumes the same ingest
    const third = call("Write");
    expect((await exchange(third.call, { action: WriteAction.STAT, ref: "busy" })).offset).toBe(0n);
    third.call.end();
    await third.done;
  });

  it("rejects a write at the wrong offset with OUT_OF_RANGE", async () => {
    const { call: c, done } = call("Write");
    await exchange(c, { action: WriteAction.STAT, ref: "r" });
    await exchange(c, { action: WriteAction.WRITE, offset: 0, data: "abc" });
    c.push(writeRequest({ action: WriteAction.WRITE, offset: 5, data: "zz" }));
    await expect(done).rejects.toMatchObject({ code: GrpcCode.OUT_OF_RANGE, message: "write @5 must occur at current offset 3" });
  });

  it("truncates on a write at offset 0 and hashes only the new bytes", async () => {
    const { call: c, done } = call("Write");
    await exchange(c, { action: WriteAction.STAT, ref: "t" });
    await exchange(c, { action: WriteAction.WRITE, offset: 0, data: "old bytes" });
    const rewrite = await exchange(c, { action: WriteAction.WRITE, offset: 0, data: "new" });
    expect(rewrite.offset).toBe(3n);
    const commit = await exchange(c, { action: WriteAction.COMMIT, total: 3, offset: 3, expected: sha256("new") });
    expect(commit.digest).toBe(sha256("new"));
    await done;
  });

  it("verifies the digest and the size on COMMIT", async () => {
    const wrongDigest = call("Write");
    await exchange(wrongDigest.call, { action: WriteAction.STAT, ref: "d" });
    await exchange(wrongDigest.call, { action: WriteAction.WRITE, offset: 0, data: "actual" });
    wrongDigest.call.push(writeRequest({ action: WriteAction.COMMIT, total: 6, offset: 6, expected: sha256("expected") }));
    await expect(wrongDigest.done).rejects.toMatchObject({
      code: GrpcCode.FAILED_PRECONDITION,
      message: `unexpected commit digest ${sha256("actual")}, expected ${sha256("expected")}`,
    });
    const wrongSize = call("Write");
    await exchange(wrongSize.call, { action: WriteAction.STAT, ref: "s", total: 100 });
    await exchange(wrongSize.call, { action: WriteAction.WRITE, offset: 0, data: "short" });
    wrongSize.call.push(writeRequest({ action: WriteAction.COMMIT, offset: 5 }));
    await expect(wrongSize.done).rejects.toMatchObject({ code: GrpcCode.FAILED_PRECONDITION, message: "unexpected commit size 5, expected 100" });
  });

  it("resumes an interrupted ingest in a later Write, and reports Status until then; Abort drops it", async () => {
    const data = randomBytes(300_000);
    const first = call("Write");
    await exchange(first.call, { action: WriteAction.STAT, ref: "resume", total: data.length, expected: sha256(data) });
    await exchange(first.call, { action: WriteAction.WRITE, offset: 0, data: data.subarray(0, 100_000) });
    first.call.end();
    await first.done;

    const status = call("Status");
    status.call.push(toBinary(StatusRequestSchema, create(StatusRequestSchema, { ref: "resume" })));
    await status.done;
    const s = fromBinary(StatusResponseSchema, status.call.sent[0]!).status!;
    expect([s.offset, s.total, s.expected]).toEqual([100_000n, BigInt(data.length), sha256(data)]);

    const second = call("Write");
    const stat = await exchange(second.call, { action: WriteAction.STAT, ref: "resume", total: data.length, expected: sha256(data) });
    expect(stat.offset).toBe(100_000n);
    await exchange(second.call, { action: WriteAction.WRITE, offset: 100_000, data: data.subarray(100_000) });
    const commit = await exchange(second.call, { action: WriteAction.COMMIT, total: data.length, offset: data.length, expected: sha256(data) });
    expect(commit.digest).toBe(sha256(data));
    await second.done;

    const third = call("Write");
    await exchange(third.call, { action: WriteAction.STAT, ref: "dropme" });
    third.call.end();
    await third.done;
    const abort = call("Abort");
    abort.call.push(toBinary(AbortRequestSchema, create(AbortRequestSchema, { ref: "dropme" })));
    await abort.done;
    expect(abort.call.sent[0]!.length).toBe(0);
    const gone = call("Status");
    gone.call.push(toBinary(StatusRequestSchema, create(StatusRequestSchema, { ref: "dropme" })));
    await expect(gone.done).rejects.toMatchObject({ code: GrpcCode.NOT_FOUND });
  });

  it("refuses writes to a store that is only an import source", async () => {
    const { call: c, done } = call("Write", join(work, "import-only"));
    c.push(writeRequest({ action: WriteAction.STAT, ref: "x" }));
    await expect(done).rejects.toMatchObject({ code: GrpcCode.PERMISSION_DENIED });
  });
});

describe("Content service: Info and Read", () => {
  it("serves blobs of the cache dir with offsets, ≤1 MiB chunks, and OUT_OF_RANGE past the end", async () => {
    const data = randomBytes(2 * READ_CHUNK_BYTES + 12_345);
    const digest = sha256(data);
    await mkdir(join(cacheDir, "blobs", "sha256"), { recursive: true });
    await writeFile(join(cacheDir, "blobs", "sha256", digest.slice(7)), data);

    const info = call("Info");
    info.call.push(toBinary(InfoRequestSchema, create(InfoRequestSchema, { digest })));
    await info.done;
    expect(fromBinary(InfoResponseSchema, info.call.sent[0]!).info!.size).toBe(BigInt(data.length));

    const whole = await readAll(digest, 100);
    expect(whole.map((r) => r.offset)).toEqual([100n, BigInt(100 + READ_CHUNK_BYTES), BigInt(100 + 2 * READ_CHUNK_BYTES)]);
    expect(whole.every((r) => r.data.length <= READ_CHUNK_BYTES)).toBe(true);
    expect(Buffer.concat(whole.map((r) => r.data)).equals(data.subarray(100))).toBe(true);

    const slice = await readAll(digest, 10, 20);
    expect(Buffer.concat(slice.map((r) => r.data)).equals(data.subarray(10, 30))).toBe(true);
    const pastEnd = await readAll(digest, data.length - 5, 100);
    expect(Buffer.concat(pastEnd.map((r) => r.data)).equals(data.subarray(data.length - 5))).toBe(true);

    await expect(readAll(digest, data.length + 1)).rejects.toMatchObject({ code: GrpcCode.OUT_OF_RANGE });
    await expect(readAll(sha256("absent"))).rejects.toMatchObject({ code: GrpcCode.NOT_FOUND });
    await expect(readAll("sha256:nothex")).rejects.toMatchObject({ code: GrpcCode.INVALID_ARGUMENT });
  });
});

describe("LocalCacheSession: export and import through the shared store", () => {
  async function exportCache(tag: string) {
    const layer = "layer bytes";
    const config = JSON.stringify({ layers: [{ blob: sha256(layer) }] });
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.buildkit.cacheconfig.v0", digest: sha256(config), size: config.length },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: sha256(layer), size: layer.length }],
    });
    for (const blob of [layer, config, manifest]) {
      const { call: c, done } = call("Write");
      c.push(writeRequest({ action: WriteAction.STAT, ref: `ref-${sha256(blob)}`, total: blob.length, expected: sha256(blob) }));
      const before = c.sent.length;
      await Promise.race([c.waitForSent(() => true, before), done.catch(() => undefined)]);
      if (c.sent.length === before) {
        await expect(done).rejects.toMatchObject({ code: GrpcCode.ALREADY_EXISTS });
        continue;
      }
      await exchange(c, { action: WriteAction.WRITE, offset: 0, data: blob });
      await exchange(c, { action: WriteAction.COMMIT, total: blob.length, offset: blob.length, expected: sha256(blob) });
      await done;
    }
    const descriptor = { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: sha256(manifest), size: manifest.length };
    return { descriptor, outcomes: await session.finishCacheExports({ "cache.manifest": JSON.stringify(descriptor) }) };
  }

  it("publishes blobs and the tag only in finishCacheExports, then resolves it for an import", async () => {
    const { descriptor, outcomes } = await exportCache("main");
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]!.result.published).toEqual(["main"]);
    expect(outcomes[0]!.result.blobsAdded).toBe(3);
    expect(await stagingDirs()).toEqual([]);
    const index = JSON.parse(await readFile(join(cacheDir, "index.json"), "utf8"));
    expect(index.manifests[0].digest).toBe(descriptor.digest);
    expect(index.manifests[0].annotations["org.opencontainers.image.ref.name"]).toBe("main");
    expect(await resolveCacheImport(cacheDir, "main")).toBe(descriptor.digest);
    expect(await resolveCacheImport(cacheDir, "other")).toBeUndefined();
    expect(await resolveCacheImport(join(work, "nowhere"))).toBeUndefined();

    // A second session writes nothing (every blob exists → ALREADY_EXISTS) and still publishes its tag.
    await session.discard();
    session = new LocalCacheSession({ imports: [], exports: [{ dest: cacheDir, tag: "second" }] });
    const again = await exportCache("second");
    expect(again.outcomes[0]!.result.published).toEqual(["second"]);
    expect(again.outcomes[0]!.result.blobsAdded).toBe(0);
    expect(await resolveCacheImport(cacheDir, "second")).toBe(descriptor.digest);
  });

  it("discards staging when the response has no cache manifest, leaving the cache dir untouched", async () => {
    await writeBlob("orphan");
    expect(await stagingDirs()).toHaveLength(1);
    await expect(session.finishCacheExports({})).rejects.toThrow(/no cache.manifest/);
    expect(await stagingDirs()).toEqual([]);
    await expect(readFile(join(cacheDir, "index.json"))).rejects.toThrow(/ENOENT/);
  });
});
