// Streams the entries of a local directory in the order fsutil's receiver validates: depth-first pre-order,
// names sorted by UTF-8 bytes within each directory, the root itself left out. Only one directory listing per
// level is held at a time, so memory stays bounded however large the tree is, and the first entry is produced
// before the rest of the tree has been looked at.

import { lstat, readdir, readlink } from "node:fs/promises";
import type { BigIntStats, Dirent } from "node:fs";
import { join } from "node:path";
import { goModeFromUnix, GoMode } from "./filemode.ts";
import { compareUtf8 } from "./paths.ts";
import type { DirFilterState, PathFilter } from "./filter.ts";
import type { TreeReader } from "./followpaths.ts";

/** The fields of fsutil's Stat that the sender fills (uid/gid are always 0, xattrs are not read). */
export interface FileStat {
  /** '/'-separated, relative to the root, clean. */
  path: string;
  /** Go os.FileMode bits. */
  mode: number;
  /** File size; the target length for symlinks; 0 for directories and hardlinks. */
  size: bigint;
  /** Unix time in nanoseconds. */
  modTime: bigint;
  /** Symlink target, or for a regular file an earlier path it is hard-linked to. */
  linkname: string;
  devmajor: bigint;
  devminor: bigint;
}

export interface WalkEntry {
  readonly stat: FileStat;
  /** Absolute path on disk, for reading a regular file's contents. */
  readonly absPath: string;
}

export class WalkError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "WalkError";
  }
}

interface DirFrame {
  readonly rel: string;
  readonly abs: string;
  readonly state: DirFilterState | undefined;
  /** Whether this directory's own entry has been produced (an excluded directory is produced lazily). */
  listed: boolean;
  readonly entries: Dirent[];
  next: number;
  /** lstat calls issued ahead for upcoming entries, by index. */
  readonly ahead: Map<number, Promise<BigIntStats | undefined>>;
}

// How many lstat calls run at once inside one directory; they are issued ahead and consumed in order.
const STAT_AHEAD = 16;

/** Walks `root` (an existing directory), producing the entries `filter` lets through. */
export async function* walkTree(root: string, filter: PathFilter, signal?: AbortSignal): AsyncGenerator<WalkEntry> {
  const hardlinks = new Map<string, string>(); // "dev:ino" → first path listed with that inode
  const rootEntries = await listDir(root, "", false);
  const stack: DirFrame[] = [newFrame("", root, undefined, true, rootEntries)];

  while (stack.length > 0) {
    signal?.throwIfAborted();
    const frame = stack[stack.length - 1]!;
    if (frame.next >= frame.entries.length) {
      stack.pop();
      continue;
    }
    const index = frame.next++;
    const dirent = frame.entries[index]!;
    const rel = frame.rel === "" ? dirent.name : `${frame.rel}/${dirent.name}`;
    const abs = join(frame.abs, dirent.name);
    const isDir = dirent.isDirectory();
    const { action, state } = filter.visit(rel, isDir, frame.state);
    if (action === "skip" || (action === "exclude" && !isDir)) {
      frame.ahead.delete(index);
      continue;
    }

    if (action === "exclude") {
      // Walk into it: an exception may include something inside, and then this directory gets listed too.
      const entries = await listDir(abs, rel, true);
      if (entries.length > 0) stack.push(newFrame(rel, abs, state, false, entries));
      continue;
    }

    for (let i = index; i < Math.min(frame.entries.length, index + STAT_AHEAD); i++) {
      if (frame.ahead.has(i)) continue;
      const pending = lstatIfPresent(join(frame.abs, frame.entries[i]!.name));
      pending.catch(() => {}); // reported when (and if) the entry is reached
      frame.ahead.set(i, pending);
    }
    const st = await frame.ahead.get(index)!;
    frame.ahead.delete(index);
    if (st === undefined) {
      if (dirent.name.includes("\uFFFD")) {
        throw new WalkError(`cannot send ${JSON.stringify(rel)}: the file name is not valid UTF-8`);
      }
      continue; // removed while walking
    }
    if ((Number(st.mode) & 0o170000) === 0o140000) continue; // sockets cannot be transferred

    // An entry inside directories that were excluded: list those directories first.
    for (const parent of stack) {
      if (parent.listed) continue;
      const parentStat = await lstatIfPresent(parent.abs);
      if (parentStat === undefined) throw new WalkError(`${parent.rel}: removed while sending`);
      yield { stat: toFileStat(parent.rel, parentStat, "", hardlinks), absPath: parent.abs };
      parent.listed = true;
    }

    const linkname = (Number(st.mode) & 0o170000) === 0o120000 ? await readlinkOrFail(abs, rel) : "";
    yield { stat: toFileStat(rel, st, linkname, hardlinks), absPath: abs };

    if (isDir) {
      const entries = await listDir(abs, rel, false);
      if (entries.length > 0) stack.push(newFrame(rel, abs, state, true, entries));
    }
  }
}

function newFrame(rel: string, abs: string, state: DirFilterState | undefined, listed: boolean, entries: Dirent[]): DirFrame {
  return { rel, abs, state, listed, entries, next: 0, ahead: new Map() };
}

/** Entries of a directory sorted by UTF-8 bytes. A directory that vanished is empty. */
async function listDir(abs: string, rel: string, excluded: boolean): Promise<Dirent[]> {
  try {
    const entries = await readdir(abs, { withFileTypes: true });
    return entries.sort((a, b) => compareUtf8(a.name, b.name));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return [];
    // An unreadable directory that is excluded anyway does not matter (fsutil ignores it too).
    if (excluded && code === "EACCES") return [];
    throw new WalkError(`cannot read directory ${JSON.stringify(rel || ".")}: ${(err as Error).message}`, { cause: err });
  }
}

async function lstatIfPresent(abs: string): Promise<BigIntStats | undefined> {
  try {
    return await lstat(abs, { bigint: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw new WalkError(`cannot stat ${abs}: ${(err as Error).message}`, { cause: err });
  }
}

async function readlinkOrFail(abs: string, rel: string): Promise<string> {
  try {
    return await readlink(abs);
  } catch (err) {
    throw new WalkError(`cannot read symlink ${JSON.stringify(rel)}: ${(err as Error).message}`, { cause: err });
  }
}

function toFileStat(path: string, st: BigIntStats, linkname: string, hardlinks: Map<string, string>): FileStat {
  const mode = goModeFromUnix(Number(st.mode));
  const isDir = (mode & GoMode.Dir) !== 0;
  const stat: FileStat = {
    path,
    mode,
    size: isDir ? 0n : st.size,
    modTime: st.mtimeNs,
    linkname,
    devmajor: 0n,
    devminor: 0n,
  };
  if (mode & GoMode.Device) {
    // fsutil's (pre-glibc 2.x) major/minor split of st_rdev.
    stat.devmajor = (st.rdev >> 8n) & 0xfffn;
    stat.devminor = (st.rdev & 0xffn) | ((st.rdev >> 12n) & 0xfff00n);
  }
  const regular = (Number(st.mode) & 0o170000) === 0o100000;
  if (regular && st.nlink > 1n) {
    const key = `${st.dev}:${st.ino}`;
    const first = hardlinks.get(key);
    if (first !== undefined) {
      stat.linkname = first;
      stat.size = 0n;
    } else {
      hardlinks.set(key, path);
    }
  }
  return stat;
}

/** TreeReader over a local directory, for resolving followpaths. */
export function localTreeReader(root: string): TreeReader {
  return {
    async lstat(path) {
      const abs = join(root, path);
      const st = await lstatIfPresent(abs);
      if (st === undefined) return undefined;
      const symlink = (Number(st.mode) & 0o170000) === 0o120000;
      return { symlink, linkname: symlink ? await readlink(abs) : "" };
    },
    async readdir(path) {
      try {
        return await readdir(join(root, path));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "ENOENT" || code === "ENOTDIR") return undefined;
        throw err;
      }
    },
  };
}
