// Executing the outputs: where each exporter's stream or directory goes on this side of the session, and the
// result files written after a successful build (--iidfile, --metadata-file). Nothing the user asked for is
// left half-written: tarballs go to a temporary file renamed into place at the end (fileStreamTarget), the
// local exporter stages and merges (receiver.ts), and the result files are written atomically on success only.
import { rename, rm, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { basename, dirname, join } from "node:path";
import { Writable } from "node:stream";
import {
  fileStreamTarget,
  type ExporterMetadata,
  type ExportTarget,
  type StreamTarget,
} from "../filesync/filesend.ts";
import type { DockerHost } from "../../engine/host.ts";
import { startImageLoad } from "./daemon.ts";
import type { PlannedExport } from "./plan.ts";

export interface ExportOutcome {
  /** The FileSend call for this exporter completed (the stream was delivered in full). */
  delivered: boolean;
  /** Bytes of files written by the local exporter. */
  bytes: number;
  /** `exporter-md-*` values that came with the stream. */
  metadata: ExporterMetadata;
  /** Names the daemon reported after `/images/load`. */
  loaded: string[];
}

export interface OutputTargets {
  /** Exporter index → target, for fileSendAttachable; empty when no exporter sends anything back. */
  readonly targets: Map<number, ExportTarget>;
  readonly outcomes: ExportOutcome[];
  /** Waits until every started stream has been committed or cleaned up (bounded). */
  settle(timeoutMs?: number): Promise<void>;
}

/** Writes to our stdout without ever ending it (other output may follow). */
function stdoutWritable(stdout: NodeJS.WritableStream): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (stdout.write(chunk)) callback();
      else stdout.once("drain", () => callback());
    },
  });
}

export function prepareOutputs(exports: readonly PlannedExport[], io: { stdout: NodeJS.WritableStream; dockerHost: () => DockerHost }): OutputTargets {
  const targets = new Map<number, ExportTarget>();
  const outcomes: ExportOutcome[] = exports.map(() => ({ delivered: false, bytes: 0, metadata: {}, loaded: [] }));
  const pending = new Set<Promise<unknown>>();
  const track = <T>(promise: Promise<T>): Promise<T> => {
    pending.add(promise);
    void promise.finally(() => pending.delete(promise)).catch(() => undefined);
    return promise;
  };

  /** Records the metadata that came with a stream, and whether it was delivered; tracks clean-ups. */
  const observed = (index: number, target: StreamTarget): StreamTarget => ({
    kind: "stream",
    open(metadata) {
      outcomes[index]!.metadata = metadata;
      return target.open(metadata);
    },
    commit: async () => {
      await track(target.commit?.() ?? Promise.resolve());
      outcomes[index]!.delivered = true;
    },
    abort: () => track(target.abort?.() ?? Promise.resolve()),
  });

  exports.forEach((planned, index) => {
    const destination = planned.destination;
    switch (destination.kind) {
      case "file":
        targets.set(index, observed(index, fileStreamTarget(destination.path)));
        break;
      case "stdout":
        targets.set(index, observed(index, { kind: "stream", open: () => stdoutWritable(io.stdout) }));
        break;
      case "docker-load": {
        let load: ReturnType<typeof startImageLoad> | undefined;
        targets.set(
          index,
          observed(index, {
            kind: "stream",
            open: () => {
              load = startImageLoad(io.dockerHost());
              return load.body;
            },
            commit: async () => {
              outcomes[index]!.loaded = (await load?.done) ?? [];
            },
            abort: async () => {
              load?.body.destroy();
              await load?.done.catch(() => undefined);
            },
          }),
        );
        break;
      }
      case "directory":
        targets.set(index, {
          kind: "directory",
          dest: destination.path,
          onDone: (result) => {
            outcomes[index]!.delivered = true;
            outcomes[index]!.bytes = result.bytes;
          },
        });
        break;
      case "none":
        break;
    }
  });

  return {
    targets,
    outcomes,
    async settle(timeoutMs = 10_000) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...pending]),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
      ]);
      clearTimeout(timer);
    },
  };
}

/** The image id as buildx's --iidfile has it: the config digest when known, else the manifest digest. */
export function imageIdFrom(response: Readonly<Record<string, string>>): string | undefined {
  return response["containerimage.config.digest"] || response["containerimage.digest"] || undefined;
}

/**
 * buildx's --metadata-file: every exporter response value, with base64 JSON objects (and lists) decoded
 * (`containerimage.descriptor`), plus `buildx.build.ref`. Keys sorted, two-space indent, as Go writes maps.
 */
export function metadataDocument(response: Readonly<Record<string, string>>, buildRef: string): string {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(response)) out[key] = decodeValue(value);
  out["buildx.build.ref"] = buildRef;
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(out).sort()) sorted[key] = out[key];
  return JSON.stringify(sorted, null, 2);
}

function decodeValue(value: string): unknown {
  // Only canonical base64 counts (Go's StdEncoding is strict); then only a non-empty JSON object or list.
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(value) || value === "") return value;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(value, "base64").toString("utf8"));
    if (Array.isArray(parsed) ? parsed.length > 0 : typeof parsed === "object" && parsed !== null && Object.keys(parsed).length > 0) return parsed;
  } catch {
    // not JSON: keep the text
  }
  return value;
}

/** Writes `content` to `path` through a temporary file in the same directory (a reader never sees half of it). */
export async function writeFileAtomically(path: string, content: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.shim-${randomBytes(6).toString("hex")}.tmp`);
  try {
    await writeFile(tmp, content, { mode: 0o644, flag: "wx" });
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
