import { describe, expect, it } from "vitest";
import {
  FrameDecoder,
  decodeGrpcMessage,
  encodeFrame,
  encodeGrpcMessage,
  latin1ToUtf8,
  metadataFromRawHeaders,
  queryUnescape,
} from "../../../src/buildkit/transport/framing.ts";
import { GrpcCode, GrpcError } from "../../../src/buildkit/session/attachable.ts";
import { callError } from "../../../src/buildkit/transport/client.ts";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

describe("gRPC length-prefixed framing", () => {
  it("prefixes flag 0 and a big-endian length", () => {
    expect(hex(encodeFrame(Uint8Array.of(0x08, 0x01)))).toBe("00000000020801");
    expect(hex(encodeFrame(new Uint8Array(0)))).toBe("0000000000");
    expect(hex(encodeFrame(new Uint8Array(0x10203)).subarray(0, 5))).toBe("0000010203");
  });

  it("reassembles messages split at every byte boundary and several per chunk", () => {
    const wire = Buffer.concat([encodeFrame(Uint8Array.of(1, 2, 3)), encodeFrame(new Uint8Array(0)), encodeFrame(Uint8Array.of(9))]);
    for (let cut = 0; cut <= wire.length; cut++) {
      const decoder = new FrameDecoder();
      const messages = [...decoder.push(wire.subarray(0, cut)), ...decoder.push(wire.subarray(cut))];
      expect(messages.map(hex)).toEqual(["010203", "", "09"]);
      expect(decoder.hasPartialFrame).toBe(false);
    }
    const byteByByte = new FrameDecoder();
    const collected = [...wire].flatMap((b) => byteByByte.push(Uint8Array.of(b)));
    expect(collected.map(hex)).toEqual(["010203", "", "09"]);
  });

  it("reports a frame cut short", () => {
    const decoder = new FrameDecoder();
    expect(decoder.push(encodeFrame(Uint8Array.of(1, 2, 3)).subarray(0, 6))).toEqual([]);
    expect(decoder.hasPartialFrame).toBe(true);
  });

  it("rejects messages over the limit before buffering them", () => {
    const decoder = new FrameDecoder(16);
    const error = (() => {
      try {
        decoder.push(Buffer.from("0000000011", "hex"));
      } catch (err) {
        return err;
      }
    })();
    expect(error).toBeInstanceOf(GrpcError);
    expect((error as GrpcError).code).toBe(GrpcCode.RESOURCE_EXHAUSTED);
  });

  it("rejects compressed frames (nothing was negotiated)", () => {
    expect(() => new FrameDecoder().push(Buffer.from("010000000100", "hex"))).toThrow(/compressed/);
  });
});

describe("grpc-message percent-encoding", () => {
  it("escapes '%', controls and non-ASCII as UTF-8 bytes", () => {
    expect(encodeGrpcMessage("100% ok")).toBe("100%25 ok");
    expect(encodeGrpcMessage("nöt\nfound")).toBe("n%C3%B6t%0Afound");
  });
  it("decodes what Go's grpc sends, keeping malformed escapes", () => {
    expect(decodeGrpcMessage("n%C3%B6t%0Afound")).toBe("nöt\nfound");
    expect(decodeGrpcMessage("50%zz done %")).toBe("50%zz done %");
    expect(decodeGrpcMessage(encodeGrpcMessage("ünïcode ✓ 100%"))).toBe("ünïcode ✓ 100%");
  });
});

describe("incoming metadata", () => {
  it("re-decodes latin1 views of UTF-8 and leaves other text alone", () => {
    expect(latin1ToUtf8("Ã¶.txt")).toBe("ö.txt");
    expect(latin1ToUtf8("plain")).toBe("plain");
    expect(latin1ToUtf8("café")).toBe("café"); // "é" alone is not valid UTF-8: genuine latin1, kept
    expect(latin1ToUtf8("✓")).toBe("✓"); // already decoded by the runtime
  });

  it("QueryUnescape: '+' is a space, %XX are UTF-8 bytes", () => {
    expect(queryUnescape("a+b%2Bc%C3%B6")).toBe("a b+cö");
  });

  it("keeps repeated fields apart, drops pseudo-headers, applies <key>-encoded", () => {
    const md = metadataFromRawHeaders([
      ":path", "/moby.filesync.v1.FileSync/DiffCopy",
      "dir-name", "context",
      "exclude-patterns", "a, b",
      "exclude-patterns", "Ã¶.txt",
      "include-patterns", "dir+with+space%2Fx",
      "include-patterns", "%C3%A4",
      "include-patterns-encoded", "1",
      "Followpaths", "Dockerfile",
    ]);
    expect(md.first(":path")).toBeUndefined();
    expect(md.first("dir-name")).toBe("context");
    expect(md.all("exclude-patterns")).toEqual(["a, b", "ö.txt"]);
    expect(md.all("include-patterns")).toEqual(["dir with space/x", "ä"]);
    expect(md.all("followpaths")).toEqual(["Dockerfile"]);
    expect(md.all("missing")).toEqual([]);
    expect(md.first("missing")).toBeUndefined();
  });

  it("does not unescape a key whose -encoded marker is not 1", () => {
    const md = metadataFromRawHeaders(["k", "a+b", "k-encoded", "0"]);
    expect(md.all("k")).toEqual(["a+b"]);
  });
});

describe("how a call ended → gRPC outcome", () => {
  const end = (overrides: Partial<Parameters<typeof callError>[1]>) =>
    callError("/p.S/M", { responseHeaders: { ":status": 200 }, trailers: undefined, rstCode: 0, cancelled: false, streamError: undefined, partialFrame: false, ...overrides });

  it("OK trailers; OK with a cut-off message is INTERNAL", () => {
    expect(end({ trailers: { "grpc-status": "0" } })).toBeUndefined();
    expect(end({ trailers: { "grpc-status": "0" }, partialFrame: true })).toMatchObject({ code: GrpcCode.INTERNAL });
  });

  it("status and percent-decoded message from trailers, or from headers in a trailers-only response", () => {
    expect(end({ trailers: { "grpc-status": "2", "grpc-message": "executor failed: exit code: 1%0A" } })).toMatchObject({
      code: GrpcCode.UNKNOWN,
      message: "executor failed: exit code: 1\n",
    });
    expect(end({ responseHeaders: { ":status": 200, "grpc-status": "12", "grpc-message": "unknown method Info" } })).toMatchObject({
      code: GrpcCode.UNIMPLEMENTED,
      message: "unknown method Info",
    });
  });

  it("keeps grpc-status-details-bin as bytes", () => {
    const error = end({ trailers: { "grpc-status": "5", "grpc-status-details-bin": Buffer.from([8, 5]).toString("base64").replace(/=+$/, "") } });
    expect(Array.from(error!.statusDetails!)).toEqual([8, 5]);
  });

  it("no gRPC status: our cancel, a non-200 HTTP status, a connection error, a reset", () => {
    expect(end({ cancelled: true, rstCode: 8 })).toMatchObject({ code: GrpcCode.CANCELLED });
    expect(end({ responseHeaders: { ":status": 404 } })).toMatchObject({ code: GrpcCode.UNIMPLEMENTED });
    expect(end({ responseHeaders: { ":status": 503 } })).toMatchObject({ code: GrpcCode.UNAVAILABLE });
    expect(end({ streamError: new Error("certificate required"), rstCode: 2 })).toMatchObject({
      code: GrpcCode.UNAVAILABLE,
      message: "/p.S/M: certificate required",
    });
    expect(end({ rstCode: 7 })).toMatchObject({ code: GrpcCode.UNAVAILABLE }); // REFUSED_STREAM
    expect(end({ rstCode: 2 })).toMatchObject({ code: GrpcCode.INTERNAL });
    expect(end({})).toMatchObject({ code: GrpcCode.INTERNAL, message: "/p.S/M: stream closed without a gRPC status" });
  });
});
