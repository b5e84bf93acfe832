// The FileSend attachable: where the daemon delivers exports (/moby.filesync.v1.FileSend/DiffCopy).
// Each call names its exporter by the `buildkit-attachable-exporter-id` header (the index in
// SolveRequest.Exporters; absent before BuildKit v0.13, which means 0) and goes to that exporter's target:
// - a byte stream (tar, oci, docker exporters): BytesMessage chunks are written to a Writable the caller opens;
// - a directory (local exporter): the messages are fsutil packets and we are the fsutil receiver.

import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { finished } from "node:stream/promises";
import type { Writable } from "node:stream";
import { fromBinary } from "@bufbuild/protobuf";
import { BytesMessageSchema } from "../proto/gen/buildkit/filesync_pb.ts";
import { GrpcCode, GrpcError, type Attachable, type ServerCall } from "../session/attachable.ts";
import { receiveToDirectory, type ReceiveResult } from "./receiver.ts";

export const FILESEND_DIFFCOPY = "/moby.filesync.v1.FileSend/DiffCopy";

/** Exporter response values the daemon passes along with a tarball (`exporter-md-<key>` headers). */
export const EXPORTER_METADATA_KEYS = [
  "containerimage.digest",
  "containerimage.config.digest",
  "containerimage.descriptor",
  "image.name",
] as const;

export type ExporterMetadata = Partial<Record<(typeof EXPORTER_METADATA_KEYS)[number], string>>;

export interface StreamTarget {
  readonly kind: "stream";
  /**
   * Opens where the tarball goes (a file, stdout, the body of a Docker `/images/load` request…). We end it when
   * the daemon finishes and wait until it has finished writing; it is destroyed with the error if the export
   * fails. Returning undefined answers ALREADY_EXISTS, which the daemon treats as "nothing to send".
   */
  open(metadata: ExporterMetadata): Promise<Writable | undefined> | Writable | undefined;
  /** Called once the Writable has finished, before the call completes (e.g. to move a temp file into place). */
  commit?(): Promise<void>;
  /** Called after a failed export, once the Writable has been destroyed (e.g. to remove a temp file). */
  abort?(): Promise<void>;
}

export interface DirectoryTarget {
  readonly kind: "directory";
  /** The local exporter's destination directory (merged into if it exists; see receiver.ts). */
  readonly dest: string;
  /** Called after the export has been placed. */
  onDone?(result: ReceiveResult): void;
}

export type ExportTarget = StreamTarget | DirectoryTarget;

/** Serves exports; `targets` maps exporter index → target. A call for an unknown index fails with NOT_FOUND. */
export function fileSendAttachable(targets: ReadonlyMap<number, ExportTarget>): Attachable {
  return {
    methods: {
      [FILESEND_DIFFCOPY]: async (call) => {
        const id = exporterId(call);
        const target = targets.get(id);
        if (target === undefined) throw new GrpcError(GrpcCode.NOT_FOUND, `exporter ${id} not found`);
        if (target.kind === "directory") {
          const result = await receiveToDirectory(call, target.dest);
          target.onDone?.(result);
          return;
        }
        await receiveStream(call, target);
      },
    },
  };
}

/** The exporter index of a call, 0 when the header is absent or malformed (as BuildKit's Go client reads it). */
function exporterId(call: ServerCall): number {
  const value = call.metadata.first("buildkit-attachable-exporter-id");
  if (value === undefined || !/^-?\d+$/.test(value.trim())) return 0;
  return Number.parseInt(value, 10);
}

async function receiveStream(call: ServerCall, target: StreamTarget): Promise<void> {
  const metadata: ExporterMetadata = {};
  for (const key of EXPORTER_METADATA_KEYS) {
    const values = call.metadata.all(`exporter-md-${key}`);
    if (values.length > 0) metadata[key] = values.join(",");
  }
  const writable = await target.open(metadata);
  if (writable === undefined) throw new GrpcError(GrpcCode.ALREADY_EXISTS, "target already exists");
  try {
    for await (const bytes of call.requests) {
      const { data } = fromBinary(BytesMessageSchema, bytes);
      if (data.length === 0) continue;
      if (!writable.write(data)) await drained(writable);
    }
    // The daemon half-closed: everything has arrived.
    writable.end();
    await finished(writable);
    await target.commit?.();
  } catch (err) {
    writable.destroy(err instanceof Error ? err : new Error(String(err)));
    await finished(writable).catch(() => undefined);
    await target.abort?.();
    throw err;
  }
}

async function drained(writable: Writable): Promise<void> {
  const listeners = new AbortController(); // detaches whichever wait loses
  try {
    // 'error' rejects either wait; a close without drain means the consumer went away.
    const event = await Promise.race([
      once(writable, "drain", { signal: listeners.signal }).then(() => "drain"),
      once(writable, "close", { signal: listeners.signal }).then(() => "close"),
    ]);
    if (event === "close") throw new Error("the export destination was closed before the export finished");
  } finally {
    listeners.abort();
  }
}

/**
 * A StreamTarget writing a file the way an exporter's `dest=<file>` should: into a temporary file beside it,
 * renamed over `path` only when the whole tarball has arrived; a failed export leaves `path` untouched.
 */
export function fileStreamTarget(path: string): StreamTarget {
  const tmp = join(dirname(path), `.${basename(path)}.shim-${randomBytes(6).toString("hex")}.tmp`);
  return {
    kind: "stream",
    open: () => createWriteStream(tmp, { flags: "wx", mode: 0o666 }),
    commit: () => rename(tmp, path),
    abort: () => rm(tmp, { force: true }),
  };
}
