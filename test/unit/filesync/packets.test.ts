import { describe, expect, it } from "vitest";
import {
  PacketType,
  decodePacket,
  encodeData,
  encodeEndOfListing,
  encodeErr,
  encodeFin,
  encodeReq,
  encodeStatPacket,
} from "../../../src/buildkit/filesync/packets.ts";
import type { FileStat } from "../../../src/buildkit/filesync/walk.ts";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex").replace(/(..)(?=.)/g, "$1 ");

function stat(partial: Partial<FileStat> & { path: string }): FileStat {
  return { mode: 0, size: 0n, modTime: 0n, linkname: "", devmajor: 0n, devminor: 0n, ...partial };
}

describe("fsutil packet golden bytes", () => {
  it("FIN", () => expect(hex(encodeFin())).toBe("08 03"));
  it("REQ for id 0 leaves the zero id out", () => expect(hex(encodeReq(0))).toBe("08 01"));
  it("REQ for id n > 0", () => {
    expect(hex(encodeReq(5))).toBe("08 01 18 05");
    expect(hex(encodeReq(300))).toBe("08 01 18 ac 02");
  });
  it("end-of-file DATA", () => {
    expect(hex(encodeData(0, new Uint8Array(0)))).toBe("08 02");
    expect(hex(encodeData(7, new Uint8Array(0)))).toBe("08 02 18 07");
  });
  it("DATA with bytes", () => expect(hex(encodeData(1, Buffer.from("abc")))).toBe("08 02 18 01 22 03 61 62 63"));
  it("the end-of-listing STAT is a zero-length message", () => expect(encodeEndOfListing().length).toBe(0));
  it("a directory STAT carries the 1<<31 mode as a 5-byte varint (type 0 omitted)", () => {
    const bytes = encodeStatPacket(stat({ path: "a", mode: (0x8000_0000 | 0o755) >>> 0 }));
    expect(hex(bytes)).toBe("12 09 0a 01 61 10 ed 83 80 80 08");
  });
  it("a file STAT with size, nanosecond mtime and uid/gid forced to 0", () => {
    const bytes = encodeStatPacket(stat({ path: "f", mode: 0o644, size: 3n, modTime: 1_700_000_000_123_456_789n }));
    const decoded = decodePacket(bytes);
    expect(decoded.type).toBe(PacketType.PACKET_STAT);
    expect(decoded.stat?.modTime).toBe(1_700_000_000_123_456_789n);
    expect(decoded.stat?.uid).toBe(0);
    expect(hex(bytes).startsWith("12 ")).toBe(true);
    expect(hex(bytes)).toContain("10 a4 03 28 03 30"); // mode 0644, size 3, then modTime
  });
  it("ERR carries the message", () => {
    expect(hex(encodeErr("x"))).toBe("08 04 22 01 78");
    const p = decodePacket(encodeErr("boom"));
    expect(p.type).toBe(PacketType.PACKET_ERR);
    expect(Buffer.from(p.data).toString()).toBe("boom");
  });
  it("decodes the empty message as a STAT without stat", () => {
    const p = decodePacket(new Uint8Array(0));
    expect(p.type).toBe(PacketType.PACKET_STAT);
    expect(p.stat).toBeUndefined();
  });
});
