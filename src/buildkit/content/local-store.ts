// One content store offered to the daemon for `type=local` cache import/export, over a shared cache directory
// (src/cache/store.ts). Reads are served from the directory's blobs (and from blobs this session has already
// written). Writes never touch the directory: they go to a private staging directory the store hands out
// (ingest under `<staging>/ingest/`, committed blobs under `<staging>/blobs/<alg>/<hex>`), and only the
// staging's `commit()` publishes them — see cache-session.ts.
//
// The write protocol follows containerd's content service over its local store: a writer per ref (UNAVAILABLE
// while another writer holds it), resumable within the session, offsets checked (OUT_OF_RANGE) and a write at
// offset 0 truncating, size and digest verified on commit (FAILED_PRECONDITION), and ALREADY_EXISTS whenever
// the expected or committed digest is already present.

import { createHash, type Hash } from "node:crypto";
import { constants, createReadStream } from "node:fs";
import { mkdir, open, rename, rm, stat, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { GrpcCode, GrpcError } from "../session/attachable.ts";
import type { CacheDir, Staging } from "../../cache/store.ts";

const DIGEST = /^(sha256|sha384|sha512):([a-f0-9]+)$/;
const HEX_LENGTH: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

export interface BlobInfo {
  readonly digest: string;
  readonly size: number;
  readonly path: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface IngestStatus {
  readonly ref: string;
  readonly offset: number;
  readonly total: number;
  readonly expected: string;
  readonly startedAt: Date;
  readonly updatedAt: Date;
}

/** Parses a digest string; throws INVALID_ARGUMENT for anything that is not `<alg>:<hex>` we support. */
export function parseDigest(digest: string): { algorithm: string; hex: string } {
  const m = DIGEST.exec(digest);
  if (!m || m[2]!.length !== HEX_LENGTH[m[1]!]) throw new GrpcError(GrpcCode.INVALID_ARGUMENT, `invalid digest ${JSON.stringify(digest)}`);
  return { algorithm: m[1]!, hex: m[2]! };
}

interface IngestState {
  readonly ref: string;
  readonly dir: string;
  readonly dataPath: string;
  readonly startedAt: Date;
  updatedAt: Date;
  total: number;
  expected: string;
}

export class LocalContentStore {
  private staging: Promise<Staging> | undefined;
  private readonly ingests = new Map<string, IngestState>();
  private readonly lockedRefs = new Set<string>();

  constructor(
    /** The store id the daemon sends (`local:<dir>`). */
    readonly id: string,
    readonly cacheDir: CacheDir,
    /** Whether the daemon may write (the directory is a cache export destination). */
    readonly writable: boolean,
  ) {}

  /** The staging directory, if any write has started one. */
  startedStaging(): Promise<Staging> | undefined {
    return this.staging;
  }

  /** The staging directory, started now if needed. */
  ensureStaging(): Promise<Staging> {
    this.staging ??= this.cacheDir.beginExport();
    return this.staging;
  }

  /** A committed blob: written by this session (staging) or already in the cache directory. */
  async info(digest: string): Promise<BlobInfo | undefined> {
    const { algorithm, hex } = parseDigest(digest);
    const candidates: string[] = [];
    const staging = this.staging && (await this.staging);
    if (staging) candidates.push(join(staging.dir, "blobs", algorithm, hex));
    candidates.push(this.cacheDir.blobPath(digest));
    for (const path of candidates) {
      try {
        const st = await stat(path);
        if (st.isFile()) return { digest, size: st.size, path, createdAt: st.birthtime, updatedAt: st.mtime };
      } catch {
        // not at this location
      }
    }
    return undefined;
  }

  async status(ref: string): Promise<IngestStatus | undefined> {
    const state = this.ingests.get(ref);
    if (!state) return undefined;
    const size = await stat(state.dataPath).then((st) => st.size, () => 0);
    return this.statusOf(state, size);
  }

  /** Drops an ingest (what containerd's Abort does); NOT_FOUND when there is none. */
  async abort(ref: string): Promise<void> {
    const state = this.ingests.get(ref);
    if (!state) throw new GrpcError(GrpcCode.NOT_FOUND, `ingest ref ${JSON.stringify(ref)}: not found`);
    this.ingests.delete(ref);
    await rm(state.dir, { recursive: true, force: true });
  }

  /** Takes the writer lock for `ref` and opens (or resumes) its ingest. */
  async openWriter(ref: string, total: number, expected: string): Promise<IngestWriter> {
    if (!this.writable) {
      throw new GrpcError(GrpcCode.PERMISSION_DENIED, `store ${this.id} is not a cache export destination`);
    }
    if (this.lockedRefs.has(ref)) throw new GrpcError(GrpcCode.UNAVAILABLE, `ref ${ref} locked`);
    this.lockedRefs.add(ref);
    try {
      const staging = await this.ensureStaging();
      let state = this.ingests.get(ref);
      if (!state) {
        const dir = join(staging.dir, "ingest", createHash("sha256").update(ref).digest("hex"));
        await mkdir(dir, { recursive: true });
        const now = new Date();
        state = { ref, dir, dataPath: join(dir, "data"), startedAt: now, updatedAt: now, total, expected };
        this.ingests.set(ref, state);
      }
      if (total > 0) state.total = total;
      if (expected !== "") state.expected = expected;
      const handle = await open(state.dataPath, constants.O_RDWR | constants.O_CREAT, 0o644);
      const offset = (await handle.stat()).size;
      return new IngestWriter(this, state, handle, offset, () => this.lockedRefs.delete(ref));
    } catch (err) {
      this.lockedRefs.delete(ref);
      throw err;
    }
  }

  /** Moves a verified ingest into the staging blobs. */
  async commitIngest(state: IngestState, digest: string): Promise<void> {
    const { algorithm, hex } = parseDigest(digest);
    const staging = await this.ensureStaging();
    this.ingests.delete(state.ref);
    if (await this.info(digest)) {
      await rm(state.dir, { recursive: true, force: true });
      throw new GrpcError(GrpcCode.ALREADY_EXISTS, `content ${digest}: already exists`);
    }
    const blobDir = join(staging.dir, "blobs", algorithm);
    await mkdir(blobDir, { recursive: true });
    await rename(state.dataPath, join(blobDir, hex));
    await rm(state.dir, { recursive: true, force: true });
  }

  statusOf(state: IngestState, offset: number): IngestStatus {
    return {
      ref: state.ref,
      offset,
      total: state.total,
      expected: state.expected,
      startedAt: state.startedAt,
      updatedAt: state.updatedAt,
    };
  }
}

/** An open ingest for one ref, held by one Write call. */
class IngestWriter {
  private hash: Hash | undefined;
  private hashAlgorithm = "sha256";
  private closed = false;

  constructor(
    private readonly store: LocalContentStore,
    private readonly state: IngestState,
    private readonly handle: FileHandle,
    private currentOffset: number,
    private readonly unlock: () => void,
  ) {
    // A fresh ingest is hashed as it is written; a resumed one is hashed from disk when first needed.
    if (currentOffset === 0) this.hash = createHash("sha256");
  }

  get offset(): number {
    return this.currentOffset;
  }

  get total(): number {
    return this.state.total;
  }

  get expected(): string {
    return this.state.expected;
  }

  status(): IngestStatus {
    return { ...this.store.statusOf(this.state, this.currentOffset) };
  }

  /** Records what the daemon says about the blob (a later total or expected digest replaces the earlier one). */
  expect(total: number, expected: string): void {
    if (total > 0) this.state.total = total;
    if (expected !== "") {
      parseDigest(expected);
      this.state.expected = expected;
    }
  }

  /** Empties the ingest (a write at offset 0 after data restarts the blob). */
  async truncate(): Promise<void> {
    await this.handle.truncate(0);
    this.currentOffset = 0;
    this.hash = createHash(this.algorithm());
    this.touch();
  }

  async write(data: Uint8Array): Promise<void> {
    let written = 0;
    while (written < data.length) {
      const { bytesWritten } = await this.handle.write(data, written, data.length - written, this.currentOffset + written);
      written += bytesWritten;
    }
    this.hash?.update(data);
    this.currentOffset += data.length;
    this.touch();
  }

  /** Digest of the bytes written so far. */
  async digest(): Promise<string> {
    const hash = await this.currentHash();
    return `${this.algorithm()}:${hash.copy().digest("hex")}`;
  }

  /** Verifies size and digest and moves the blob into staging; returns its digest. */
  async commit(): Promise<string> {
    const { total, expected } = this.state;
    if (total > 0 && total !== this.currentOffset) {
      throw new GrpcError(GrpcCode.FAILED_PRECONDITION, `unexpected commit size ${this.currentOffset}, expected ${total}`);
    }
    const actual = await this.digest();
    if (expected !== "" && actual !== expected) {
      throw new GrpcError(GrpcCode.FAILED_PRECONDITION, `unexpected commit digest ${actual}, expected ${expected}`);
    }
    await this.close();
    await this.store.commitIngest(this.state, actual);
    return actual;
  }

  /** Releases the file and the ref lock; the ingest stays for a later writer unless committed or aborted. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.handle.close();
    } finally {
      this.unlock();
    }
  }

  private algorithm(): string {
    return this.state.expected === "" ? this.hashAlgorithm : parseDigest(this.state.expected).algorithm;
  }

  private async currentHash(): Promise<Hash> {
    const algorithm = this.algorithm();
    if (this.hash && algorithm === this.hashAlgorithm) return this.hash;
    // Resumed ingest, or the expected digest names another algorithm: hash what is on disk once.
    const hash = createHash(algorithm);
    if (this.currentOffset > 0) {
      for await (const chunk of createReadStream(this.state.dataPath, { start: 0, end: this.currentOffset - 1 })) {
        hash.update(chunk as Buffer);
      }
    }
    this.hash = hash;
    this.hashAlgorithm = algorithm;
    return hash;
  }

  private touch(): void {
    this.state.updatedAt = new Date();
  }
}
