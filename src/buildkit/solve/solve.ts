// One build: open the session, start Status and Solve together, stream progress, return the exporter response.
// Timing constraints from the daemon: it waits ~5 s for the session to appear, and a Status call fails if its
// job is not registered within 6 s (3 s on v0.8) — hence session first, then Status and Solve at once.
import { create } from "@bufbuild/protobuf";
import { Control, SolveRequestSchema, type SolveRequest, type StatusResponse } from "../proto/gen/buildkit/control_pb.ts";
import type { BuildkitConnection } from "../transport/connect.ts";
import { GrpcCode, GrpcError, type Attachable } from "../session/attachable.ts";
import { newBuildkitId, startSession } from "../session/session.ts";

export interface SolveOptions {
  /** Services for the daemon (FileSync for the context, FileSend for outputs, Content, Auth, Secrets…). */
  attachables: readonly Attachable[];
  /** Stable per context; see SessionOptions.sharedKey. */
  sharedKey: string;
  /** Every StatusResponse as it arrives (vertexes, progress, logs, warnings). */
  onStatus?: (status: StatusResponse) => void;
  /** Aborting (Ctrl-C) cancels the Solve call; the daemon cancels the build. */
  signal?: AbortSignal;
  sessionName?: string;
  /** Diagnostics for --debug: session handler errors, a failed Status stream, slow shutdown. */
  debug?: (line: string) => void;
}

export interface SolveResult {
  /** The build id used for Solve and Status. */
  ref: string;
  /** e.g. `containerimage.digest`, `cache.manifest`; unknown keys may appear on newer daemons. */
  exporterResponse: Record<string, string>;
}

/** How long to keep reading Status after Solve returned, for the final vertex updates. */
const STATUS_TAIL_MS = 5000;

export async function solve(connection: BuildkitConnection, request: SolveRequest, options: SolveOptions): Promise<SolveResult> {
  if (options.signal?.aborted) throw cancelledError();
  const debug = options.debug ?? (() => undefined);
  const session = await startSession(connection, {
    sharedKey: options.sharedKey,
    attachables: options.attachables,
    ...(options.sessionName ? { name: options.sessionName } : {}),
    onError: (err, method) => debug(`session${method ? ` ${method}` : ""}: ${err.message}`),
    // Health checks arrive every 1–5 s for the whole build; they are not worth a debug line each.
    onCall: (method) => {
      if (!method.startsWith("/grpc.health.v1.")) debug(`session: daemon called ${method}`);
    },
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const ref = request.Ref || newBuildkitId();
  const solveRequest = create(SolveRequestSchema, { ...request, Ref: ref, Session: session.id });

  const statusCancel = new AbortController();
  const statusDone = (async () => {
    try {
      for await (const status of connection.control.stream(Control.method.status, { Ref: ref }, { signal: statusCancel.signal })) {
        try {
          options.onStatus?.(status);
        } catch (err) {
          debug(`status callback failed: ${(err as Error).message}`);
        }
      }
    } catch (err) {
      if (!statusCancel.signal.aborted) debug(`status stream ended with: ${(err as Error).message}`);
    }
  })();

  try {
    const response = await connection.control.call(Control.method.solve, solveRequest, options.signal ? { signal: options.signal } : {});
    return { ref, exporterResponse: { ...response.ExporterResponse } };
  } catch (err) {
    if (options.signal?.aborted) throw cancelledError();
    throw err;
  } finally {
    await settleWithin(statusDone, STATUS_TAIL_MS);
    statusCancel.abort();
    await session.close();
  }
}

function cancelledError(): GrpcError {
  return new GrpcError(GrpcCode.CANCELLED, "build cancelled");
}

async function settleWithin(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
