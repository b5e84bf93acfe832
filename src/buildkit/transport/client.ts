// A small gRPC client on node:http2. We do not use @grpc/grpc-js or @connectrpc because shim needs things
// they do not give us together (see README.md): an HTTP/2 session over ANY Duplex (the h2c-upgraded Docker
// socket, `buildctl dial-stdio` through docker exec), repeated request metadata sent as separate header fields,
// a server role on the same kind of Duplex for the reversed session tunnel, and code that runs unchanged in
// Node (vitest) and in the bun-compiled binary.
import http2 from "node:http2";
import type { Duplex } from "node:stream";
import type { DescMessage, DescMethod, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { GrpcCode, GrpcError, type GrpcCodeValue } from "../session/attachable.ts";
import { AsyncQueue } from "./queue.ts";
import { withInitialWindowFix } from "./h2-flow-fix.ts";
import {
  FrameDecoder,
  decodeBinaryHeader,
  decodeGrpcMessage,
  encodeFrame,
  grpcCodeForHttpStatus,
  parseGrpcStatus,
} from "./framing.ts";

/** Request metadata as (name, value) pairs; a name may repeat and each pair becomes its own header field. */
export type MetadataPairs = ReadonlyArray<readonly [string, string]>;

export interface CallOptions {
  metadata?: MetadataPairs;
  /** Aborting cancels the call: RST_STREAM(CANCEL), which grpc-go turns into a cancelled server context. */
  signal?: AbortSignal;
}

export interface BidiCall {
  /** Sends one message; resolves once HTTP/2 flow control lets more through. */
  send(message: Uint8Array): Promise<void>;
  /** Half-closes the request side (the server sees EOF). */
  closeSend(): void;
  /** Response messages; throws GrpcError when the call ends with a non-OK status. */
  readonly responses: AsyncIterable<Uint8Array>;
  cancel(): void;
}

// HTTP/2 flow-control windows stay at their defaults on purpose: a larger per-stream initialWindowSize made Node
// stall when both sides of one stream sent multi-megabyte messages at once, and a larger connection window
// (setLocalWindowSize) stalled Bun's HTTP/2 beyond 64 KiB. Over a local socket the defaults move >1 GB/s.
/** Node's default per-session memory cap (10 MB) is below one maximum-size gRPC message plus buffers. */
export const HTTP2_MAX_SESSION_MEMORY_MB = 64;

/** Resolves when a stream that refused a write can take more, or has closed (then the next write fails). */
export function writable(stream: http2.Http2Stream): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
  });
}

/** Path of a generated method descriptor: `/<package.Service>/<Method>`. */
export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

/** Header values are written as latin1 by Node; send UTF-8 bytes so Go peers read what we meant. */
function toHeaderValue(value: string): string {
  return /^[\x20-\x7e]*$/.test(value) ? value : Buffer.from(value, "utf8").toString("latin1");
}

export class GrpcChannel {
  private sessionError: Error | undefined;

  /**
   * `connection` is the Duplex the session runs on: Bun's HTTP/2 does not close a connection it was handed
   * through createConnection, so we close it ourselves.
   */
  constructor(
    readonly session: http2.ClientHttp2Session,
    private readonly connection?: Duplex,
  ) {
    session.on("error", (err: Error) => (this.sessionError = err));
    // A session without listeners for these would crash the process on a protocol error.
    session.on("goaway", () => undefined);
  }

  /** Starts HTTP/2 (client role, prior knowledge) on an already-connected Duplex. */
  static overDuplex(socket: Duplex, authority = "localhost"): GrpcChannel {
    const connection = withInitialWindowFix(socket, "client");
    const session = http2.connect(`http://${authority}`, {
      createConnection: () => connection,
      maxSessionMemory: HTTP2_MAX_SESSION_MEMORY_MB,
    });
    return new GrpcChannel(session, connection);
  }

  async unary(path: string, request: Uint8Array, options: CallOptions = {}): Promise<Uint8Array> {
    const call = this.start(path, options);
    call.stream.end(encodeFrame(request));
    let response: Uint8Array | undefined;
    for await (const message of call.queue) {
      if (response !== undefined) throw new GrpcError(GrpcCode.INTERNAL, `${path}: more than one response message`);
      response = message;
    }
    if (response === undefined) throw new GrpcError(GrpcCode.INTERNAL, `${path}: no response message`);
    return response;
  }

  serverStream(path: string, request: Uint8Array, options: CallOptions = {}): AsyncIterable<Uint8Array> {
    const call = this.start(path, options);
    call.stream.end(encodeFrame(request));
    return cancelOnEarlyExit(call.queue, call.cancel);
  }

  bidi(path: string, options: CallOptions = {}): BidiCall {
    const call = this.start(path, options);
    const { stream } = call;
    return {
      async send(message) {
        if (stream.destroyed || stream.writableEnded) throw new GrpcError(GrpcCode.CANCELLED, `${path}: call already closed`);
        if (!stream.write(encodeFrame(message))) await writable(stream);
      },
      closeSend() {
        if (!stream.destroyed && !stream.writableEnded) stream.end();
      },
      responses: cancelOnEarlyExit(call.queue, call.cancel),
      cancel: call.cancel,
    };
  }

  /** Typed unary call with a generated method descriptor. */
  async call<I extends DescMessage, O extends DescMessage>(
    method: DescMethod & { input: I; output: O },
    request: MessageInitShape<I>,
    options?: CallOptions,
  ): Promise<MessageShape<O>> {
    const bytes = await this.unary(methodPath(method), toBinary(method.input, create(method.input, request)), options);
    return fromBinary(method.output, bytes) as MessageShape<O>;
  }

  /** Typed server-streaming call with a generated method descriptor. */
  async *stream<I extends DescMessage, O extends DescMessage>(
    method: DescMethod & { input: I; output: O },
    request: MessageInitShape<I>,
    options?: CallOptions,
  ): AsyncGenerator<MessageShape<O>> {
    const input = toBinary(method.input, create(method.input, request));
    for await (const bytes of this.serverStream(methodPath(method), input, options)) {
      yield fromBinary(method.output, bytes) as MessageShape<O>;
    }
  }

  /** Ends the HTTP/2 session gracefully (open calls finish first), then the connection. */
  close(): void {
    if (!this.session.closed) this.session.close(() => this.connection?.destroy());
  }

  /** Tears everything down now. */
  destroy(): void {
    if (!this.session.destroyed) this.session.destroy();
    if (this.connection && !this.connection.destroyed) this.connection.destroy();
  }

  private start(path: string, options: CallOptions) {
    if (this.session.destroyed || this.session.closed) {
      throw new GrpcError(GrpcCode.UNAVAILABLE, `${path}: connection is closed${this.sessionError ? `: ${this.sessionError.message}` : ""}`);
    }
    const headers: http2.OutgoingHttpHeaders = {
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      "user-agent": "shim-grpc/1",
    };
    for (const [rawName, rawValue] of options.metadata ?? []) {
      const name = rawName.toLowerCase();
      const value = toHeaderValue(rawValue);
      const existing = headers[name];
      headers[name] = existing === undefined ? value : [...(Array.isArray(existing) ? existing : [String(existing)]), value];
    }
    const stream = this.session.request(headers, { endStream: false });
    const queue = new AsyncQueue<Uint8Array>({ pause: () => stream.pause(), resume: () => stream.resume() });
    const decoder = new FrameDecoder();
    let responseHeaders: CallEnd["responseHeaders"];
    let trailers: CallEnd["trailers"];
    let streamError: Error | undefined;
    let cancelled = false;

    const cancel = () => {
      if (stream.destroyed || stream.closed) return;
      cancelled = true;
      stream.close(http2.constants.NGHTTP2_CANCEL);
    };
    const onAbort = () => cancel();
    if (options.signal?.aborted) queueMicrotask(cancel);
    else options.signal?.addEventListener("abort", onAbort, { once: true });

    stream.on("response", (headers) => (responseHeaders = headers));
    stream.on("trailers", (headers) => (trailers = headers));
    stream.on("data", (chunk: Buffer) => {
      try {
        for (const message of decoder.push(chunk)) queue.push(message);
      } catch (err) {
        queue.fail(err);
        cancel();
      }
    });
    stream.on("error", (err: Error) => (streamError = err));
    stream.on("close", () => {
      options.signal?.removeEventListener("abort", onAbort);
      const error = callError(path, {
        responseHeaders,
        trailers,
        rstCode: stream.rstCode,
        cancelled,
        streamError: streamError ?? this.sessionError,
        partialFrame: decoder.hasPartialFrame,
      });
      if (error) queue.fail(error);
      else queue.end();
    });
    return { stream, queue, cancel };
  }
}

/** Response headers or trailers as Node hands them over (`:status` is a number). */
type ReceivedHeaders = Readonly<Record<string, string | string[] | number | undefined>>;

interface CallEnd {
  responseHeaders: ReceivedHeaders | undefined;
  trailers: ReceivedHeaders | undefined;
  rstCode: number | undefined;
  cancelled: boolean;
  streamError: Error | undefined;
  partialFrame: boolean;
}

/** Turns how an HTTP/2 stream ended into a gRPC outcome: undefined for OK, else the GrpcError to raise. */
export function callError(path: string, end: CallEnd): GrpcError | undefined {
  // Trailers-only responses carry grpc-status in the response headers.
  const statusHeaders = end.trailers?.["grpc-status"] !== undefined ? end.trailers : end.responseHeaders;
  const code = parseGrpcStatus(headerString(statusHeaders?.["grpc-status"]));
  if (code !== undefined) {
    if (code === GrpcCode.OK) {
      return end.partialFrame ? new GrpcError(GrpcCode.INTERNAL, `${path}: stream ended inside a message`) : undefined;
    }
    const message = decodeGrpcMessage(headerString(statusHeaders?.["grpc-message"]) ?? "");
    const details = headerString(statusHeaders?.["grpc-status-details-bin"]);
    return new GrpcError(code, message || `${path} failed with gRPC status ${code}`, details ? decodeBinaryHeader(details) : undefined);
  }
  if (end.cancelled) return new GrpcError(GrpcCode.CANCELLED, `${path}: cancelled`);
  const httpStatus = Number(end.responseHeaders?.[":status"] ?? 0);
  if (httpStatus !== 0 && httpStatus !== 200) {
    return new GrpcError(grpcCodeForHttpStatus(httpStatus), `${path}: HTTP status ${httpStatus} without a gRPC status`);
  }
  // A broken connection also resets its streams; its own error (e.g. a TLS alert) says more than the reset.
  if (end.streamError) return new GrpcError(GrpcCode.UNAVAILABLE, `${path}: ${end.streamError.message}`);
  if (end.rstCode !== undefined && end.rstCode !== http2.constants.NGHTTP2_NO_ERROR) {
    return new GrpcError(rstCodeToGrpc(end.rstCode), `${path}: stream reset by peer (HTTP/2 error ${end.rstCode})`);
  }
  return new GrpcError(GrpcCode.INTERNAL, `${path}: stream closed without a gRPC status`);
}

function rstCodeToGrpc(code: number): GrpcCodeValue {
  switch (code) {
    case http2.constants.NGHTTP2_REFUSED_STREAM:
      return GrpcCode.UNAVAILABLE;
    case http2.constants.NGHTTP2_CANCEL:
      return GrpcCode.CANCELLED;
    case http2.constants.NGHTTP2_ENHANCE_YOUR_CALM:
      return GrpcCode.RESOURCE_EXHAUSTED;
    case http2.constants.NGHTTP2_INADEQUATE_SECURITY:
      return GrpcCode.PERMISSION_DENIED;
    default:
      return GrpcCode.INTERNAL;
  }
}

function headerString(value: string | string[] | number | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value === undefined ? undefined : String(value);
}

/** Wraps a response queue so that leaving a `for await` loop early cancels the call instead of leaking it. */
function cancelOnEarlyExit<T>(source: AsyncIterable<T>, cancel: () => void): AsyncIterable<T> {
  return {
    async *[Symbol.asyncIterator]() {
      let finished = false;
      try {
        for await (const item of source) yield item;
        finished = true;
      } finally {
        if (!finished) cancel();
      }
    },
  };
}
