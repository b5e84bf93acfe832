// The contract between the session server (which speaks HTTP/2 + gRPC framing inside the tunnel) and the
// services the shim offers to the daemon (FileSync, FileSend, Content, Auth, Secrets, Health), each of which
// lives in its own module, like BuildKit's own "attachables".

/** gRPC status codes (all of them: the client side of the transport reports whatever the daemon sends). */
export const GrpcCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type GrpcCodeValue = (typeof GrpcCode)[keyof typeof GrpcCode];

/**
 * Thrown by a handler to end its call with a non-OK gRPC status; also what the gRPC client rejects with when a
 * call ends with a non-OK status (then `statusDetails` holds the raw `grpc-status-details-bin`, a google.rpc.Status).
 */
export class GrpcError extends Error {
  constructor(
    readonly code: GrpcCodeValue,
    message: string,
    readonly statusDetails?: Uint8Array,
  ) {
    super(message);
    this.name = "GrpcError";
  }
}

/** Request metadata as the daemon sent it: repeated fields kept apart, values decoded to UTF-8. */
export interface Metadata {
  /** All values of a (lower-case) key, in order; [] when absent. */
  all(key: string): string[];
  /** The first value of a key, or undefined. */
  first(key: string): string | undefined;
}

/** One incoming call on the session server. Messages are raw protobuf bytes; handlers decode them. */
export interface ServerCall {
  readonly method: string; // "/moby.filesync.v1.FileSync/DiffCopy"
  readonly metadata: Metadata;
  /** Incoming request messages (one for unary calls). Ends when the daemon half-closes. */
  readonly requests: AsyncIterable<Uint8Array>;
  /** Sends one response message; resolves when the transport can take more (backpressure). */
  send(message: Uint8Array): Promise<void>;
  /** Aborted when the daemon cancels the call or the session ends. */
  readonly signal: AbortSignal;
}

/** Handles one call; resolving ends it with OK, throwing GrpcError ends it with that status. */
export type Handler = (call: ServerCall) => Promise<void>;

/** A session service: full method path → handler. Every path is advertised in the session headers. */
export interface Attachable {
  readonly methods: Readonly<Record<string, Handler>>;
}
