// `type=local` cache import/export for one solve, on top of the shared cache store (src/cache/store.ts).
//
// Before Solve (the solve orchestration):
//   - for each import: `resolveCacheImport(src, tag)` → the manifest digest to put in the import's `digest`
//     attribute (undefined: nothing cached under that tag — leave the import out and say so);
//   - `new LocalCacheSession({ imports, exports })`, and offer `session.attachable()` in the BuildKit session.
//     The store ids are `local:<dir>` with the exact `src`/`dest` strings sent in the cache attributes.
// After Solve:
//   - success: `session.finishCacheExports(response.exporterResponse)` publishes each export: blobs the daemon
//     wrote into the private staging dir move into the cache dir and `index.json` names the manifest from
//     `cache.manifest` under the export's tag (default `latest`);
//   - failure or interruption: `session.discard()` removes every staging dir; the cache dirs are untouched.
// The daemon never writes into a cache directory directly; a directory used both as import source and
// export destination is one store that reads from the directory and writes to staging.

import { openCacheDir, type CacheDir, type CommitResult, type Descriptor } from "../../cache/store.ts";
import type { Attachable } from "../session/attachable.ts";
import { LocalContentStore } from "./local-store.ts";
import { contentAttachable } from "./service.ts";

export const DEFAULT_CACHE_TAG = "latest";
export const CACHE_MANIFEST_KEY = "cache.manifest";

export interface LocalCacheExport {
  /** The `dest` attribute, verbatim. */
  readonly dest: string;
  /** The client-side `tag` attribute (default `latest`). */
  readonly tag?: string;
}

export interface LocalCacheSessionSpec {
  /** `src` attributes of the `type=local` cache imports, verbatim. */
  readonly imports: readonly string[];
  readonly exports: readonly LocalCacheExport[];
}

export type CacheDirOpener = (dir: string) => CacheDir;

export interface CacheExportOutcome {
  readonly dest: string;
  readonly tag: string;
  readonly result: CommitResult;
}

/** The content store id BuildKit uses for a local cache directory. */
export function cacheStoreId(dir: string): string {
  return `local:${dir}`;
}

/**
 * The manifest digest `tag` names in the cache directory `src`, for the import's `digest` attribute;
 * undefined when the directory, its index, the tag or the manifest blob is missing.
 */
export async function resolveCacheImport(
  src: string,
  tag: string = DEFAULT_CACHE_TAG,
  open: CacheDirOpener = openCacheDir,
): Promise<string | undefined> {
  return (await open(src).resolveTag(tag))?.digest;
}

export class LocalCacheSession {
  private readonly stores = new Map<string, LocalContentStore>();
  private readonly exportTags = new Map<string, string>(); // store id → tag

  constructor(spec: LocalCacheSessionSpec, open: CacheDirOpener = openCacheDir) {
    for (const { dest, tag } of spec.exports) {
      const id = cacheStoreId(dest);
      this.stores.set(id, new LocalContentStore(id, open(dest), true));
      this.exportTags.set(id, tag ?? DEFAULT_CACHE_TAG);
    }
    for (const src of spec.imports) {
      const id = cacheStoreId(src);
      if (!this.stores.has(id)) this.stores.set(id, new LocalContentStore(id, open(src), false));
    }
  }

  /** The Content service serving these stores; add it to the session's attachables. */
  attachable(): Attachable {
    return contentAttachable(this.stores);
  }

  /**
   * Publishes every export after a successful Solve, from its ExporterResponse. Each export destination gets
   * the blobs written this session and an index entry for its tag; a destination the daemon wrote nothing to
   * (every blob already cached) still gets the tag. Throws when the response has no usable `cache.manifest`
   * (staging is discarded then); per-destination outcomes say what was published or skipped.
   */
  async finishCacheExports(exporterResponse: Readonly<Record<string, string>>): Promise<CacheExportOutcome[]> {
    const exports = [...this.exportTags];
    if (exports.length === 0) return [];
    let descriptor: Descriptor;
    try {
      descriptor = parseCacheManifest(exporterResponse[CACHE_MANIFEST_KEY]);
    } catch (err) {
      await this.discard();
      throw err;
    }
    const outcomes: CacheExportOutcome[] = [];
    let failure: unknown;
    for (const [id, tag] of exports) {
      const store = this.stores.get(id)!;
      try {
        const staging = await store.ensureStaging();
        outcomes.push({ dest: id.slice("local:".length), tag, result: await staging.commit([{ tag, descriptor }]) });
      } catch (err) {
        failure ??= err;
      }
    }
    if (failure !== undefined) throw failure;
    return outcomes;
  }

  /** Drops everything staged (after a failed or interrupted Solve). Safe to call more than once. */
  async discard(): Promise<void> {
    await Promise.all(
      [...this.stores.values()].map(async (store) => {
        const staging = await store.startedStaging()?.catch(() => undefined); // a staging that failed to start left nothing
        await staging?.discard();
      }),
    );
  }
}

function parseCacheManifest(value: string | undefined): Descriptor {
  if (value === undefined || value === "") {
    throw new Error(`the daemon returned no ${CACHE_MANIFEST_KEY}, so no cache was exported`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new Error(`the daemon returned a malformed ${CACHE_MANIFEST_KEY}: ${value.slice(0, 200)}`);
  }
  const d = parsed as Partial<Descriptor>;
  if (typeof d !== "object" || d === null || typeof d.mediaType !== "string" || typeof d.digest !== "string" || typeof d.size !== "number") {
    throw new Error(`the daemon returned a malformed ${CACHE_MANIFEST_KEY}: ${value.slice(0, 200)}`);
  }
  return { mediaType: d.mediaType, digest: d.digest, size: d.size };
}
