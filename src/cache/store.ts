// The shared cache store: OCI-layout directories (`index.json`, `oci-layout`, `blobs/<alg>/<hex>`) that any number
// of concurrent sessions read and write.
//
// Invariants (issue #3 item 6):
//   - A build never writes into a cache directory directly. It exports into a private staging directory inside it
//     (`<dir>/.staging/<id>`, so the same file system), and `commit()` merges: blobs move in by rename (a digest
//     already present is kept), then `index.json` is replaced by rename under a lock that waits (bounded).
//   - Blobs are published before the index names them, an entry is published only when every blob it reaches
//     (manifest → config/layers, recursively) exists with the right size, and the store never deletes a blob.
//     So a reader never sees an index naming a missing blob.
//   - A broken `index.json` left by another tool is kept aside (`index.json.broken-<time>`) and replaced by a valid
//     one; blobs are untouched, so nothing already cached is lost.
//   - Everything created is 0777/0666 regardless of umask; staging left by a killed process is removed by age.
//
// Stock BuildKit's `index.json.lock` is a try-only flock that Node cannot take; our lock is a separate directory
// (`.shim-index.lock`). A stock writer racing with us can at worst lose its own index update (both sides rename or
// rewrite whole files and never delete blobs), never corrupt the store.
import { copyFile, link, readdir, readFile, rename, rm, stat, utimes } from "node:fs/promises";
import { join } from "node:path";
import {
  chmodQuietly,
  errorCode,
  mkdirShared,
  SHARED_FILE_MODE,
  tmpPrefixFor,
  uniqueSuffix,
  withDirLock,
  writeFileAtomic,
} from "./shared-fs.ts";

export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME_ANNOTATION = "io.containerd.image.name";
const OCI_INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json";
const OCI_LAYOUT = `{"imageLayoutVersion":"1.0.0"}`;

/** Media types whose blobs are JSON documents naming further blobs. */
const CONTAINER_MEDIA_TYPES = new Set([
  OCI_INDEX_MEDIA_TYPE,
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v2+json",
]);

export const STAGING_DIR_NAME = ".staging";
export const META_FILE_NAME = ".shim-meta.json";
const LOCK_DIR_NAME = ".shim-index.lock";
const BLOB_TMP_PREFIX = ".blob.";

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  [extra: string]: unknown;
}

export interface TaggedDescriptor {
  tag: string;
  descriptor: Descriptor;
}

export interface CommitResult {
  /** Tags whose entries `index.json` now names. */
  published: string[];
  /** Tags left out because a blob they reach is missing from both the staging dir and the cache dir. */
  skipped: { tag: string; missing: string[] }[];
  /** Blobs that were new to the cache dir. */
  blobsAdded: number;
  /** Human-readable facts worth a debug line (a broken index kept aside, stale entries dropped…). */
  notes: string[];
}

export interface KeyMeta {
  /** Last time a build imported from or exported into this directory (ISO 8601). */
  lastUsed: string;
  /** Last successful commit (ISO 8601), if any. */
  lastExport?: string;
  /** Total bytes of the blobs, as of the last commit. */
  size?: number;
  blobCount?: number;
}

export interface CacheDir {
  readonly dir: string;
  /** The descriptor `index.json` names for `tag`, if its blob exists; undefined for a missing or broken index. */
  resolveTag(tag: string): Promise<Descriptor | undefined>;
  /** `<dir>/blobs/<alg>/<hex>`; throws for anything that is not a well-formed digest (it must not escape `dir`). */
  blobPath(digest: string): string;
  /**
   * Creates a private staging directory inside `dir` (also removes stale staging). Blobs already in `dir` are
   * hard-linked into it, so an exporter that skips existing digests (buildx's local store does) writes only
   * what is new instead of the whole cache again.
   */
  beginExport(options?: BeginExportOptions): Promise<Staging>;
  /** Records that a build used this directory (for a later cleanup command). Best effort. */
  recordUse(): Promise<void>;
  readMeta(): Promise<KeyMeta | undefined>;
}

export interface BeginExportOptions {
  /** The staging dir's name (a planner may have put `<dir>/.staging/<id>` into argv already); random by default. */
  id?: string;
  /** Hard-link the blobs already in `dir` into the staging dir (default true). */
  linkExisting?: boolean;
}

export interface Staging {
  readonly dir: string;
  /**
   * Merges the staging dir into the cache dir and removes it. With no argument the tagged entries come from the
   * staging dir's own `index.json` (what buildx wrote); `[]` merges blobs only.
   */
  commit(tagged?: TaggedDescriptor[]): Promise<CommitResult>;
  /** Removes the staging dir without merging. Safe to call more than once, and after `commit`. */
  discard(): Promise<void>;
}

export interface StoreOptions {
  /** How long `commit` waits for the index lock before giving up. */
  lockTimeoutMs?: number;
  /** A lock held longer than this is presumed left by a killed process and broken. */
  lockStaleMs?: number;
  /** Staging (and temp files) with no activity for this long are presumed left by a killed process. */
  stagingStaleMs?: number;
  /** How often a live staging dir is touched so other processes do not take it for stale. */
  heartbeatMs?: number;
}

// The index lock guards a few milliseconds of work, so a lock older than lockStaleMs was left by a killed process;
// waiters outlast it (lockTimeoutMs > lockStaleMs) and break it rather than give up.
const DEFAULTS: Required<StoreOptions> = {
  lockTimeoutMs: 90_000,
  lockStaleMs: 30_000,
  stagingStaleMs: 15 * 60_000,
  heartbeatMs: 60_000,
};

const DIGEST_PATTERN = /^(sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128})$/;

export function isDigest(value: unknown): value is string {
  return typeof value === "string" && DIGEST_PATTERN.test(value);
}

export function openCacheDir(dir: string, options: StoreOptions = {}): CacheDir {
  return new OciCacheDir(dir, { ...DEFAULTS, ...options });
}

type IndexRead =
  | { state: "missing" }
  | { state: "ok"; index: OciIndex }
  | { state: "broken"; reason: string };

interface OciIndex {
  schemaVersion: number;
  mediaType?: string;
  manifests: Descriptor[];
  [extra: string]: unknown;
}

/** Reads `<dir>/index.json`; never throws for missing or malformed content. */
export async function readIndex(dir: string): Promise<IndexRead> {
  let text: string;
  try {
    text = await readFile(join(dir, "index.json"), "utf8");
  } catch (err) {
    if (errorCode(err) === "ENOENT" || errorCode(err) === "ENOTDIR") return { state: "missing" };
    return { state: "broken", reason: `cannot read index.json: ${(err as Error).message}` };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { state: "broken", reason: "index.json is not valid JSON" };
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return { state: "broken", reason: "index.json is not a JSON object" };
  }
  const record = parsed as Record<string, unknown>;
  const manifests = record.manifests ?? [];
  if (!Array.isArray(manifests)) return { state: "broken", reason: "index.json has no manifests list" };
  return {
    state: "ok",
    index: {
      ...record,
      schemaVersion: typeof record.schemaVersion === "number" ? record.schemaVersion : 2,
      mediaType: typeof record.mediaType === "string" ? record.mediaType : OCI_INDEX_MEDIA_TYPE,
      manifests: manifests.filter(isDescriptor),
    },
  };
}

function isDescriptor(value: unknown): value is Descriptor {
  if (typeof value !== "object" || value === null) return false;
  const d = value as Record<string, unknown>;
  return typeof d.mediaType === "string" && isDigest(d.digest) && typeof d.size === "number";
}

function refName(descriptor: Descriptor): string | undefined {
  return descriptor.annotations?.[REF_NAME_ANNOTATION] ?? descriptor.annotations?.[CONTAINERD_NAME_ANNOTATION];
}

async function mtimeMs(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).mtimeMs;
  } catch {
    return undefined;
  }
}

async function listDir(path: string): Promise<string[]> {
  try {
    return await readdir(path);
  } catch (err) {
    if (errorCode(err) === "ENOENT" || errorCode(err) === "ENOTDIR") return [];
    throw err;
  }
}

class OciCacheDir implements CacheDir {
  constructor(
    readonly dir: string,
    private readonly options: Required<StoreOptions>,
  ) {}

  async resolveTag(tag: string): Promise<Descriptor | undefined> {
    const read = await readIndex(this.dir);
    if (read.state !== "ok") return undefined;
    const entry = [...read.index.manifests].reverse().find((d) => refName(d) === tag);
    if (!entry) return undefined;
    return (await this.blobSize(entry.digest)) === entry.size ? entry : undefined;
  }

  blobPath(digest: string): string {
    if (!isDigest(digest)) throw new Error(`not a valid digest: ${JSON.stringify(digest)}`);
    const colon = digest.indexOf(":");
    return join(this.dir, "blobs", digest.slice(0, colon), digest.slice(colon + 1));
  }

  async beginExport(options: BeginExportOptions = {}): Promise<Staging> {
    const id = options.id ?? uniqueSuffix();
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(id)) throw new Error(`not a valid staging id: ${JSON.stringify(id)}`);
    await this.ensureLayout();
    const stagingRoot = join(this.dir, STAGING_DIR_NAME);
    await mkdirShared(stagingRoot);
    await this.removeStaleLeftovers(stagingRoot);
    const dir = join(stagingRoot, id);
    await mkdirShared(dir);
    // Pre-created 0777 so that a process of another uid can clean them up if this one is killed.
    for (const sub of ["blobs", join("blobs", "sha256"), "ingest"]) await mkdirShared(join(dir, sub));
    const staging = new OciStaging(dir, this, this.options.heartbeatMs);
    if (options.linkExisting ?? true) await this.linkBlobsInto(dir).catch(() => undefined); // an optimisation only
    return staging;
  }

  /** Best effort: a blob we may not link (another uid's file under protected_hardlinks) is simply exported again. */
  private async linkBlobsInto(stagingDir: string): Promise<void> {
    for (const alg of await listDir(join(this.dir, "blobs"))) {
      const names = (await listDir(join(this.dir, "blobs", alg))).filter((n) => isDigest(`${alg}:${n}`));
      if (names.length === 0) continue;
      await mkdirShared(join(stagingDir, "blobs", alg));
      for (const name of names) {
        await link(join(this.dir, "blobs", alg, name), join(stagingDir, "blobs", alg, name)).catch(() => undefined);
      }
    }
  }

  async recordUse(): Promise<void> {
    const meta = (await this.readMeta()) ?? { lastUsed: "" };
    await this.writeMeta({ ...meta, lastUsed: new Date().toISOString() });
  }

  async readMeta(): Promise<KeyMeta | undefined> {
    try {
      const parsed: unknown = JSON.parse(await readFile(join(this.dir, META_FILE_NAME), "utf8"));
      if (typeof parsed === "object" && parsed !== null && typeof (parsed as KeyMeta).lastUsed === "string") {
        return parsed as KeyMeta;
      }
    } catch {
      // Missing or unreadable metadata is only advisory; it is rewritten on the next use.
    }
    return undefined;
  }

  async writeMeta(meta: KeyMeta): Promise<void> {
    await writeFileAtomic(join(this.dir, META_FILE_NAME), `${JSON.stringify(meta, null, 2)}\n`);
  }

  async ensureLayout(): Promise<void> {
    await mkdirShared(this.dir);
    await mkdirShared(join(this.dir, "blobs"));
    await mkdirShared(join(this.dir, "blobs", "sha256"));
    if ((await mtimeMs(join(this.dir, "oci-layout"))) === undefined) {
      await writeFileAtomic(join(this.dir, "oci-layout"), OCI_LAYOUT);
    }
  }

  /** Size of the blob in the cache dir, or undefined when it is absent. */
  async blobSize(digest: string): Promise<number | undefined> {
    try {
      return (await stat(this.blobPath(digest))).size;
    } catch {
      return undefined;
    }
  }

  /**
   * Digests reachable from `descriptor` that are absent from the cache dir (or have the wrong size).
   * Index and manifest blobs are read to follow their children.
   */
  async missingBlobs(descriptor: Descriptor): Promise<string[]> {
    const missing: string[] = [];
    const seen = new Set<string>();
    const visit = async (d: Descriptor): Promise<void> => {
      if (seen.has(d.digest)) return;
      seen.add(d.digest);
      if ((await this.blobSize(d.digest)) !== d.size) {
        missing.push(d.digest);
        return;
      }
      if (!CONTAINER_MEDIA_TYPES.has(d.mediaType)) return;
      let doc: Record<string, unknown>;
      try {
        doc = JSON.parse(await readFile(this.blobPath(d.digest), "utf8")) as Record<string, unknown>;
      } catch {
        missing.push(d.digest); // a manifest we cannot read cannot be imported either
        return;
      }
      const children: unknown[] = [
        ...(Array.isArray(doc.manifests) ? doc.manifests : []),
        ...(doc.config === undefined ? [] : [doc.config]),
        ...(Array.isArray(doc.layers) ? doc.layers : []),
      ];
      for (const child of children) {
        if (isDescriptor(child)) await visit(child);
        else missing.push(`(malformed descriptor in ${d.digest})`);
      }
    };
    await visit(descriptor);
    return missing;
  }

  /** Runs `fn` holding the index lock (waits, bounded; breaks a lock left by a killed process). */
  withIndexLock<T>(fn: () => Promise<T>): Promise<T> {
    const { lockTimeoutMs: timeoutMs, lockStaleMs: staleMs } = this.options;
    return withDirLock(join(this.dir, LOCK_DIR_NAME), { timeoutMs, staleMs }, fn);
  }

  /** Replaces the entries for `entries`' tags; drops entries whose blob is gone. Caller holds the lock. */
  async publish(entries: TaggedDescriptor[], notes: string[]): Promise<void> {
    const read = await readIndex(this.dir);
    let index: OciIndex = { schemaVersion: 2, mediaType: OCI_INDEX_MEDIA_TYPE, manifests: [] };
    if (read.state === "ok") {
      index = read.index;
    } else if (read.state === "broken") {
      const aside = `index.json.broken-${new Date().toISOString().replace(/[:.]/g, "")}-${uniqueSuffix()}`;
      try {
        await rename(join(this.dir, "index.json"), join(this.dir, aside));
        notes.push(`${read.reason}; kept it as ${join(this.dir, aside)} and started a new index`);
      } catch {
        notes.push(`${read.reason}; replaced it with a new index`);
      }
    }
    const tags = new Set(entries.map((e) => e.tag));
    const kept: Descriptor[] = [];
    for (const d of index.manifests) {
      const name = refName(d);
      if (name !== undefined && tags.has(name)) continue;
      if ((await this.blobSize(d.digest)) !== d.size) {
        notes.push(`dropped index entry ${name ?? d.digest}: its blob ${d.digest} is missing`);
        continue;
      }
      kept.push(d);
    }
    for (const { tag, descriptor } of entries) {
      kept.push({ ...descriptor, annotations: { ...descriptor.annotations, [REF_NAME_ANNOTATION]: tag } });
    }
    index.manifests = kept;
    await writeFileAtomic(join(this.dir, "index.json"), `${JSON.stringify(index)}\n`);
  }

  async blobTotals(): Promise<{ size: number; blobCount: number }> {
    let size = 0;
    let blobCount = 0;
    for (const alg of await listDir(join(this.dir, "blobs"))) {
      const algDir = join(this.dir, "blobs", alg);
      for (const name of await listDir(algDir)) {
        if (name.startsWith(".")) continue;
        try {
          size += (await stat(join(algDir, name))).size;
          blobCount++;
        } catch {
          // raced with a removal; not counted
        }
      }
    }
    return { size, blobCount };
  }

  /** Removes staging dirs and temp files that nobody has touched for `stagingStaleMs`. Best effort. */
  private async removeStaleLeftovers(stagingRoot: string): Promise<void> {
    const cutoff = Date.now() - this.options.stagingStaleMs;
    for (const name of await listDir(stagingRoot)) {
      const dir = join(stagingRoot, name);
      if ((await lastActivity(dir)) < cutoff) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
    const tmpPrefixes = ["index.json", META_FILE_NAME, "oci-layout"].map((f) => `.${tmpPrefixFor(f)}`);
    const candidates = (await listDir(this.dir))
      .filter((n) => tmpPrefixes.some((p) => n.startsWith(p)) && n.endsWith(".tmp"))
      .map((n) => join(this.dir, n));
    for (const alg of await listDir(join(this.dir, "blobs"))) {
      const algDir = join(this.dir, "blobs", alg);
      for (const n of await listDir(algDir)) if (n.startsWith(BLOB_TMP_PREFIX)) candidates.push(join(algDir, n));
    }
    for (const path of candidates) {
      const mtime = await mtimeMs(path);
      if (mtime !== undefined && mtime < cutoff) await rm(path, { force: true }).catch(() => undefined);
    }
  }
}

/** The newest mtime of a staging dir and the directories an exporter writes into. */
async function lastActivity(stagingDir: string): Promise<number> {
  const times = await Promise.all(
    [stagingDir, join(stagingDir, "ingest"), join(stagingDir, "blobs", "sha256")].map(mtimeMs),
  );
  return Math.max(0, ...times.filter((t): t is number => t !== undefined));
}

class OciStaging implements Staging {
  private finished = false;
  private readonly heartbeat: ReturnType<typeof setInterval>;

  constructor(
    readonly dir: string,
    private readonly target: OciCacheDir,
    heartbeatMs: number,
  ) {
    this.heartbeat = setInterval(() => {
      const now = new Date();
      utimes(this.dir, now, now).catch(() => undefined);
    }, heartbeatMs);
    this.heartbeat.unref();
  }

  async commit(tagged?: TaggedDescriptor[]): Promise<CommitResult> {
    if (this.finished) throw new Error(`staging ${this.dir} was already committed or discarded`);
    const result: CommitResult = { published: [], skipped: [], blobsAdded: 0, notes: [] };
    try {
      const entries = tagged ?? (await this.taggedEntriesFromOwnIndex(result.notes));
      await this.target.ensureLayout();
      result.blobsAdded = await this.moveBlobsIn();
      const complete: TaggedDescriptor[] = [];
      for (const entry of entries) {
        const missing = await this.target.missingBlobs(entry.descriptor);
        if (missing.length === 0) complete.push(entry);
        else result.skipped.push({ tag: entry.tag, missing });
      }
      const now = new Date().toISOString();
      if (complete.length > 0) {
        await this.target.withIndexLock(() => this.target.publish(complete, result.notes));
      }
      result.published = complete.map((e) => e.tag);
      const totals = await this.target.blobTotals();
      const previous = await this.target.readMeta();
      await this.target.writeMeta({
        ...previous,
        lastUsed: now,
        ...(complete.length > 0 ? { lastExport: now } : {}),
        ...totals,
      });
      return result;
    } finally {
      await this.discard();
    }
  }

  async discard(): Promise<void> {
    this.finished = true;
    clearInterval(this.heartbeat);
    await rm(this.dir, { recursive: true, force: true });
  }

  private async taggedEntriesFromOwnIndex(notes: string[]): Promise<TaggedDescriptor[]> {
    const read = await readIndex(this.dir);
    if (read.state === "broken") notes.push(`staging ${read.reason}; nothing to publish`);
    if (read.state !== "ok") return [];
    const byTag = new Map<string, Descriptor>();
    for (const d of read.index.manifests) {
      const tag = d.annotations?.[REF_NAME_ANNOTATION];
      if (tag !== undefined) byTag.set(tag, d);
    }
    return [...byTag].map(([tag, descriptor]) => ({ tag, descriptor }));
  }

  /** Moves every complete blob of the staging dir into the cache dir; returns how many were new there. */
  private async moveBlobsIn(): Promise<number> {
    let added = 0;
    for (const alg of await listDir(join(this.dir, "blobs"))) {
      const from = join(this.dir, "blobs", alg);
      for (const hex of await listDir(from)) {
        const digest = `${alg}:${hex}`;
        if (!isDigest(digest)) continue;
        const source = join(from, hex);
        const sourceSize = (await stat(source)).size;
        if ((await this.target.blobSize(digest)) === sourceSize) continue; // existing digests are kept
        const destination = this.target.blobPath(digest);
        await mkdirShared(join(this.target.dir, "blobs", alg));
        await chmodQuietly(source, SHARED_FILE_MODE);
        try {
          await rename(source, destination);
        } catch (err) {
          if (errorCode(err) !== "EXDEV") throw err;
          // A staging dir on another file system (a mount inside the cache dir): copy aside, then rename.
          const tmp = join(this.target.dir, "blobs", alg, `${BLOB_TMP_PREFIX}${uniqueSuffix()}.tmp`);
          try {
            await copyFile(source, tmp);
            await chmodQuietly(tmp, SHARED_FILE_MODE);
            await rename(tmp, destination);
          } finally {
            await rm(tmp, { force: true });
          }
        }
        added++;
      }
    }
    return added;
  }
}
