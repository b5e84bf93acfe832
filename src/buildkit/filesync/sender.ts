// The FileSync attachable: serves local directories (the build context, the Dockerfile's directory, named
// contexts) to the daemon over /moby.filesync.v1.FileSync/DiffCopy. The daemon is the fsutil receiver and we
// are the sender: we stream one STAT per entry while walking, answer each REQ with DATA chunks, and reply FIN to
// its FIN.

import { open, realpath, stat } from "node:fs/promises";
import { GrpcCode, GrpcError, type Attachable, type ServerCall } from "../session/attachable.ts";
import {
  PacketType,
  decodePacket,
  encodeData,
  encodeEndOfListing,
  encodeErr,
  encodeFin,
  encodeStatPacket,
  packetErrorText,
} from "./packets.ts";
import { PathFilter, combineIncludes } from "./filter.ts";
import { resolveFollowPaths } from "./followpaths.ts";
import { isRegularGoMode } from "./filemode.ts";
import { localTreeReader, walkTree } from "./walk.ts";
import { PatternError } from "./patterns.ts";

export const FILESYNC_DIFFCOPY = "/moby.filesync.v1.FileSync/DiffCopy";

/** Size of the DATA chunks we send (the Go sender uses 32 KiB; larger chunks cost less per byte). */
export const DATA_CHUNK_BYTES = 128 * 1024;
/** How many requested files are read and sent at once (the Go sender uses 4). */
export const CONCURRENT_FILES = 4;

export interface FileSyncOptions {
  /** Size of the DATA chunks (default DATA_CHUNK_BYTES). */
  chunkBytes?: number;
  /** Called for every chunk of file contents sent: for progress, and for tests that count bytes served. */
  onFileData?: (event: { dirName: string; path: string; bytes: number }) => void;
}

/**
 * Serves `dirs` (local name → directory on disk, e.g. `context`, `dockerfile`, or the name of a
 * `--build-context name=path`). Unknown names are refused with NOT_FOUND, as BuildKit's Go client does.
 */
export function fileSyncAttachable(dirs: Readonly<Record<string, string>>, options: FileSyncOptions = {}): Attachable {
  const known = new Map(Object.entries(dirs));
  return {
    // TarStream is never negotiated by any daemon (only "diffcopy" is), so it is not offered.
    methods: { [FILESYNC_DIFFCOPY]: (call) => serveDiffCopy(call, known, options) },
  };
}

async function serveDiffCopy(call: ServerCall, dirs: ReadonlyMap<string, string>, options: FileSyncOptions): Promise<void> {
  const dirName = call.metadata.first("dir-name") ?? "";
  const dir = dirs.get(dirName);
  if (dir === undefined) throw new GrpcError(GrpcCode.NOT_FOUND, `no access allowed to dir ${JSON.stringify(dirName)}`);

  const includes = call.metadata.all("include-patterns");
  const excludes = call.metadata.all("exclude-patterns");
  const followPaths = call.metadata.all("followpaths");

  const root = await resolveRoot(dir, dirName);
  let filter: PathFilter;
  try {
    const followTargets = followPaths.length > 0 ? await resolveFollowPaths(followPaths, localTreeReader(root)) : undefined;
    filter = new PathFilter(combineIncludes(includes, followTargets), excludes);
  } catch (err) {
    if (err instanceof PatternError) throw new GrpcError(GrpcCode.INVALID_ARGUMENT, `invalid patterns for ${dirName}: ${err.message}`);
    throw err;
  }
  await new DiffCopySender(call, root, dirName, filter, options).run();
}

async function resolveRoot(dir: string, dirName: string): Promise<string> {
  try {
    const root = await realpath(dir);
    if (!(await stat(root)).isDirectory()) throw new Error("not a directory");
    return root;
  } catch (err) {
    throw new GrpcError(GrpcCode.NOT_FOUND, `local directory ${JSON.stringify(dirName)} (${dir}): ${(err as Error).message}`);
  }
}

class DiffCopySender {
  /** id → absolute path of every regular file listed so far and not yet requested. */
  private readonly requestable = new Map<number, { abs: string; path: string }>();
  private readonly requested: { id: number; abs: string; path: string }[] = [];
  private wakeWorkers: (() => void)[] = [];
  private readonly abort = new AbortController();
  private sendChain: Promise<void> = Promise.resolve();

  constructor(
    private readonly call: ServerCall,
    private readonly root: string,
    private readonly dirName: string,
    private readonly filter: PathFilter,
    private readonly options: FileSyncOptions,
  ) {}

  async run(): Promise<void> {
    const onCallAbort = () => this.abort.abort(this.call.signal.reason);
    this.call.signal.addEventListener("abort", onCallAbort, { once: true });
    try {
      // The listing, the file workers and the REQ reader run together: the daemon requests files while the
      // listing is still streaming, and reading its packets is what lets us notice FIN or an error from it.
      const failure = new Promise<never>((_, reject) => {
        this.abort.signal.addEventListener("abort", () => reject(this.abort.signal.reason), { once: true });
      });
      failure.catch(() => undefined);
      const tasks = [this.sendListing(), ...Array.from({ length: CONCURRENT_FILES }, () => this.fileWorker())];
      for (const task of tasks) task.catch((err) => this.fail(err));
      await Promise.race([this.readReceiver(), failure]);
    } catch (err) {
      if (this.call.signal.aborted) throw err;
      const message = err instanceof Error ? err.message : String(err);
      // Tell the daemon why, in-band, as the Go sender does; its receiver reports "error from sender: …".
      await this.send(encodeErr(message)).catch(() => undefined);
      throw err instanceof GrpcError ? err : new GrpcError(GrpcCode.UNKNOWN, message);
    } finally {
      this.call.signal.removeEventListener("abort", onCallAbort);
      this.abort.abort(new GrpcError(GrpcCode.CANCELLED, "transfer finished"));
      for (const wake of this.wakeWorkers) wake();
    }
  }

  private fail(err: unknown): void {
    if (!this.abort.signal.aborted) this.abort.abort(err);
  }

  /** Messages go out one at a time, in the order they were queued (the listing and files share the stream). */
  private send(message: Uint8Array): Promise<void> {
    const sent = this.sendChain.then(() => this.call.send(message));
    this.sendChain = sent.catch(() => undefined);
    return sent;
  }

  private async sendListing(): Promise<void> {
    let id = 0;
    for await (const entry of walkTree(this.root, this.filter, this.abort.signal)) {
      if (isRegularGoMode(entry.stat.mode) && entry.stat.linkname === "") {
        this.requestable.set(id, { abs: entry.absPath, path: entry.stat.path });
      }
      id++; // every STAT counts, whether or not it can be requested
      await this.send(encodeStatPacket(entry.stat));
    }
    await this.send(encodeEndOfListing());
  }

  private async readReceiver(): Promise<void> {
    for await (const bytes of this.call.requests) {
      const packet = decodePacket(bytes);
      switch (packet.type) {
        case PacketType.PACKET_REQ: {
          const file = this.requestable.get(packet.ID);
          if (file === undefined) throw new Error(`invalid file id ${packet.ID}`);
          this.requestable.delete(packet.ID);
          this.requested.push({ id: packet.ID, ...file });
          this.wakeWorkers.shift()?.();
          break;
        }
        case PacketType.PACKET_FIN:
          await this.send(encodeFin());
          return;
        case PacketType.PACKET_ERR:
          throw new Error(`error from receiver: ${packetErrorText(packet)}`);
        default:
          throw new Error(`unexpected packet type ${packet.type} from the receiver`);
      }
    }
    this.abort.signal.throwIfAborted();
    throw new Error("the receiver ended the transfer without FIN");
  }

  private async fileWorker(): Promise<void> {
    const buffer = Buffer.allocUnsafe(this.options.chunkBytes ?? DATA_CHUNK_BYTES);
    while (!this.abort.signal.aborted) {
      const next = this.requested.shift();
      if (next === undefined) {
        await new Promise<void>((resolve) => this.wakeWorkers.push(resolve));
        continue;
      }
      await this.sendFile(next.id, next.abs, next.path, buffer);
    }
  }

  private async sendFile(id: number, abs: string, path: string, buffer: Buffer): Promise<void> {
    let handle;
    try {
      handle = await open(abs, "r");
    } catch (err) {
      // The Go sender would silently send an empty file; a build from a half-readable context is worse.
      throw new Error(`cannot read ${JSON.stringify(path)} in ${this.dirName}: ${(err as Error).message}`);
    }
    try {
      for (;;) {
        this.abort.signal.throwIfAborted();
        let bytesRead: number;
        try {
          ({ bytesRead } = await handle.read(buffer, 0, buffer.length, null));
        } catch (err) {
          throw new Error(`cannot read ${JSON.stringify(path)} in ${this.dirName}: ${(err as Error).message}`);
        }
        if (bytesRead === 0) break;
        await this.send(encodeData(id, buffer.subarray(0, bytesRead)));
        this.options.onFileData?.({ dirName: this.dirName, path, bytes: bytesRead });
      }
    } finally {
      await handle.close();
    }
    await this.send(encodeData(id, new Uint8Array(0)));
  }
}
