// Dialing BuildKit: unix and tcp(+TLS) listeners of buildkitd, `buildctl dial-stdio` inside a container, and the
// BuildKit embedded in dockerd. Every connection ends up as an HTTP/2 client session (GrpcChannel) for the
// Control API plus a way to open the reversed session tunnel.
import net from "node:net";
import tls from "node:tls";
import { existsSync, readFileSync } from "node:fs";
import type { Duplex } from "node:stream";
import { ShimError } from "../../shim/errors.ts";
import { engineUpgrade } from "../../engine/client.ts";
import { execAttached } from "../../engine/exec.ts";
import { parseDockerHost, type DockerHost } from "../../engine/host.ts";
import { GrpcCode, GrpcError } from "../session/attachable.ts";
import { Control } from "../proto/gen/buildkit/control_pb.ts";
import { GrpcChannel, methodPath, type MetadataPairs } from "./client.ts";
import { BytesMessageTunnel } from "./tunnel.ts";
import { planCandidates, resolveTlsDir, type BuildkitAddress, type Candidate, type TlsFileOptions } from "./address.ts";

export interface ServerInfo {
  /** e.g. "v0.32.2"; "unknown (≤ v0.10)" when the daemon predates both Info and versioned worker records. */
  version: string;
  package: string;
  revision: string;
  /** Whether Control.Info exists (BuildKit v0.11+); false for Docker 20.10/23.0's embedded BuildKit. */
  infoSupported: boolean;
}

export const UNKNOWN_OLD_VERSION = "unknown (≤ v0.10)";

export interface BuildkitConnection {
  /** The address as tried, e.g. `unix:///run/buildkit/buildkitd.sock` or `docker (unix:///var/run/docker.sock)`. */
  readonly address: string;
  readonly via: "buildkitd" | "docker";
  readonly control: GrpcChannel;
  /** What the probe learnt while connecting. */
  readonly info: ServerInfo;
  /** Opens the byte tunnel of a new session with the given session metadata (we serve HTTP/2 on it). */
  openSessionTunnel(metadata: MetadataPairs, signal?: AbortSignal): Promise<Duplex>;
  close(): void;
}

export interface ConnectOptions {
  /** `--buildkit ADDR`; when set (or BUILDKIT_HOST is), it is the only address tried. */
  address?: string;
  env?: Readonly<Record<string, string | undefined>>;
  /** TLS for tcp:// (buildctl's --tlscacert/--tlscert/--tlskey/--tlsdir/--tlsservername). */
  tls?: TlsFileOptions;
  /** The Docker daemon to fall back to; default DOCKER_HOST, then /var/run/docker.sock. */
  dockerHost?: string;
  /** Per-candidate limit for connecting and answering the probe (buildctl's default --timeout is 5 s). */
  timeoutMs?: number;
  /** One line per attempt (address, why it was tried, why it failed); the CLI prints these under --debug. */
  debug?: (line: string) => void;
}

/** No candidate answered; `attempts` says what was tried and why each failed. */
export class BuildkitUnreachableError extends ShimError {
  constructor(readonly attempts: ReadonlyArray<{ address: string; reason: string }>) {
    super(`cannot reach BuildKit: ${attempts.map((a) => `${a.address}: ${a.reason}`).join("; ")}`);
    this.name = "BuildkitUnreachableError";
  }
}

/** Tries the candidates in order and returns the first connection whose probe (Info or ListWorkers) succeeds. */
export async function connectToBuildkit(options: ConnectOptions = {}): Promise<BuildkitConnection> {
  const env = options.env ?? process.env;
  let candidates: Candidate[];
  try {
    candidates = planCandidates(options.address, env, options.dockerHost);
  } catch (err) {
    throw new ShimError(err instanceof Error ? err.message : String(err));
  }
  const attempts: { address: string; reason: string }[] = [];
  for (const candidate of candidates) {
    const label = describe(candidate.target);
    options.debug?.(`buildkit: trying ${label} (${candidate.source})`);
    try {
      const connection = await withTimeout((signal) => dial(candidate.target, env, options, signal), options.timeoutMs ?? 5000);
      options.debug?.(`buildkit: connected to ${label}, BuildKit ${connection.info.version}`);
      return connection;
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      options.debug?.(`buildkit: ${label} failed: ${reason}`);
      attempts.push({ address: label, reason });
    }
  }
  throw new BuildkitUnreachableError(attempts);
}

function describe(target: BuildkitAddress): string {
  return target.kind === "docker" ? `docker (${target.dockerHost})` : target.address;
}

/** Runs one dial with a deadline; at the deadline its signal aborts, so sockets and calls it opened are torn down. */
async function withTimeout<T>(dialWith: (signal: AbortSignal) => Promise<T>, ms: number): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`no answer within ${ms} ms`));
      controller.abort();
    }, ms);
  });
  const attempt = dialWith(controller.signal);
  attempt.catch(() => undefined); // after a timeout its own rejection is no longer interesting
  try {
    return await Promise.race([attempt, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function dial(
  target: BuildkitAddress,
  env: Readonly<Record<string, string | undefined>>,
  options: ConnectOptions,
  signal: AbortSignal,
): Promise<BuildkitConnection> {
  switch (target.kind) {
    case "unix": {
      if (!existsSync(target.socketPath)) throw new Error("no such socket");
      const socket = await connectSocket(net.connect(target.socketPath), "connect", signal);
      return grpcConnection(target.address, "buildkitd", GrpcChannel.overDuplex(socket, "localhost"), signal);
    }
    case "tcp": {
      const authority = net.isIPv6(target.host) ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
      const tlsOptions = options.tls && (options.tls.dir || options.tls.caCert || options.tls.cert || options.tls.key) ? options.tls : undefined;
      if (!tlsOptions) {
        const socket = await connectSocket(net.connect(target.port, target.host), "connect", signal);
        return grpcConnection(target.address, "buildkitd", GrpcChannel.overDuplex(socket, authority), signal);
      }
      if (tlsOptions.dir && (tlsOptions.caCert || tlsOptions.cert || tlsOptions.key)) {
        throw new Error("cannot use a TLS directory together with separate TLS files");
      }
      const files = tlsOptions.dir ? resolveTlsDir(tlsOptions.dir, existsSync) : tlsOptions;
      const socket = await connectSocket(
        tls.connect({
          host: target.host,
          port: target.port,
          // SNI may not be an IP address (Node refuses one); the certificate is then checked against the IP's SAN.
          ...(tlsOptions.serverName || !net.isIP(target.host) ? { servername: tlsOptions.serverName || target.host } : {}),
          ALPNProtocols: ["h2"],
          ...(files.caCert ? { ca: readFileSync(files.caCert) } : {}),
          ...(files.cert ? { cert: readFileSync(files.cert) } : {}),
          ...(files.key ? { key: readFileSync(files.key) } : {}),
        }),
        "secureConnect",
        signal,
      );
      return grpcConnection(target.address, "buildkitd", GrpcChannel.overDuplex(socket, tlsOptions.serverName || authority), signal);
    }
    case "docker-container": {
      // `docker exec -i <ctr> buildctl dial-stdio`, as buildctl and buildx do, but through the Engine API rather
      // than by spawning the docker CLI: shim may itself be the `docker` on PATH, the API needs no second
      // process, and it honours the same DOCKER_HOST. Docker contexts (`?context=`) are not supported.
      const dockerHost = parseDockerHost(options.dockerHost || env.DOCKER_HOST || "unix:///var/run/docker.sock", env);
      const stream = await execAttached(dockerHost, target.container, ["buildctl", "dial-stdio"], signal);
      try {
        return await grpcConnection(target.address, "buildkitd", GrpcChannel.overDuplex(stream, "localhost"), signal);
      } catch (err) {
        const said = stream.failureText();
        stream.destroy();
        throw said ? new Error(`buildctl dial-stdio in ${target.container}: ${said}`) : err;
      }
    }
    case "docker":
      return dockerConnection(parseDockerHost(target.dockerHost, env), signal);
  }
}

function connectSocket<S extends net.Socket>(socket: S, readyEvent: "connect" | "secureConnect", signal: AbortSignal): Promise<S> {
  return new Promise((resolve, reject) => {
    const onAbort = () => socket.destroy(new Error("connect aborted"));
    signal.addEventListener("abort", onAbort, { once: true });
    socket.once(readyEvent, () => {
      signal.removeEventListener("abort", onAbort);
      socket.off("error", reject);
      resolve(socket);
    });
    socket.once("error", (err) => {
      signal.removeEventListener("abort", onAbort);
      reject(err);
    });
  });
}

/** A buildkitd-style endpoint: the session tunnel is the Control.Session bidi call on the same channel. */
async function grpcConnection(
  address: string,
  via: "buildkitd" | "docker",
  control: GrpcChannel,
  signal: AbortSignal,
): Promise<BuildkitConnection> {
  const onAbort = () => control.destroy();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    const info = await probe(control);
    signal.removeEventListener("abort", onAbort);
    return {
      address,
      via,
      control,
      info,
      async openSessionTunnel(metadata, signal) {
        const call = control.bidi(methodPath(Control.method.session), signal ? { metadata, signal } : { metadata });
        return new BytesMessageTunnel(call);
      },
      close: () => control.destroy(),
    };
  } catch (err) {
    control.destroy();
    throw err;
  }
}

/**
 * dockerd: Control over `POST /grpc` (we are the HTTP/2 client after the upgrade) and each session over its own
 * `POST /session` (the daemon is the HTTP/2 client there), with the session metadata as HTTP/1.1 header lines,
 * one line per repeated value — as buildx's docker driver does.
 */
async function dockerConnection(host: DockerHost, signal: AbortSignal): Promise<BuildkitConnection> {
  const socket = await engineUpgrade(host, { method: "POST", path: "/grpc", signal }, "h2c");
  const control = GrpcChannel.overDuplex(socket, "localhost");
  const connection = await grpcConnection(`docker (${host.url})`, "docker", control, signal);
  return {
    ...connection,
    async openSessionTunnel(metadata, signal) {
      const headers: Record<string, string[]> = {};
      for (const [name, value] of metadata) (headers[name.toLowerCase()] ??= []).push(value);
      return engineUpgrade(host, signal ? { method: "POST", path: "/session", headers, signal } : { method: "POST", path: "/session", headers }, "h2c");
    },
  };
}

/** Version and liveness: Info on v0.11+, else ListWorkers (which every version has). */
export async function probe(control: GrpcChannel): Promise<ServerInfo> {
  try {
    const response = await control.call(Control.method.info, {});
    const version = response.buildkitVersion;
    return {
      version: version?.version || UNKNOWN_OLD_VERSION,
      package: version?.package ?? "",
      revision: version?.revision ?? "",
      infoSupported: true,
    };
  } catch (err) {
    if (!(err instanceof GrpcError) || err.code !== GrpcCode.UNIMPLEMENTED) throw err;
  }
  const workers = await control.call(Control.method.listWorkers, {});
  const version = workers.record.find((w) => w.BuildkitVersion?.version)?.BuildkitVersion;
  return {
    version: version?.version || UNKNOWN_OLD_VERSION,
    package: version?.package ?? "",
    revision: version?.revision ?? "",
    infoSupported: false,
  };
}
