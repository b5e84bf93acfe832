import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { create, toBinary } from "@bufbuild/protobuf";
import { BytesMessageSchema } from "../../../src/buildkit/proto/gen/buildkit/filesync_pb.ts";
import {
  FILESEND_DIFFCOPY,
  fileSendAttachable,
  fileStreamTarget,
  type ExportTarget,
  type ExporterMetadata,
} from "../../../src/buildkit/filesync/filesend.ts";
import { GrpcCode } from "../../../src/buildkit/session/attachable.ts";
import { fakeCall } from "./fake-call.ts";

const bytesMessage = (data: string | Uint8Array) =>
  toBinary(BytesMessageSchema, create(BytesMessageSchema, { data: typeof data === "string" ? Buffer.from(data) : data }));

/** A Writable that takes one chunk at a time and only when released, recording what it got. */
function slowSink() {
  const chunks: Buffer[] = [];
  let release: (() => void) | undefined;
  let pendingWrites = 0;
  const writable = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _enc, callback) {
      pendingWrites++;
      release = () => {
        chunks.push(chunk);
        pendingWrites--;
        callback();
      };
    },
  });
  return { writable, chunks, step: () => release?.(), pending: () => pendingWrites };
}

let work: string;
beforeEach(async () => (work = await mkdtemp(join(tmpdir(), "shim-filesend-"))));
afterEach(async () => rm(work, { recursive: true, force: true }));

describe("FileSend byte-stream targets", () => {
  it("routes by exporter id (default 0), passes exporter metadata, honours backpressure, finishes on half-close", async () => {
    const sink = slowSink();
    let seen: ExporterMetadata | undefined;
    const targets = new Map<number, ExportTarget>([
      [0, { kind: "stream", open: () => { throw new Error("exporter 0 must not be used"); } }],
      [1, { kind: "stream", open: (md) => ((seen = md), sink.writable) }],
    ]);
    const call = fakeCall(FILESEND_DIFFCOPY, {
      "buildkit-attachable-exporter-id": ["1"],
      "exporter-md-containerimage.digest": ["sha256:abc"],
      "exporter-md-image.name": ["a:1", "b:2"],
    });
    const done = fileSendAttachable(targets).methods[FILESEND_DIFFCOPY]!(call);
    let finished = false;
    void done.then(() => (finished = true));
    for (const part of ["one", "two", "three"]) call.push(bytesMessage(part));
    call.end();
    await new Promise((r) => setTimeout(r, 20));
    // the Writable is full after one chunk: the handler waits instead of reading ahead
    expect(sink.pending()).toBe(1);
    expect(finished).toBe(false);
    for (let i = 0; i < 3; i++) {
      sink.step();
      await new Promise((r) => setTimeout(r, 5));
    }
    await done;
    expect(Buffer.concat(sink.chunks).toString()).toBe("onetwothree");
    expect(seen).toEqual({ "containerimage.digest": "sha256:abc", "image.name": "a:1,b:2" });
  });

  it("uses exporter 0 when the header is absent (daemons before v0.13) and NOT_FOUND for unknown ids", async () => {
    const chunks: Buffer[] = [];
    const sink = new Writable({ write: (c, _e, cb) => (chunks.push(c), cb()) });
    const attachable = fileSendAttachable(new Map([[0, { kind: "stream", open: () => sink }]]));
    const call = fakeCall(FILESEND_DIFFCOPY);
    call.push(bytesMessage("tar"));
    call.end();
    await attachable.methods[FILESEND_DIFFCOPY]!(call);
    expect(Buffer.concat(chunks).toString()).toBe("tar");

    const unknown = fakeCall(FILESEND_DIFFCOPY, { "buildkit-attachable-exporter-id": ["3"] });
    await expect(attachable.methods[FILESEND_DIFFCOPY]!(unknown)).rejects.toMatchObject({ code: GrpcCode.NOT_FOUND });
  });

  it("answers ALREADY_EXISTS when the target declines", async () => {
    const attachable = fileSendAttachable(new Map([[0, { kind: "stream", open: () => undefined }]]));
    await expect(attachable.methods[FILESEND_DIFFCOPY]!(fakeCall(FILESEND_DIFFCOPY))).rejects.toMatchObject({
      code: GrpcCode.ALREADY_EXISTS,
    });
  });

  it("writes a file target through a temp file, renamed only on success", async () => {
    const path = join(work, "image.tar");
    const attachable = fileSendAttachable(new Map([[0, fileStreamTarget(path)]]));
    const call = fakeCall(FILESEND_DIFFCOPY);
    const big = Buffer.alloc(3 << 20, 7);
    call.push(bytesMessage(big));
    call.push(bytesMessage("end"));
    call.end();
    await attachable.methods[FILESEND_DIFFCOPY]!(call);
    expect((await readFile(path)).equals(Buffer.concat([big, Buffer.from("end")]))).toBe(true);
    expect(await readdir(work)).toEqual(["image.tar"]);

    const failing = fileSendAttachable(new Map([[0, fileStreamTarget(join(work, "other.tar"))]]));
    const cancelled = fakeCall(FILESEND_DIFFCOPY);
    cancelled.push(bytesMessage("partial"));
    const done = failing.methods[FILESEND_DIFFCOPY]!(cancelled);
    await new Promise((r) => setTimeout(r, 10));
    cancelled.cancel(new Error("daemon went away"));
    await expect(done).rejects.toThrow("daemon went away");
    expect(await readdir(work)).toEqual(["image.tar"]);
  });
});
