// Control.Session carries a raw byte stream as BytesMessage{data} slices in both directions; this turns that
// bidi call into a Duplex so an HTTP/2 server can run on it (BuildKit's grpchijack does the same in Go).
import { Duplex } from "node:stream";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BytesMessageSchema } from "../proto/gen/buildkit/control_pb.ts";
import type { BidiCall } from "./client.ts";

/** Keeps each BytesMessage far below v0.8's 4 MiB gRPC receive limit. */
const MAX_SLICE_BYTES = 1 << 20;

export class BytesMessageTunnel extends Duplex {
  private reading = false;
  private readonly responses: AsyncIterator<Uint8Array>;

  constructor(private readonly call: BidiCall) {
    super({ allowHalfOpen: true });
    this.responses = call.responses[Symbol.asyncIterator]();
  }

  override _read(): void {
    if (this.reading) return;
    this.reading = true;
    void this.pump();
  }

  private async pump(): Promise<void> {
    try {
      for (;;) {
        const next = await this.responses.next();
        if (next.done) {
          this.push(null);
          return;
        }
        const { data } = fromBinary(BytesMessageSchema, next.value);
        if (data.length === 0) continue;
        if (!this.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength))) {
          this.reading = false;
          return;
        }
      }
    } catch (err) {
      this.destroy(err instanceof Error ? err : new Error(String(err)));
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    void this.sendSlices(chunk).then(() => callback(), (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))));
  }

  private async sendSlices(chunk: Buffer): Promise<void> {
    for (let offset = 0; offset < chunk.length; offset += MAX_SLICE_BYTES) {
      const data = chunk.subarray(offset, offset + MAX_SLICE_BYTES);
      await this.call.send(toBinary(BytesMessageSchema, create(BytesMessageSchema, { data })));
    }
  }

  /** Our end of the byte stream is done: half-close the call, as grpchijack's CloseWrite does. */
  override _final(callback: (error?: Error | null) => void): void {
    this.call.closeSend();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.call.cancel();
    callback(error);
  }
}
