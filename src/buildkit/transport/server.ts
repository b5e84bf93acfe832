// The server half of our gRPC layer: inside a BuildKit session the daemon is the HTTP/2 client and shim serves
// the attachables (FileSync, Auth, Health, …) on a Duplex that is either the h2c-upgraded Docker socket or a
// tunnel made of Control.Session messages.
import http2 from "node:http2";
import type { Duplex } from "node:stream";
import { GrpcCode, GrpcError, type Attachable, type Handler, type ServerCall } from "../session/attachable.ts";
import { AsyncQueue } from "./queue.ts";
import { FrameDecoder, encodeFrame, encodeGrpcMessage, metadataFromRawHeaders } from "./framing.ts";
import { HTTP2_MAX_SESSION_MEMORY_MB, writable } from "./client.ts";
import { withInitialWindowFix } from "./h2-flow-fix.ts";

export interface ServedConnection {
  /** Resolves when the daemon's HTTP/2 session on this connection has ended. */
  readonly closed: Promise<void>;
  /** Graceful end: GOAWAY, let running calls finish, then end the connection's write side. */
  close(): void;
  /** Aborts every running handler and tears the HTTP/2 session down. */
  destroy(): void;
}

export interface ServeOptions {
  /** Reports handler failures and protocol errors (the CLI shows them under --debug). */
  onError?: (error: Error, method?: string) => void;
  /** Every incoming call's method path, before dispatch (for --debug traces and tests). */
  onCall?: (method: string) => void;
}

/** All method paths → handlers of a set of attachables; a path offered twice is a programming error. */
export function methodTable(attachables: readonly Attachable[]): Map<string, Handler> {
  const table = new Map<string, Handler>();
  for (const attachable of attachables) {
    for (const [path, handler] of Object.entries(attachable.methods)) {
      if (table.has(path)) throw new Error(`session method ${path} is offered by two attachables`);
      table.set(path, handler);
    }
  }
  return table;
}

/**
 * Serves gRPC on `connection` (we are the HTTP/2 server; the peer sends the preface). Bytes the caller already
 * read past an HTTP upgrade must have been pushed back with `pause()` then `unshift()` before this call.
 */
export function serveGrpc(socket: Duplex, methods: ReadonlyMap<string, Handler>, options: ServeOptions = {}): ServedConnection {
  const connection = withInitialWindowFix(socket, "server");
  const server = http2.createServer({ maxSessionMemory: HTTP2_MAX_SESSION_MEMORY_MB });
  const controllers = new Set<AbortController>();
  let session: http2.ServerHttp2Session | undefined;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  const finish = () => {
    for (const controller of controllers) controller.abort(new GrpcError(GrpcCode.CANCELLED, "session closed"));
    resolveClosed();
  };

  server.on("session", (s: http2.ServerHttp2Session) => {
    session = s;
    s.on("error", (err: Error) => options.onError?.(err));
    s.on("close", finish);
  });
  server.on("sessionError", (err: Error) => options.onError?.(err));
  server.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
    const path = String(headers[":path"] ?? "");
    options.onCall?.(path);
    const handler = methods.get(path);
    if (!handler) {
      respondWithStatus(stream, GrpcCode.UNIMPLEMENTED, `unknown method ${path}`);
      return;
    }
    const controller = new AbortController();
    controllers.add(controller);
    runHandler(stream, path, rawHeaders, handler, controller, options)
      .catch((err: unknown) => options.onError?.(err instanceof Error ? err : new Error(String(err)), path))
      .finally(() => controllers.delete(controller));
  });
  connection.on("close", finish);
  connection.on("error", (err: Error) => options.onError?.(err));

  server.emit("connection", connection);
  // Bun's HTTP/2 server reads only from 'data' events and ignores what is already buffered: resume so bytes
  // pushed back after an HTTP upgrade are delivered (Node's stack reads the buffer itself, resume is harmless).
  connection.resume();

  return {
    closed,
    close() {
      const endConnection = () => {
        if (!connection.destroyed && !connection.writableEnded) connection.end();
      };
      if (session && !session.closed) session.close(endConnection);
      else endConnection();
    },
    destroy() {
      if (session && !session.destroyed) session.destroy();
      if (!connection.destroyed) connection.destroy();
      finish();
    },
  };
}

function respondWithStatus(stream: http2.ServerHttp2Stream, code: number, message: string): void {
  if (stream.destroyed || stream.closed) return;
  // "Trailers-only" response: the status travels in the only HEADERS frame.
  stream.respond(
    { ":status": 200, "content-type": "application/grpc", "grpc-status": String(code), "grpc-message": encodeGrpcMessage(message) },
    { endStream: true },
  );
}

async function runHandler(
  stream: http2.ServerHttp2Stream,
  method: string,
  rawHeaders: string[],
  handler: Handler,
  controller: AbortController,
  options: ServeOptions,
): Promise<void> {
  const requests = new AsyncQueue<Uint8Array>({ pause: () => stream.pause(), resume: () => stream.resume() });
  const decoder = new FrameDecoder();
  let finished = false;
  stream.on("data", (chunk: Buffer) => {
    try {
      for (const message of decoder.push(chunk)) requests.push(message);
    } catch (err) {
      requests.fail(err);
    }
  });
  stream.on("end", () =>
    decoder.hasPartialFrame ? requests.fail(new GrpcError(GrpcCode.INTERNAL, "request ended inside a message")) : requests.end(),
  );
  stream.on("error", () => undefined); // the 'close' below reports what matters
  stream.on("close", () => {
    requests.fail(new GrpcError(GrpcCode.CANCELLED, "call closed by the daemon"));
    if (!finished) controller.abort(new GrpcError(GrpcCode.CANCELLED, "call cancelled by the daemon"));
  });

  // The daemon may already have cancelled the call (e.g. a build failing elsewhere): nothing to answer then.
  if (stream.destroyed || stream.closed) return;
  stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
  const call: ServerCall = {
    method,
    metadata: metadataFromRawHeaders(rawHeaders),
    requests,
    signal: controller.signal,
    async send(message) {
      if (stream.destroyed || stream.closed || stream.writableEnded) {
        throw new GrpcError(GrpcCode.CANCELLED, "call closed by the daemon");
      }
      if (!stream.write(encodeFrame(message))) await writable(stream);
    },
  };

  let code: number = GrpcCode.OK;
  let message = "";
  try {
    await handler(call);
  } catch (err) {
    if (err instanceof GrpcError) {
      code = err.code;
      message = err.message;
    } else {
      code = GrpcCode.UNKNOWN;
      message = err instanceof Error ? err.message : String(err);
      options.onError?.(err instanceof Error ? err : new Error(message), method);
    }
  }
  finished = true;
  if (stream.destroyed || stream.closed) return;
  const trailers: http2.OutgoingHttpHeaders = { "grpc-status": String(code) };
  if (message) trailers["grpc-message"] = encodeGrpcMessage(message);
  stream.once("wantTrailers", () => {
    if (!stream.destroyed && !stream.closed) stream.sendTrailers(trailers);
  });
  stream.end();
}
