// Around the real compose: writes the override into a fresh private directory before compose starts and removes
// it when compose has exited (whatever the exit: success, failure, a signal forwarded by the executor, or compose
// being killed); prepares one staging dir per exporting service and merges each into the shared cache as soon as
// its export is complete — while `up` keeps running in the foreground — and the rest when compose exits.
import { existsSync, readdirSync, rmSync, statSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { mkdirShared } from "../cache/shared-fs.ts";
import { openCacheDir, readIndex, type Staging } from "../cache/store.ts";
import type { ChildResult, Effect } from "../shim/plan.ts";
import type { StagedExport } from "./cache-plan.ts";

/** Override dirs are `<parent>/compose-<pid>-<random>`; the pid lets a later run remove those of killed shims. */
export const OVERRIDE_DIR_PREFIX = "compose-";
export const OVERRIDE_FILE_NAME = "shim.override.yaml";
/** A dir whose shim is gone and which is this old was left by a SIGKILL; it is removed by the next override. */
const ORPHAN_AGE_MS = 60 * 60_000;
const POLL_MS = 250;

function say(line: string): void {
  process.stderr.write(`shim: ${line}\n`);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Removes override dirs left behind by shims that were killed outright (SIGKILL). Best effort. */
export function removeOrphans(parent: string, now = Date.now()): void {
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^compose-(\d+)-/.exec(name);
    if (!m || pidAlive(Number(m[1]))) continue;
    try {
      if (now - statSync(join(parent, name)).mtimeMs > ORPHAN_AGE_MS) rmSync(join(parent, name), { recursive: true, force: true });
    } catch {
      // raced with another cleanup
    }
  }
}

/**
 * A staging dir holds a finished export once BuildKit wrote its `index.json` (the last thing its local exporter
 * writes, under `index.json.lock`, which it removes afterwards) and that index names a manifest.
 */
export async function exportComplete(stagingDir: string): Promise<boolean> {
  const lock = join(stagingDir, "index.json.lock");
  if (existsSync(lock)) return false;
  const read = await readIndex(stagingDir);
  if (read.state !== "ok" || read.index.manifests.length === 0) return false;
  return !existsSync(lock);
}

export interface ComposeEffectOptions {
  /** The override file (inside a directory this effect creates, 0700). */
  readonly file?: string;
  /** Renders the override; gets the services whose staging dir could not be prepared (their cache_to is left out). */
  readonly render?: (withoutExport: ReadonlySet<string>) => string;
  readonly exports: readonly StagedExport[];
  /**
   * Key dirs imported from without exporting. Created shared (0777) beforehand when missing — buildx would create
   * an empty one with its own uid and umask, which other sessions' uids could not export into — and recorded as
   * used afterwards when they hold a cache.
   */
  readonly importOnly: readonly string[];
  readonly debug: boolean;
}

export function composeEffect(opts: ComposeEffectOptions): Effect {
  const dir = opts.file ? dirname(opts.file) : undefined;
  const stagings = new Map<string, { exp: StagedExport; staging: Staging }>();
  let timer: ReturnType<typeof setInterval> | undefined;
  let poll: Promise<void> | undefined;

  const merge = async (service: string): Promise<void> => {
    const entry = stagings.get(service);
    if (!entry) return;
    stagings.delete(service);
    try {
      const outcome = await entry.staging.commit();
      for (const note of outcome.notes) say(`build cache: ${note}`);
      for (const { tag, missing } of outcome.skipped) say(`build cache not saved for ${service} (tag ${tag}): ${missing.length} blob(s) missing, e.g. ${missing[0]}`);
      if (opts.debug) say(`debug: build cache of ${service} merged into ${entry.exp.keyDir}: ${outcome.blobsAdded} new blob(s)`);
    } catch (err) {
      say(`build cache not saved for ${service}: ${(err as Error).message}`);
    }
  };

  const mergeFinished = async (): Promise<void> => {
    for (const [service, { exp }] of [...stagings]) {
      if (await exportComplete(exp.stagingDir)) await merge(service);
    }
  };

  return {
    describe: `compose override ${opts.file ?? "(none)"}, ${opts.exports.length} cache export(s)`,
    async before() {
      for (const keyDir of opts.importOnly) await mkdirShared(keyDir).catch(() => undefined);
      const failed = new Set<string>();
      for (const exp of opts.exports) {
        try {
          const staging = await openCacheDir(exp.keyDir).beginExport({ id: exp.stagingId });
          stagings.set(exp.service, { exp, staging });
        } catch (err) {
          failed.add(exp.service);
          say(`build cache not saved for ${exp.service}: cannot prepare ${exp.stagingDir}: ${(err as Error).message}`);
        }
      }
      if (opts.file && dir && opts.render) {
        const parent = dirname(dir);
        await mkdir(parent, { recursive: true, mode: 0o700 });
        removeOrphans(parent);
        await mkdir(dir, { mode: 0o700 });
        await writeFile(opts.file, opts.render(failed), { mode: 0o600, flag: "wx" });
      }
      if (stagings.size > 0) {
        timer = setInterval(() => {
          poll ??= mergeFinished().finally(() => {
            poll = undefined;
          });
        }, POLL_MS);
        timer.unref();
      }
    },
    async after(_result: ChildResult) {
      if (timer) clearInterval(timer);
      await poll;
      // A complete export is valid whatever compose's exit status (`up` may fail or be stopped after building).
      await mergeFinished();
      for (const { staging } of stagings.values()) await staging.discard().catch(() => undefined);
      stagings.clear();
      for (const keyDir of opts.importOnly) {
        if (existsSync(join(keyDir, "index.json"))) await openCacheDir(keyDir).recordUse().catch(() => undefined);
      }
      if (dir) await rm(dir, { recursive: true, force: true });
    },
    abort() {
      if (timer) clearInterval(timer);
      for (const { exp } of stagings.values()) rmSync(exp.stagingDir, { recursive: true, force: true });
      stagings.clear();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
