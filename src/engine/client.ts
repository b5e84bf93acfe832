// A minimal Docker Engine API client on node:http: JSON requests, and HTTP/1.1 upgrades that hand back the raw
// socket (`/grpc` and `/session` switch to h2c, `/exec/{id}/start` to a raw tcp stream).
import http from "node:http";
import https from "node:https";
import { readFileSync } from "node:fs";
import type { Duplex } from "node:stream";
import type { DockerHost } from "./host.ts";

export interface EngineRequest {
  method: "GET" | "POST" | "PUT" | "DELETE" | "HEAD";
  /** Unversioned path (the daemon then uses its own API version), e.g. `/version`. */
  path: string;
  /** A name may map to several values: each becomes its own header line. */
  headers?: Record<string, string | string[]>;
  /** Sent as JSON unless it is already a Buffer. */
  body?: unknown;
  signal?: AbortSignal;
}

export interface EngineResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A non-2xx answer from the daemon; `message` is the daemon's own text when it sent one. */
export class EngineError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "EngineError";
  }
}

function requestOptions(host: DockerHost, request: EngineRequest, extraHeaders: Record<string, string> = {}): http.RequestOptions {
  const body = encodeBody(request.body);
  const headers: http.OutgoingHttpHeaders = { ...request.headers, ...extraHeaders };
  if (body) {
    headers["content-type"] ??= Buffer.isBuffer(request.body) ? "application/octet-stream" : "application/json";
    headers["content-length"] = String(body.length);
  }
  const options: https.RequestOptions = { method: request.method, path: request.path, headers, agent: false };
  if (request.signal) options.signal = request.signal;
  if (host.kind === "unix") {
    options.socketPath = host.socketPath;
    options.host = "localhost"; // becomes the Host header; dockerd ignores it on the socket
  } else {
    options.host = host.host;
    options.port = host.port;
    if (host.tls) {
      options.ca = readFileSync(host.tls.caFile);
      options.cert = readFileSync(host.tls.certFile);
      options.key = readFileSync(host.tls.keyFile);
      options.rejectUnauthorized = host.tls.verify;
    }
  }
  return options;
}

function encodeBody(body: unknown): Buffer | undefined {
  if (body === undefined) return undefined;
  return Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
}

function send(host: DockerHost, options: http.RequestOptions): http.ClientRequest {
  return host.kind === "tcp" && host.tls ? https.request(options) : http.request(options);
}

/** One request, whole response body buffered. */
export function engineRequest(host: DockerHost, request: EngineRequest): Promise<EngineResponse> {
  return new Promise((resolve, reject) => {
    const req = send(host, requestOptions(host, request));
    req.on("error", reject);
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("error", reject);
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.end(encodeBody(request.body));
  });
}

/** A request whose 2xx answer is JSON; anything else becomes an EngineError with the daemon's message. */
export async function engineJson<T>(host: DockerHost, request: EngineRequest): Promise<T> {
  const response = await engineRequest(host, request);
  if (response.status < 200 || response.status > 299) throw engineErrorFrom(request, response);
  return (response.body.length > 0 ? JSON.parse(response.body.toString("utf8")) : undefined) as T;
}

function engineErrorFrom(request: EngineRequest, response: EngineResponse): EngineError {
  const text = response.body.toString("utf8").trim();
  let message = text;
  try {
    const parsed = JSON.parse(text) as { message?: unknown };
    if (typeof parsed.message === "string") message = parsed.message;
  } catch {
    // Not JSON: keep the text as it is.
  }
  return new EngineError(response.status, `${request.method} ${request.path}: ${message || `HTTP ${response.status}`}`);
}

/**
 * Sends `Connection: Upgrade` + `Upgrade: <protocol>` and, on `101`, returns the raw socket with any bytes that
 * arrived together with the 101 pushed back. dockerd sends its HTTP/2 SETTINGS (or, for /session, the HTTP/2
 * preface) in the same read as the 101, so the socket is paused BEFORE unshift: a flowing socket would emit the
 * pushed-back bytes to nobody. The caller's consumer resumes it.
 */
export function engineUpgrade(host: DockerHost, request: EngineRequest, protocol: "h2c" | "tcp"): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const req = send(host, requestOptions(host, request, { connection: "Upgrade", upgrade: protocol }));
    req.on("error", reject);
    req.on("upgrade", (res: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.pause();
      if (head.length > 0) socket.unshift(head);
      if (res.statusCode !== 101) {
        socket.destroy();
        reject(new EngineError(res.statusCode ?? 0, `${request.method} ${request.path}: upgrade answered ${res.statusCode}`));
        return;
      }
      if ("setNoDelay" in socket && typeof socket.setNoDelay === "function") socket.setNoDelay(true);
      resolve(socket);
    });
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () =>
        reject(engineErrorFrom(request, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) })),
      );
    });
    req.end(encodeBody(request.body));
  });
}
