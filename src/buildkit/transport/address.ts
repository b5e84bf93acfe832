// Which BuildKit endpoints to try, in order, and how each address string is understood. Pure: environment and
// file checks are passed in, so the plan has table tests.
import { join } from "node:path";
import { DEFAULT_DOCKER_HOST } from "../../engine/host.ts";

/** buildkitd's default listener when it runs as root (moby/buildkit util/appdefaults). */
export const DEFAULT_BUILDKIT_SOCKET = "unix:///run/buildkit/buildkitd.sock";

export type BuildkitAddress =
  | { kind: "unix"; address: string; socketPath: string }
  | { kind: "tcp"; address: string; host: string; port: number }
  | { kind: "docker-container"; address: string; container: string }
  /** BuildKit embedded in dockerd, reached with the Engine API's `/grpc` and `/session` upgrades. */
  | { kind: "docker"; address: string; dockerHost: string };

export type CandidateSource = "option" | "BUILDKIT_HOST" | "default socket" | "docker daemon";

export interface Candidate {
  target: BuildkitAddress;
  source: CandidateSource;
}

/**
 * Parses an address as buildctl's `--addr` does, plus shim's own forms for the Docker daemon:
 * `docker` (DOCKER_HOST or the default socket) and `docker+unix:///path` / `docker+tcp://host:port`.
 */
export function parseBuildkitAddress(address: string, dockerHostDefault: string = DEFAULT_DOCKER_HOST): BuildkitAddress {
  if (address.startsWith("unix://")) {
    const socketPath = address.slice("unix://".length);
    if (!socketPath) throw new Error(`invalid BuildKit address ${address}: empty socket path`);
    return { kind: "unix", address, socketPath };
  }
  if (address.startsWith("tcp://")) {
    const url = new URL(address.replace(/^tcp:/, "http:"));
    if (!url.port) throw new Error(`invalid BuildKit address ${address}: a port is required`);
    return { kind: "tcp", address, host: url.hostname.replace(/^\[(.*)\]$/, "$1"), port: Number(url.port) };
  }
  if (address.startsWith("docker-container://")) {
    const url = new URL(address);
    if (!url.hostname) throw new Error(`invalid BuildKit address ${address}: no container name`);
    if (url.searchParams.get("context")) {
      throw new Error(`BuildKit address ${address}: docker contexts are not supported; set DOCKER_HOST instead`);
    }
    return { kind: "docker-container", address, container: url.hostname };
  }
  if (address === "docker") return { kind: "docker", address, dockerHost: dockerHostDefault };
  if (address.startsWith("docker+")) {
    const dockerHost = address.slice("docker+".length);
    return { kind: "docker", address, dockerHost };
  }
  throw new Error(
    `unsupported BuildKit address ${address}: use unix://, tcp://, docker-container://, docker or docker+<DOCKER_HOST>`,
  );
}

/**
 * The endpoints to try. An address the user named (option, then BUILDKIT_HOST) is the only candidate: falling
 * back silently would build on a different daemon with a different cache. Otherwise: the rootful default
 * socket, the rootless one under $XDG_RUNTIME_DIR, then the Docker daemon.
 */
export function planCandidates(
  explicitAddress: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  dockerHostOverride?: string,
): Candidate[] {
  const dockerHost = dockerHostOverride || env.DOCKER_HOST || DEFAULT_DOCKER_HOST;
  if (explicitAddress) return [{ target: parseBuildkitAddress(explicitAddress, dockerHost), source: "option" }];
  if (env.BUILDKIT_HOST) return [{ target: parseBuildkitAddress(env.BUILDKIT_HOST, dockerHost), source: "BUILDKIT_HOST" }];
  const candidates: Candidate[] = [{ target: parseBuildkitAddress(DEFAULT_BUILDKIT_SOCKET), source: "default socket" }];
  const runtimeDir = env.XDG_RUNTIME_DIR?.split(":")[0];
  if (runtimeDir) {
    const rootless = `unix://${join(runtimeDir, "buildkit", "buildkitd.sock")}`;
    if (rootless !== DEFAULT_BUILDKIT_SOCKET) {
      candidates.push({ target: parseBuildkitAddress(rootless), source: "default socket" });
    }
  }
  candidates.push({ target: { kind: "docker", address: "docker", dockerHost }, source: "docker daemon" });
  return candidates;
}

export interface TlsFileOptions {
  caCert?: string;
  cert?: string;
  key?: string;
  /** A directory with ca.pem/cert.pem/key.pem or ca.crt/tls.crt/tls.key (buildctl --tlsdir). */
  dir?: string;
  /** Name to verify the server certificate against; defaults to the address's host. */
  serverName?: string;
}

/** buildctl's --tlsdir lookup: for each file the first existing name wins; a missing one is an error. */
export function resolveTlsDir(dir: string, exists: (path: string) => boolean): { caCert: string; cert: string; key: string } {
  const pick = (either: string, or: string) => {
    for (const name of [either, or]) if (exists(join(dir, name))) return join(dir, name);
    throw new Error(`TLS directory ${dir} does not contain ${either} or ${or}`);
  };
  return { caCert: pick("ca.pem", "ca.crt"), cert: pick("cert.pem", "tls.crt"), key: pick("key.pem", "tls.key") };
}
