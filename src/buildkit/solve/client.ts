// The API the `shim build` CLI uses: connect once, then ask for info, build, inspect or prune the cache.
import { Control, type SolveRequest, type UsageRecord } from "../proto/gen/buildkit/control_pb.ts";
import type { WorkerRecord } from "../proto/gen/buildkit/worker_pb.ts";
import { connectToBuildkit, type ConnectOptions, type ServerInfo } from "../transport/connect.ts";
import { solve, type SolveOptions, type SolveResult } from "./solve.ts";

export interface PruneOptions {
  all?: boolean;
  filter?: readonly string[];
  /** Keep records used more recently than this (nanoseconds on the wire; milliseconds here). */
  keepDurationMs?: number;
  /** Keep this much storage (`reservedSpace`, called keepBytes before BuildKit v0.17). */
  reservedSpaceBytes?: bigint;
  signal?: AbortSignal;
}

export interface BuildkitClient {
  /** Which endpoint answered, e.g. `unix:///run/buildkit/buildkitd.sock` or `docker (unix:///var/run/docker.sock)`. */
  readonly address: string;
  readonly via: "buildkitd" | "docker";
  /** Server version (Control.Info, or ListWorkers on ≤ v0.10). */
  info(): Promise<ServerInfo>;
  workers(): Promise<WorkerRecord[]>;
  /** Runs one build; see toSolveRequest for building the request. */
  solve(request: SolveRequest, options: SolveOptions): Promise<SolveResult>;
  diskUsage(filter?: readonly string[]): Promise<UsageRecord[]>;
  /** Streams each record as it is removed. */
  prune(options?: PruneOptions): AsyncIterable<UsageRecord>;
  close(): void;
}

export async function connectBuildkit(options: ConnectOptions = {}): Promise<BuildkitClient> {
  const connection = await connectToBuildkit(options);
  const { control } = connection;
  return {
    address: connection.address,
    via: connection.via,
    info: async () => connection.info,
    workers: async () => (await control.call(Control.method.listWorkers, {})).record,
    solve: (request, solveOptions) => solve(connection, request, solveOptions),
    diskUsage: async (filter = []) => (await control.call(Control.method.diskUsage, { filter: [...filter] })).record,
    prune: (prune = {}) =>
      control.stream(
        Control.method.prune,
        {
          all: prune.all ?? false,
          filter: [...(prune.filter ?? [])],
          keepDuration: BigInt(Math.round((prune.keepDurationMs ?? 0) * 1e6)),
          reservedSpace: prune.reservedSpaceBytes ?? 0n,
        },
        prune.signal ? { signal: prune.signal } : {},
      ),
    close: () => connection.close(),
  };
}
