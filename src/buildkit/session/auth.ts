// moby.filesync.v1.Auth for the session: registry credentials from the docker CLI's config.json
// ($DOCKER_CONFIG/config.json, default ~/.docker/config.json) and its credential helpers, so pulls and pushes
// inside the build authenticate like `docker build` does. Only Credentials is implemented; the token-authority
// RPCs answer UNIMPLEMENTED, which BuildKit treats as "no client-side token authority".
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Auth, CredentialsRequestSchema, CredentialsResponseSchema } from "../proto/gen/buildkit/auth_pb.ts";
import { methodPath } from "../transport/client.ts";
import { GrpcCode, GrpcError, type Attachable, type Handler } from "./attachable.ts";

/** The config-file key of Docker Hub, whatever host name the daemon asks about. */
export const DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/";
const DOCKER_HUB_HOSTS = new Set(["registry-1.docker.io", "docker.io", "index.docker.io"]);

/** The parts of config.json that matter for credentials. */
export interface DockerConfigFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

export interface Credentials {
  username: string;
  secret: string;
}

export const ANONYMOUS: Credentials = { username: "", secret: "" };

/** How to find the credentials for one host, in order of preference. */
export type CredentialSource =
  | { kind: "helper"; helper: string; serverUrl: string }
  | { kind: "inline"; credentials: Credentials };

/** Strips scheme and path, as the docker CLI does when it matches config keys to a registry host. */
function keyHostname(key: string): string {
  return key.replace(/^https?:\/\//, "").split("/")[0]!;
}

/**
 * Pure: where the credentials for `host` come from — a helper (credHelpers entry, else credsStore) first, then an
 * inline `auths` entry (which a helper that has nothing for the host falls back to). [] means anonymous.
 */
export function credentialSources(config: DockerConfigFile, host: string): CredentialSource[] {
  const isHub = DOCKER_HUB_HOSTS.has(host);
  const serverUrl = isHub ? DOCKER_HUB_CONFIG_KEY : host;
  const sources: CredentialSource[] = [];
  const helper =
    config.credHelpers?.[serverUrl] ?? config.credHelpers?.[keyHostname(serverUrl)] ?? (config.credsStore || undefined);
  if (helper) sources.push({ kind: "helper", helper, serverUrl });
  const auths = config.auths ?? {};
  const key = serverUrl in auths ? serverUrl : Object.keys(auths).find((k) => keyHostname(k) === keyHostname(serverUrl));
  const entry = key !== undefined ? auths[key] : undefined;
  if (entry) {
    const credentials = inlineCredentials(entry);
    if (credentials.secret) sources.push({ kind: "inline", credentials });
  }
  return sources;
}

function inlineCredentials(entry: NonNullable<DockerConfigFile["auths"]>[string]): Credentials {
  // BuildKit sends an identity token as the secret with no user name (authprovider toCredentials).
  if (entry.identitytoken) return { username: "", secret: entry.identitytoken };
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon > 0) return { username: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
  }
  return { username: entry.username ?? "", secret: entry.password ?? "" };
}

/** Interprets `docker-credential-* get` output; a `<token>` user name marks an identity token. */
export function parseHelperOutput(stdout: string): Credentials {
  const parsed = JSON.parse(stdout) as { Username?: string; Secret?: string };
  const username = parsed.Username ?? "";
  const secret = parsed.Secret ?? "";
  return username === "<token>" ? { username: "", secret } : { username, secret };
}

/** The config.json the docker CLI would read; undefined when there is none. Throws on unreadable JSON. */
export function loadDockerConfig(env: Readonly<Record<string, string | undefined>>): DockerConfigFile | undefined {
  const dir = env.DOCKER_CONFIG || join(env.HOME ?? "", ".docker");
  let text: string;
  try {
    text = readFileSync(join(dir, "config.json"), "utf8");
  } catch {
    return undefined;
  }
  try {
    return JSON.parse(text) as DockerConfigFile;
  } catch (err) {
    throw new GrpcError(GrpcCode.UNKNOWN, `cannot parse ${join(dir, "config.json")}: ${(err as Error).message}`);
  }
}

const HELPER_TIMEOUT_MS = 60_000;

/** Runs `docker-credential-<helper> get` with the server URL on stdin; undefined when it has no entry. */
export function runCredentialHelper(
  helper: string,
  serverUrl: string,
  env: Readonly<Record<string, string | undefined>>,
): Promise<Credentials | undefined> {
  return new Promise((resolve, reject) => {
    const program = `docker-credential-${helper}`;
    const child = spawn(program, ["get"], { stdio: ["pipe", "pipe", "pipe"], env: env as NodeJS.ProcessEnv });
    const out: Buffer[] = [];
    const timer = setTimeout(() => child.kill("SIGKILL"), HELPER_TIMEOUT_MS);
    child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr.resume();
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(new GrpcError(GrpcCode.UNAVAILABLE, `credential helper ${program}: ${err.message}`));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString("utf8").trim();
      if (code === 0) {
        try {
          resolve(parseHelperOutput(stdout));
        } catch {
          reject(new GrpcError(GrpcCode.UNKNOWN, `credential helper ${program} printed invalid JSON`));
        }
        return;
      }
      // The helper protocol reports a missing entry as this text on stdout with a failing exit status.
      if (/credentials not found/i.test(stdout)) resolve(undefined);
      else reject(new GrpcError(GrpcCode.UNKNOWN, `credential helper ${program} failed (exit ${code})${stdout ? `: ${stdout}` : ""}`));
    });
    child.stdin.on("error", () => undefined); // a helper that exits without reading stdin
    child.stdin.end(serverUrl);
  });
}

/** Looks the credentials for `host` up through every source in turn; anonymous when none has them. */
export async function lookupCredentials(host: string, env: Readonly<Record<string, string | undefined>>): Promise<Credentials> {
  const config = loadDockerConfig(env);
  if (!config) return ANONYMOUS;
  for (const source of credentialSources(config, host)) {
    if (source.kind === "inline") return source.credentials;
    const found = await runCredentialHelper(source.helper, source.serverUrl, env);
    if (found && found.secret) return found;
  }
  return ANONYMOUS;
}

const unimplemented: Handler = async (call) => {
  throw new GrpcError(GrpcCode.UNIMPLEMENTED, `${call.method} is not offered by this client`);
};

export interface AuthOptions {
  env?: Readonly<Record<string, string | undefined>>;
}

export function authAttachable(options: AuthOptions = {}): Attachable {
  const env = options.env ?? process.env;
  return {
    methods: {
      [methodPath(Auth.method.credentials)]: async (call) => {
        let host = "";
        for await (const message of call.requests) host = fromBinary(CredentialsRequestSchema, message).Host;
        const found = await lookupCredentials(host, env);
        await call.send(toBinary(CredentialsResponseSchema, create(CredentialsResponseSchema, { Username: found.username, Secret: found.secret })));
      },
      [methodPath(Auth.method.fetchToken)]: unimplemented,
      [methodPath(Auth.method.getTokenAuthority)]: unimplemented,
      [methodPath(Auth.method.verifyTokenAuthority)]: unimplemented,
    },
  };
}
