// The Docker daemon as a build output: `POST /images/load` fed with the docker exporter's tarball as it arrives
// (never buffered whole), `POST /images/{name}/push` for `--push` when dockerd's own BuildKit built the image,
// and the image size for the summary. src/engine/client.ts has no streaming request body, so the few lines of
// request set-up for one live here.
import http from "node:http";
import https from "node:https";
import { readFileSync } from "node:fs";
import { engineJson } from "../../engine/client.ts";
import { parseDockerHost, type DockerHost } from "../../engine/host.ts";
import { lookupCredentials } from "../session/auth.ts";

type Env = Readonly<Record<string, string | undefined>>;

function streamingRequest(host: DockerHost, method: "POST", path: string, headers: Record<string, string>): http.ClientRequest {
  const options: https.RequestOptions = { method, path, headers, agent: false };
  if (host.kind === "unix") {
    options.socketPath = host.socketPath;
    options.host = "localhost";
    return http.request(options);
  }
  options.host = host.host;
  options.port = host.port;
  if (!host.tls) return http.request(options);
  options.ca = readFileSync(host.tls.caFile);
  options.cert = readFileSync(host.tls.certFile);
  options.key = readFileSync(host.tls.keyFile);
  options.rejectUnauthorized = host.tls.verify;
  return https.request(options);
}

/**
 * Reads a Docker JSON-message stream (`{"stream": …}`, `{"status": …}`, `{"error": …, "errorDetail": …}` per
 * line) and rejects on the first error message; resolves with the `stream`/`status`/`aux` messages.
 */
function readJsonMessages(res: http.IncomingMessage, what: string): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on("data", (chunk: Buffer) => chunks.push(chunk));
    res.on("error", reject);
    res.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) > 299) {
        let message = text.trim();
        try {
          message = (JSON.parse(text) as { message?: string }).message ?? message;
        } catch {
          // plain text error
        }
        reject(new Error(`${what}: ${message || `HTTP ${res.statusCode}`}`));
        return;
      }
      const messages: Record<string, unknown>[] = [];
      for (const line of text.split("\n")) {
        if (!line.trim()) continue;
        let message: Record<string, unknown>;
        try {
          message = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        const detail = (message.errorDetail as { message?: string } | undefined)?.message;
        if (message.error || detail) {
          reject(new Error(`${what}: ${detail ?? String(message.error)}`));
          return;
        }
        messages.push(message);
      }
      resolve(messages);
    });
  });
}

export interface ImageLoad {
  /** Write the docker-format tarball here; end it when the export is complete. */
  readonly body: http.ClientRequest;
  /** Resolves once the daemon has loaded the image (with the names it reports), rejects with its error. */
  readonly done: Promise<string[]>;
}

/** Starts `POST /images/load` with a chunked body; the daemon reads the tarball while the export streams. */
export function startImageLoad(host: DockerHost): ImageLoad {
  const req = streamingRequest(host, "POST", "/images/load?quiet=1", { "content-type": "application/x-tar" });
  const done = new Promise<string[]>((resolve, reject) => {
    req.on("error", (err) => reject(new Error(`loading the image into the Docker daemon (${host.url}): ${err.message}`)));
    req.on("response", (res) => {
      readJsonMessages(res, "loading the image into the Docker daemon").then((messages) => {
        const loaded: string[] = [];
        for (const m of messages) {
          const text = typeof m.stream === "string" ? m.stream : "";
          const match = /^Loaded image(?: ID)?: (.+)$/m.exec(text);
          if (match) loaded.push(match[1]!.trim());
        }
        resolve(loaded);
      }, reject);
    });
  });
  done.catch(() => undefined); // observed by the caller; never an unhandled rejection meanwhile
  return { body: req, done };
}

/** Splits `host:5000/repo/name:tag` into the repository and tag (`latest` when absent), dropping a digest. */
export function splitImageName(name: string): { repository: string; tag: string } {
  const withoutDigest = name.split("@")[0]!;
  const colon = withoutDigest.lastIndexOf(":");
  if (colon > withoutDigest.lastIndexOf("/")) return { repository: withoutDigest.slice(0, colon), tag: withoutDigest.slice(colon + 1) };
  return { repository: withoutDigest, tag: "latest" };
}

/** The registry host of a reference, as the docker CLI decides it (`docker.io` for short names). */
export function registryHost(repository: string): string {
  const slash = repository.indexOf("/");
  if (slash === -1) return "docker.io";
  const first = repository.slice(0, slash);
  return first.includes(".") || first.includes(":") || first === "localhost" ? first : "docker.io";
}

/** Pushes one image the daemon holds (what `docker push` does), with credentials from the docker config. */
export async function pushImage(host: DockerHost, name: string, env: Env): Promise<void> {
  const { repository, tag } = splitImageName(name);
  const registry = registryHost(repository);
  const credentials = await lookupCredentials(registry === "docker.io" ? "registry-1.docker.io" : registry, env).catch(() => undefined);
  const auth = Buffer.from(
    JSON.stringify(credentials?.secret ? { username: credentials.username, password: credentials.secret, serveraddress: registry } : {}),
  ).toString("base64url");
  const req = streamingRequest(host, "POST", `/images/${encodeURIComponent(repository)}/push?tag=${encodeURIComponent(tag)}`, {
    "x-registry-auth": auth,
  });
  await new Promise<void>((resolve, reject) => {
    req.on("error", (err) => reject(new Error(`pushing ${name} through the Docker daemon: ${err.message}`)));
    req.on("response", (res) => readJsonMessages(res, `pushing ${name}`).then(() => resolve(), reject));
    req.end();
  });
}

/** The image's size as the daemon reports it (`docker image inspect`), or undefined when it cannot tell. */
export async function imageSize(host: DockerHost, id: string): Promise<number | undefined> {
  try {
    const image = await engineJson<{ Size?: number }>(host, { method: "GET", path: `/images/${encodeURIComponent(id)}/json` });
    return typeof image.Size === "number" ? image.Size : undefined;
  } catch {
    return undefined;
  }
}

/** The daemon a BuildKit connection goes through (`docker (unix:///…)`), else DOCKER_HOST / the default socket. */
export function dockerHostFor(connectionAddress: string, env: Env): DockerHost {
  const match = /^docker \((.+)\)$/.exec(connectionAddress);
  return parseDockerHost(match ? match[1]! : env.DOCKER_HOST || "unix:///var/run/docker.sock", env);
}
