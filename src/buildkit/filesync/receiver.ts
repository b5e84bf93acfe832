// The fsutil RECEIVER used by the `local` exporter: the daemon sends the result filesystem over
// FileSend.DiffCopy as fsutil packets and we write it into a directory.
//
// Semantics (decided to stay compatible with buildx while never leaving a half-written export):
// - Everything is first received into a private staging directory on the destination's file system
//   (`<dest>/.shim-export-<random>` when dest exists, `<parent>/.<name>.shim-export-<random>` when it does not).
// - Only after the whole tree has arrived (listing ended, every file complete, FIN exchanged) is it placed:
//   a new destination is renamed into place in one step; an existing one is MERGED like buildx does
//   (fsutil Receive with Merge): entries of the export replace same-named entries (an entry of another type —
//   file vs directory — is removed first), and entries that are not in the export are kept. Replacing the whole
//   directory instead would delete the user's files for `--output type=local,dest=.`.
// - A failed or cancelled export removes the staging directory and leaves the destination untouched. The merge
//   step itself is a series of atomic renames, not one atomic operation.
// - Files get the exported permission bits (including setuid/setgid/sticky) and modification times; owners
//   are the current user (buildx rewrites uid/gid to the local user too). Devices and named pipes are skipped
//   (creating them needs privileges the CLI does not have); xattrs are not written.

import { randomBytes } from "node:crypto";
import {
  chmod,
  link,
  lstat,
  lutimes,
  mkdir,
  open,
  readdir,
  rename,
  rm,
  stat,
  symlink,
  utimes,
  type FileHandle,
} from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { ServerCall } from "../session/attachable.ts";
import { PacketType, decodePacket, encodeErr, encodeFin, encodeReq, packetErrorText, type Stat } from "./packets.ts";
import { kindOfGoMode, unixPermissionsFromGo } from "./filemode.ts";
import { cleanPath, dirPath } from "./paths.ts";

interface PendingFile {
  readonly path: string;
  readonly mode: number;
  readonly modTime: bigint;
  handle: FileHandle | undefined;
}

interface ReceivedDir {
  readonly path: string;
  readonly mode: number;
  readonly modTime: bigint;
}

export interface ReceiveResult {
  /** Entries written (directories, files, links). */
  entries: number;
  /** Bytes of file contents written. */
  bytes: number;
  /** Paths of entries that could not be created (devices, named pipes). */
  skipped: string[];
}

/**
 * Runs the receiver side of one local-exporter DiffCopy call and places the result at `dest`.
 * Resolves after the FIN exchange and the placement; throws (after removing the staging dir) on any failure.
 */
export async function receiveToDirectory(call: ServerCall, dest: string): Promise<ReceiveResult> {
  const placement = await preparePlacement(dest);
  try {
    const receiver = new DirectoryReceiver(call, placement.staging);
    let result: ReceiveResult;
    try {
      result = await receiver.run();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      await call.send(encodeErr(message)).catch(() => undefined);
      throw err;
    }
    await placement.place();
    await receiver.applyDirectoryMetadata(dest);
    return result;
  } finally {
    await rm(placement.staging, { recursive: true, force: true });
  }
}

interface Placement {
  readonly staging: string;
  /** Moves the staged tree into the destination. */
  place(): Promise<void>;
}

async function preparePlacement(dest: string): Promise<Placement> {
  const suffix = randomBytes(6).toString("hex");
  const existing = await stat(dest).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    throw err;
  });
  if (existing && !existing.isDirectory()) throw new Error(`export destination ${dest} exists and is not a directory`);
  if (existing) {
    // Inside dest, so the final renames never cross a file system (dest may be a mount point).
    const staging = join(dest, `.shim-export-${suffix}`);
    await mkdir(staging, 0o700);
    return { staging, place: () => mergeInto(staging, dest) };
  }
  await mkdir(dirname(dest), { recursive: true });
  const staging = join(dirname(dest), `.${basename(dest)}.shim-export-${suffix}`);
  await mkdir(staging, 0o777); // the umask applies, as for a directory created by the user's tools
  return {
    staging,
    async place() {
      try {
        await rename(staging, dest);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // Someone created dest meanwhile: merge into it instead.
        if (code !== "ENOTEMPTY" && code !== "EEXIST") throw err;
        await mergeInto(staging, dest);
      }
    },
  };
}

/** Moves every entry of `from` into `to`, recursing into directories both sides have. */
async function mergeInto(from: string, to: string): Promise<void> {
  for (const name of await readdir(from)) {
    const source = join(from, name);
    const target = join(to, name);
    const sourceStat = await lstat(source);
    const targetStat = await lstat(target).catch(() => undefined);
    if (sourceStat.isDirectory() && targetStat?.isDirectory()) {
      await mergeInto(source, target);
      continue;
    }
    if (targetStat && targetStat.isDirectory() !== sourceStat.isDirectory()) {
      await rm(target, { recursive: true, force: true });
    }
    await rename(source, target);
  }
}

class DirectoryReceiver {
  private readonly pending = new Map<number, PendingFile>();
  private readonly dirs: ReceivedDir[] = [];
  /** Directories created so far ("" is the root): an entry's parent must be one of them. */
  private readonly knownDirs = new Set<string>([""]);
  /** Regular files received so far, the only valid hardlink targets. */
  private readonly regularFiles = new Set<string>();
  private nextId = 0;
  private listingDone = false;
  private finSent = false;
  private readonly result: ReceiveResult = { entries: 0, bytes: 0, skipped: [] };

  constructor(
    private readonly call: ServerCall,
    private readonly root: string,
  ) {}

  async run(): Promise<ReceiveResult> {
    try {
      for await (const bytes of this.call.requests) {
        const packet = decodePacket(bytes);
        switch (packet.type) {
          case PacketType.PACKET_STAT:
            if (packet.stat === undefined) {
              if (this.listingDone) throw new Error("listing ended twice");
              this.listingDone = true;
            } else {
              if (this.listingDone) throw new Error(`entry ${JSON.stringify(packet.stat.path)} after the end of the listing`);
              await this.handleStat(packet.stat, this.nextId++);
            }
            break;
          case PacketType.PACKET_DATA:
            await this.handleData(packet.ID, packet.data);
            break;
          case PacketType.PACKET_FIN:
            if (!this.finSent) throw new Error("sender finished before the transfer was complete");
            return this.result;
          case PacketType.PACKET_ERR:
            throw new Error(`error from sender: ${packetErrorText(packet)}`);
          default:
            throw new Error(`unexpected packet type ${packet.type} from the sender`);
        }
        await this.finishIfComplete();
      }
      throw new Error("the sender closed the transfer before it was complete");
    } finally {
      for (const file of this.pending.values()) await file.handle?.close().catch(() => undefined);
    }
  }

  /** Applies the exported permissions and times to the placed directories, deepest first. */
  async applyDirectoryMetadata(dest: string): Promise<void> {
    for (const dir of [...this.dirs].reverse()) {
      const target = join(dest, dir.path);
      await chmod(target, unixPermissionsFromGo(dir.mode));
      await utimes(target, nsToSeconds(dir.modTime), nsToSeconds(dir.modTime));
    }
  }

  private async finishIfComplete(): Promise<void> {
    if (this.finSent || !this.listingDone || this.pending.size > 0) return;
    this.finSent = true;
    await this.call.send(encodeFin());
  }

  private async handleStat(stat: Stat, id: number): Promise<void> {
    const path = stat.path;
    if (path === "" || path === "." || cleanPath(path) !== path || path.startsWith("/") || path === ".." || path.startsWith("../")) {
      throw new Error(`invalid path ${JSON.stringify(path)} from the sender`);
    }
    const parent = dirPath(path) === "." ? "" : dirPath(path);
    if (!this.knownDirs.has(parent)) throw new Error(`entry ${JSON.stringify(path)} arrived before its directory`);
    const target = join(this.root, path);
    const kind = kindOfGoMode(stat.mode);
    this.result.entries++;
    switch (kind) {
      case "dir":
        // Writable while we fill it; the exported mode is applied once everything is in place.
        await mkdir(target, 0o700);
        this.knownDirs.add(path);
        this.dirs.push({ path, mode: stat.mode, modTime: stat.modTime });
        return;
      case "symlink":
        await symlink(stat.linkname, target);
        await lutimes(target, nsToSeconds(stat.modTime), nsToSeconds(stat.modTime));
        return;
      case "file":
        if (stat.linkname !== "") {
          if (!this.regularFiles.has(stat.linkname)) {
            throw new Error(`invalid hardlink ${JSON.stringify(path)} to unknown path ${JSON.stringify(stat.linkname)}`);
          }
          await link(join(this.root, stat.linkname), target);
          return;
        }
        await (await open(target, "wx", 0o600)).close();
        this.regularFiles.add(path);
        this.pending.set(id, { path, mode: stat.mode, modTime: stat.modTime, handle: undefined });
        await this.call.send(encodeReq(id));
        return;
      default:
        this.result.entries--;
        this.result.skipped.push(path);
    }
  }

  private async handleData(id: number, data: Uint8Array): Promise<void> {
    const file = this.pending.get(id);
    if (file === undefined) throw new Error(`invalid file request ${id}`);
    const target = join(this.root, file.path);
    if (data.length > 0) {
      file.handle ??= await open(target, "a");
      await file.handle.appendFile(data);
      this.result.bytes += data.length;
      return;
    }
    await file.handle?.close();
    file.handle = undefined;
    this.pending.delete(id);
    await chmod(target, unixPermissionsFromGo(file.mode));
    await utimes(target, nsToSeconds(file.modTime), nsToSeconds(file.modTime));
  }
}

/**
 * Node's utimes takes float seconds and libuv truncates them to whole microseconds. Aim at the middle of the
 * intended microsecond so the float's rounding error (~0.24 µs today) cannot push it into the previous one.
 */
function nsToSeconds(ns: bigint): number {
  const seconds = ns / 1_000_000_000n;
  const micros = (ns % 1_000_000_000n) / 1000n;
  return Number(seconds) + (Number(micros) * 1000 + 500) / 1e9;
}
