// Where the Docker Engine API lives: DOCKER_HOST (unix:// or tcp://; TLS when DOCKER_TLS or DOCKER_TLS_VERIFY is
// set, certificates from DOCKER_CERT_PATH or ~/.docker, as the docker CLI reads them) or the default socket.
// Pure: the environment is passed in.
import { join } from "node:path";

export const DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock";

export type DockerHost =
  | { kind: "unix"; url: string; socketPath: string }
  | { kind: "tcp"; url: string; host: string; port: number; tls?: DockerTls };

export interface DockerTls {
  /** Verify the daemon's certificate against `caFile` (DOCKER_TLS_VERIFY); otherwise encrypt without verifying. */
  verify: boolean;
  caFile: string;
  certFile: string;
  keyFile: string;
}

/** Parses a DOCKER_HOST-style URL. `env` supplies DOCKER_TLS_VERIFY, DOCKER_CERT_PATH and HOME for tcp://. */
export function parseDockerHost(url: string, env: Readonly<Record<string, string | undefined>> = {}): DockerHost {
  if (url.startsWith("unix://")) {
    const socketPath = url.slice("unix://".length);
    if (!socketPath) throw new Error(`invalid Docker host ${url}: empty socket path`);
    return { kind: "unix", url, socketPath };
  }
  if (url.startsWith("tcp://")) {
    const parsed = new URL(url.replace(/^tcp:/, "http:"));
    const verify = (env.DOCKER_TLS_VERIFY ?? "") !== "";
    const useTls = verify || (env.DOCKER_TLS ?? "") !== "";
    const port = parsed.port ? Number(parsed.port) : useTls ? 2376 : 2375;
    const host: DockerHost = { kind: "tcp", url, host: parsed.hostname, port };
    if (useTls) {
      const certDir = env.DOCKER_CERT_PATH || join(env.HOME ?? "", ".docker");
      host.tls = {
        verify,
        caFile: join(certDir, "ca.pem"),
        certFile: join(certDir, "cert.pem"),
        keyFile: join(certDir, "key.pem"),
      };
    }
    return host;
  }
  throw new Error(`unsupported Docker host ${url}: only unix:// and tcp:// are supported`);
}

/** DOCKER_HOST from the environment, else the default socket. */
export function dockerHostFromEnv(env: Readonly<Record<string, string | undefined>>): DockerHost {
  return parseDockerHost(env.DOCKER_HOST || DEFAULT_DOCKER_HOST, env);
}
