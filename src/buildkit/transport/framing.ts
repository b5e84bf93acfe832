// gRPC over HTTP/2 wire details shared by the client and the session server: the 5-byte length prefix,
// the `grpc-message` percent-encoding, and how header values are turned back into UTF-8 metadata.
import { GrpcCode, GrpcError, type GrpcCodeValue, type Metadata } from "../session/attachable.ts";

/** The largest message either side accepts; BuildKit's server and Go client use 16 MiB (containerd's default). */
export const MAX_MESSAGE_BYTES = 16 << 20;

/** One gRPC message on the wire: flag 0 (uncompressed), 4-byte big-endian length, payload. */
export function encodeFrame(message: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + message.length);
  frame[0] = 0;
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/** Splits a byte stream into gRPC messages; chunks may cut frames anywhere. */
export class FrameDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly maxMessageBytes = MAX_MESSAGE_BYTES) {}

  /** Feeds one chunk and returns every message it completes. Throws GrpcError on oversize or compressed frames. */
  push(chunk: Uint8Array): Uint8Array[] {
    if (chunk.length === 0) return [];
    this.pending.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.pendingBytes += chunk.length;
    const messages: Uint8Array[] = [];
    while (this.pendingBytes >= 5) {
      const head = this.peek(5);
      if (head[0] !== 0) {
        throw new GrpcError(GrpcCode.INTERNAL, "compressed gRPC message received, but no compression was negotiated");
      }
      const length = head.readUInt32BE(1);
      if (length > this.maxMessageBytes) {
        throw new GrpcError(
          GrpcCode.RESOURCE_EXHAUSTED,
          `gRPC message of ${length} bytes exceeds the limit of ${this.maxMessageBytes} bytes`,
        );
      }
      if (this.pendingBytes < 5 + length) break;
      const frame = this.take(5 + length);
      messages.push(frame.subarray(5));
    }
    return messages;
  }

  /** True when a frame was started but not finished (the stream ended mid-message). */
  get hasPartialFrame(): boolean {
    return this.pendingBytes > 0;
  }

  private peek(n: number): Buffer {
    if (this.pending[0]!.length < n) this.pending = [Buffer.concat(this.pending)];
    return this.pending[0]!.subarray(0, n);
  }

  private take(n: number): Buffer {
    const all = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.pending = rest.length > 0 ? [rest] : [];
    this.pendingBytes = rest.length;
    return out;
  }
}

/** `grpc-message` encoding (gRPC HTTP/2 spec): bytes outside printable ASCII, and '%', become %XX of the UTF-8. */
export function encodeGrpcMessage(message: string): string {
  let out = "";
  for (const byte of Buffer.from(message, "utf8")) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** Inverse of encodeGrpcMessage; malformed escapes are kept literally, as the spec asks. */
export function decodeGrpcMessage(value: string): string {
  return percentDecode(latin1ToUtf8(value));
}

/** %XX → that byte; other characters → their UTF-8 bytes; the result is read as UTF-8. */
function percentDecode(value: string): string {
  const parts: Buffer[] = [];
  let literalStart = 0;
  for (let i = 0; i < value.length; i++) {
    if (value[i] !== "%" || !/^[0-9a-fA-F]{2}$/.test(value.slice(i + 1, i + 3))) continue;
    parts.push(Buffer.from(value.slice(literalStart, i), "utf8"), Buffer.of(parseInt(value.slice(i + 1, i + 3), 16)));
    i += 2;
    literalStart = i + 1;
  }
  parts.push(Buffer.from(value.slice(literalStart), "utf8"));
  return Buffer.concat(parts).toString("utf8");
}

/**
 * HTTP/2 stacks in Node and Bun decode header bytes as latin1, while Go peers send raw UTF-8 (e.g. `ö.txt`
 * arrives as `Ã¶.txt`). Re-decode when the value is a latin1 view of valid UTF-8; leave anything else alone.
 */
export function latin1ToUtf8(value: string): string {
  if (!/[\u0080-\u00ff]/.test(value) || /[^\u0000-\u00ff]/.test(value)) return value;
  const bytes = Buffer.from(value, "latin1");
  const decoded = new TextDecoder("utf-8", { fatal: false }).decode(bytes);
  return decoded.includes("\ufffd") ? value : decoded;
}

/** Go's url.QueryUnescape: '+' is a space, %XX a byte; the bytes are UTF-8. */
export function queryUnescape(value: string): string {
  return percentDecode(value.replace(/\+/g, " "));
}

/**
 * Builds request metadata from the flat [name, value, name, value, …] list Node/Bun hand to a 'stream' listener
 * (`rawHeaders`), so repeated fields stay apart (the `headers` object would join them with ", ").
 * Pseudo-headers are dropped; names are lower-cased; values re-decoded to UTF-8; and since BuildKit v0.12 a
 * `<key>-encoded: 1` field means every value of `<key>` was QueryEscape'd, so those are unescaped.
 */
export function metadataFromRawHeaders(rawHeaders: readonly string[]): Metadata {
  const values = new Map<string, string[]>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    if (name.startsWith(":")) continue;
    const list = values.get(name) ?? [];
    list.push(latin1ToUtf8(rawHeaders[i + 1]!));
    values.set(name, list);
  }
  for (const [name, list] of values) {
    if (!name.endsWith("-encoded") || list[0] !== "1") continue;
    const key = name.slice(0, -"-encoded".length);
    const encoded = values.get(key);
    if (encoded) values.set(key, encoded.map(queryUnescape));
  }
  return {
    all: (key) => [...(values.get(key.toLowerCase()) ?? [])],
    first: (key) => values.get(key.toLowerCase())?.[0],
  };
}

/** A gRPC status code from a header value; anything unparseable is UNKNOWN. */
export function parseGrpcStatus(value: string | undefined): GrpcCodeValue | undefined {
  if (value === undefined) return undefined;
  const code = Number(value);
  return Number.isInteger(code) && code >= 0 && code <= 16 ? (code as GrpcCodeValue) : GrpcCode.UNKNOWN;
}

/** gRPC's mapping for responses that are not gRPC at all (HTTP status without grpc-status). */
export function grpcCodeForHttpStatus(status: number): GrpcCodeValue {
  switch (status) {
    case 400:
      return GrpcCode.INTERNAL;
    case 401:
      return GrpcCode.UNAUTHENTICATED;
    case 403:
      return GrpcCode.PERMISSION_DENIED;
    case 404:
      return GrpcCode.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcCode.UNAVAILABLE;
    default:
      return GrpcCode.UNKNOWN;
  }
}

/** `-bin` metadata is base64, padded or not. */
export function decodeBinaryHeader(value: string): Uint8Array {
  return new Uint8Array(Buffer.from(value, "base64"));
}
