// Encoding and decoding of fsutil diffcopy packets (fsutil.types.Packet), the messages of
// FileSync.DiffCopy and of the local exporter's FileSend.DiffCopy.

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { PacketSchema, Packet_PacketType, type Packet } from "../proto/gen/fsutil/wire_pb.ts";
import { StatSchema, type Stat } from "../proto/gen/fsutil/stat_pb.ts";
import type { FileStat } from "./walk.ts";

export { Packet_PacketType as PacketType, type Packet, type Stat };

const EMPTY = new Uint8Array(0);

/** A STAT packet for one entry. uid/gid are sent as 0, as the Go client does. */
export function encodeStatPacket(stat: FileStat): Uint8Array {
  return toBinary(
    PacketSchema,
    create(PacketSchema, { type: Packet_PacketType.PACKET_STAT, stat: create(StatSchema, { ...stat, uid: 0, gid: 0 }) }),
  );
}

/** The STAT without a stat that ends the listing: a zero-length message. */
export function encodeEndOfListing(): Uint8Array {
  return EMPTY;
}

export function encodeReq(id: number): Uint8Array {
  return toBinary(PacketSchema, create(PacketSchema, { type: Packet_PacketType.PACKET_REQ, ID: id }));
}

/** A chunk of file `id`; empty `data` marks the end of that file. */
export function encodeData(id: number, data: Uint8Array): Uint8Array {
  return toBinary(PacketSchema, create(PacketSchema, { type: Packet_PacketType.PACKET_DATA, ID: id, data }));
}

export function encodeFin(): Uint8Array {
  return toBinary(PacketSchema, create(PacketSchema, { type: Packet_PacketType.PACKET_FIN }));
}

export function encodeErr(message: string): Uint8Array {
  return toBinary(
    PacketSchema,
    create(PacketSchema, { type: Packet_PacketType.PACKET_ERR, data: new TextEncoder().encode(message) }),
  );
}

export function decodePacket(bytes: Uint8Array): Packet {
  return fromBinary(PacketSchema, bytes);
}

/** The text of an ERR packet. */
export function packetErrorText(packet: Packet): string {
  return new TextDecoder().decode(packet.data);
}
