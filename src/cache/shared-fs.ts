// File-system helpers for the shared cache: every directory and file the shim creates there must be usable by
// any uid of the dev containers, whatever the umask (the reference implementation lost its cache to 0755
// root-owned directories), and every file a reader can see must be complete (write aside, then rename).
import { chmod, mkdir, open, rename, rm, rmdir, stat } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { dirname, join } from "node:path";

export const SHARED_DIR_MODE = 0o777;
export const SHARED_FILE_MODE = 0o666;

/** A short random token for private file and directory names. */
export function uniqueSuffix(): string {
  return `${process.pid}-${randomBytes(6).toString("hex")}`;
}

export function errorCode(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err ? String((err as { code: unknown }).code) : undefined;
}

/**
 * Creates `dir` (and missing parents up to an existing ancestor) as 0777, independent of the umask.
 * An existing directory is left as it is unless we can chmod it (we own it): a directory created by an older
 * tool with 0755 is repaired when possible, and otherwise left for `diagnoseCache` to report.
 */
export async function mkdirShared(dir: string): Promise<void> {
  try {
    await mkdir(dir, { mode: SHARED_DIR_MODE });
  } catch (err) {
    const code = errorCode(err);
    if (code === "EEXIST") return;
    if (code !== "ENOENT") throw err;
    await mkdirShared(dirname(dir));
    try {
      await mkdir(dir, { mode: SHARED_DIR_MODE });
    } catch (again) {
      if (errorCode(again) === "EEXIST") return;
      throw again;
    }
  }
  await chmodQuietly(dir, SHARED_DIR_MODE);
}

/** chmod that ignores EPERM (a file another uid owns) and ENOENT (raced with a cleanup). */
export async function chmodQuietly(path: string, mode: number): Promise<void> {
  try {
    await chmod(path, mode);
  } catch (err) {
    const code = errorCode(err);
    if (code !== "EPERM" && code !== "ENOENT") throw err;
  }
}

/**
 * Writes `data` to `path` atomically: a private temp file in the same directory, given `mode` (0666 by default,
 * for the shared cache), flushed, then renamed over `path`. A reader sees the old file or the new one, never a
 * partial one.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = SHARED_FILE_MODE): Promise<void> {
  const tmp = join(dirname(path), `.${tmpPrefixFor(path)}${uniqueSuffix()}.tmp`);
  try {
    const handle = await open(tmp, "wx", mode);
    try {
      await handle.writeFile(data);
      await handle.chmod(mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Temp files of `writeFileAtomic(path)` start with this (so stale ones from a killed process can be found). */
export function tmpPrefixFor(path: string): string {
  const name = path.slice(path.lastIndexOf("/") + 1);
  return `${name}.`;
}

export interface DirLockOptions {
  /** How long to wait for another holder before giving up. */
  timeoutMs: number;
  /** A lock held longer than this is presumed left by a killed process and broken. */
  staleMs: number;
}

/**
 * Runs `fn` holding a lock that WAITS (bounded): the lock is a directory, created atomically by mkdir, so it works
 * across processes, containers and uids sharing a file system. A stale lock is renamed aside first, so only one
 * waiter breaks it; the others see ENOENT and retry.
 */
export async function withDirLock<T>(lock: string, options: DirLockOptions, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      await mkdir(lock);
      break;
    } catch (err) {
      if (errorCode(err) !== "EEXIST") throw err;
    }
    let heldSince: number | undefined;
    try {
      heldSince = (await stat(lock)).mtimeMs;
    } catch {
      continue; // released meanwhile
    }
    if (Date.now() - heldSince > options.staleMs) {
      const aside = `${lock}.stale-${uniqueSuffix()}`;
      try {
        await rename(lock, aside);
        await rm(aside, { recursive: true, force: true });
      } catch (err) {
        if (errorCode(err) !== "ENOENT") throw err;
      }
      continue;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${Math.round(options.timeoutMs / 1000)}s waiting for ${lock}`);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(200, 5 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random())));
  }
  try {
    return await fn();
  } finally {
    await rmdir(lock).catch(() => undefined);
  }
}
