// Golden bytes for messages shim encodes or decodes, checked against hand-assembled protobuf encodings.
import { describe, expect, it } from "vitest";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { HealthCheckResponseSchema, HealthCheckResponse_ServingStatus } from "../../../src/buildkit/proto/gen/grpc/health_pb.ts";
import { BytesMessageSchema, StatusResponseSchema } from "../../../src/buildkit/proto/gen/buildkit/control_pb.ts";
import { PacketSchema, Packet_PacketType } from "../../../src/buildkit/proto/gen/fsutil/wire_pb.ts";
import { StatSchema } from "../../../src/buildkit/proto/gen/fsutil/stat_pb.ts";
import { CredentialsResponseSchema } from "../../../src/buildkit/proto/gen/buildkit/auth_pb.ts";
import { StatusSchema } from "../../../src/buildkit/proto/gen/google/rpc/status_pb.ts";
import { encodeFrame } from "../../../src/buildkit/transport/framing.ts";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

describe("wire encodings", () => {
  it("Health SERVING, framed", () => {
    const body = toBinary(HealthCheckResponseSchema, create(HealthCheckResponseSchema, { status: HealthCheckResponse_ServingStatus.SERVING }));
    expect(hex(encodeFrame(body))).toBe("00000000020801");
  });

  it("BytesMessage", () => {
    expect(hex(toBinary(BytesMessageSchema, create(BytesMessageSchema, { data: Buffer.from("PRI") })))).toBe("0a03505249");
    expect(hex(toBinary(BytesMessageSchema, create(BytesMessageSchema, {})))).toBe("");
  });

  it("fsutil packets: FIN, REQ 0, REQ 300, end-of-file DATA, final empty STAT", () => {
    const packet = (init: Parameters<typeof create<typeof PacketSchema>>[1]) => hex(toBinary(PacketSchema, create(PacketSchema, init)));
    expect(packet({ type: Packet_PacketType.PACKET_FIN })).toBe("0803");
    expect(packet({ type: Packet_PacketType.PACKET_REQ, ID: 0 })).toBe("0801");
    expect(packet({ type: Packet_PacketType.PACKET_REQ, ID: 300 })).toBe("080118ac02");
    expect(packet({ type: Packet_PacketType.PACKET_DATA, ID: 2 })).toBe("08021802");
    expect(packet({ type: Packet_PacketType.PACKET_STAT })).toBe("");
  });

  it("a directory Stat's Go FileMode needs a 5-byte varint", () => {
    // JS bit operators yield int32: `>>> 0` keeps ModeDir (1<<31) an unsigned value protobuf-es accepts.
    const stat = create(StatSchema, { path: "a", mode: (0x80000000 | 0o755) >>> 0 });
    // 0a 01 61 (path), 10 + varint(0x800001ed) = ed 83 80 80 08
    expect(hex(toBinary(StatSchema, stat))).toBe("0a0161" + "10ed83808008");
  });

  it("Auth CredentialsResponse", () => {
    const bytes = toBinary(CredentialsResponseSchema, create(CredentialsResponseSchema, { Username: "u", Secret: "pw" }));
    expect(hex(bytes)).toBe("0a01751202" + "7077");
  });

  it("decodes a StatusResponse vertex with a timestamp and a log line", () => {
    // vertexes[0] = {digest "sha256:x", name "RUN", cached true, started {seconds 1}}; logs[0] = {vertex "sha256:x", stream 1, msg "hi"}
    const vertex = "0a08736861323536" + "3a78" + "1a0352554e" + "2001" + "2a020801";
    const log = "0a08736861323536" + "3a78" + "1801" + "22026869";
    const wire = Buffer.from(`0a${(vertex.length / 2).toString(16).padStart(2, "0")}${vertex}1a${(log.length / 2).toString(16).padStart(2, "0")}${log}`, "hex");
    const status = fromBinary(StatusResponseSchema, wire);
    expect(status.vertexes[0]).toMatchObject({ digest: "sha256:x", name: "RUN", cached: true });
    expect(status.vertexes[0]!.started?.seconds).toBe(1n);
    expect(status.logs[0]).toMatchObject({ vertex: "sha256:x", stream: 1n });
    expect(Buffer.from(status.logs[0]!.msg).toString()).toBe("hi");
  });

  it("decodes google.rpc.Status details", () => {
    const status = fromBinary(StatusSchema, Buffer.from("0802120462616421", "hex"));
    expect(status).toMatchObject({ code: 2, message: "bad!" });
  });
});
