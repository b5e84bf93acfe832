// The containerd Content service (/containerd.services.content.v1.Content/*) that the daemon calls in the
// session to import and export `type=local` caches. Each call names its store in the
// `buildkit-attachable-store-id` header (`local:<dir>`, the exact `src`/`dest` attribute string).
// Info, Read, Status, Write and Abort are served; List, Delete, Update and ListStatuses, which the cache
// import/export paths never call, answer UNIMPLEMENTED.

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { open } from "node:fs/promises";
import {
  AbortRequestSchema,
  InfoRequestSchema,
  InfoResponseSchema,
  InfoSchema,
  ReadContentRequestSchema,
  ReadContentResponseSchema,
  StatusRequestSchema,
  StatusResponseSchema,
  StatusSchema,
  WriteAction,
  WriteContentRequestSchema,
  WriteContentResponseSchema,
} from "../proto/gen/containerd/content_pb.ts";
import { GrpcCode, GrpcError, type Attachable, type Handler, type ServerCall } from "../session/attachable.ts";
import type { IngestStatus, LocalContentStore } from "./local-store.ts";

export const CONTENT_SERVICE = "/containerd.services.content.v1.Content";
export const STORE_ID_HEADER = "buildkit-attachable-store-id";

/** Largest data field of one Read response. */
export const READ_CHUNK_BYTES = 1 << 20;

/** The Content attachable over `stores` (store id → store). */
export function contentAttachable(stores: ReadonlyMap<string, LocalContentStore>): Attachable {
  const withStore =
    (fn: (call: ServerCall, store: LocalContentStore) => Promise<void>): Handler =>
    async (call) =>
      fn(call, chooseStore(call, stores));
  const unimplemented: Handler = async (call) => {
    throw new GrpcError(GrpcCode.UNIMPLEMENTED, `${call.method} is not supported by this client`);
  };
  return {
    methods: {
      [`${CONTENT_SERVICE}/Info`]: withStore(info),
      [`${CONTENT_SERVICE}/Read`]: withStore(read),
      [`${CONTENT_SERVICE}/Status`]: withStore(status),
      [`${CONTENT_SERVICE}/Write`]: withStore(write),
      [`${CONTENT_SERVICE}/Abort`]: withStore(abort),
      [`${CONTENT_SERVICE}/Update`]: unimplemented,
      [`${CONTENT_SERVICE}/List`]: unimplemented,
      [`${CONTENT_SERVICE}/Delete`]: unimplemented,
      [`${CONTENT_SERVICE}/ListStatuses`]: unimplemented,
    },
  };
}

function chooseStore(call: ServerCall, stores: ReadonlyMap<string, LocalContentStore>): LocalContentStore {
  const id = call.metadata.first(STORE_ID_HEADER);
  if (id === undefined) throw new GrpcError(GrpcCode.INVALID_ARGUMENT, `request lacks metadata "${STORE_ID_HEADER}"`);
  const store = stores.get(id);
  if (!store) throw new GrpcError(GrpcCode.NOT_FOUND, `unknown store ${id}`);
  return store;
}

async function singleRequest(call: ServerCall): Promise<Uint8Array> {
  for await (const message of call.requests) return message;
  throw new GrpcError(GrpcCode.INVALID_ARGUMENT, "missing request message");
}

async function info(call: ServerCall, store: LocalContentStore): Promise<void> {
  const { digest } = fromBinary(InfoRequestSchema, await singleRequest(call));
  const blob = await store.info(digest);
  if (!blob) throw new GrpcError(GrpcCode.NOT_FOUND, `content digest ${digest}: not found`);
  const response = create(InfoResponseSchema, {
    info: create(InfoSchema, {
      digest,
      size: BigInt(blob.size),
      createdAt: timestampFromDate(blob.createdAt),
      updatedAt: timestampFromDate(blob.updatedAt),
    }),
  });
  await call.send(toBinary(InfoResponseSchema, response));
}

async function read(call: ServerCall, store: LocalContentStore): Promise<void> {
  const request = fromBinary(ReadContentRequestSchema, await singleRequest(call));
  const blob = await store.info(request.digest);
  if (!blob) throw new GrpcError(GrpcCode.NOT_FOUND, `content digest ${request.digest}: not found`);
  const size = BigInt(blob.size);
  const offset = request.offset < 0n ? 0n : request.offset;
  if (offset > size) throw new GrpcError(GrpcCode.OUT_OF_RANGE, `read past object length ${blob.size} bytes`);
  // The requested size may run past the end (or be 0 for "to the end").
  const length = request.size <= 0n || offset + request.size > size ? size - offset : request.size;
  const handle = await open(blob.path, "r");
  try {
    const buffer = Buffer.allocUnsafe(Number(length < BigInt(READ_CHUNK_BYTES) ? length : BigInt(READ_CHUNK_BYTES)));
    let position = Number(offset);
    let remaining = Number(length);
    while (remaining > 0) {
      const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, remaining), position);
      if (bytesRead === 0) throw new GrpcError(GrpcCode.INTERNAL, `blob ${request.digest} shrank while being read`);
      const message = create(ReadContentResponseSchema, { offset: BigInt(position), data: buffer.subarray(0, bytesRead) });
      await call.send(toBinary(ReadContentResponseSchema, message));
      position += bytesRead;
      remaining -= bytesRead;
    }
  } finally {
    await handle.close();
  }
}

function statusMessage(s: IngestStatus) {
  return create(StatusSchema, {
    ref: s.ref,
    offset: BigInt(s.offset),
    total: BigInt(s.total),
    expected: s.expected,
    startedAt: timestampFromDate(s.startedAt),
    updatedAt: timestampFromDate(s.updatedAt),
  });
}

async function status(call: ServerCall, store: LocalContentStore): Promise<void> {
  const { ref } = fromBinary(StatusRequestSchema, await singleRequest(call));
  const current = await store.status(ref);
  if (!current) throw new GrpcError(GrpcCode.NOT_FOUND, `could not get status for ref ${JSON.stringify(ref)}: not found`);
  await call.send(toBinary(StatusResponseSchema, create(StatusResponseSchema, { status: statusMessage(current) })));
}

async function abort(call: ServerCall, store: LocalContentStore): Promise<void> {
  const { ref } = fromBinary(AbortRequestSchema, await singleRequest(call));
  await store.abort(ref);
  await call.send(new Uint8Array(0)); // google.protobuf.Empty
}

/** containerd's Write: STAT / WRITE / COMMIT messages on one stream, one reply each. */
async function write(call: ServerCall, store: LocalContentStore): Promise<void> {
  const requests = call.requests[Symbol.asyncIterator]();
  let next = await requests.next();
  if (next.done) return;
  let request = fromBinary(WriteContentRequestSchema, next.value);
  const ref = request.ref;
  if (ref === "") throw new GrpcError(GrpcCode.INVALID_ARGUMENT, "first message must have a reference");
  if (await exists(store, request.expected)) throw alreadyExists(request.expected);
  const writer = await store.openWriter(ref, Number(request.total), request.expected);
  try {
    for (;;) {
      if (await exists(store, request.expected)) {
        // Someone else committed it meanwhile: this ingest is useless (containerd drops it too).
        await writer.close();
        await store.abort(ref).catch(() => undefined);
        throw alreadyExists(request.expected);
      }
      writer.expect(Number(request.total), request.expected);
      const response = create(WriteContentResponseSchema, { action: request.action, offset: BigInt(writer.offset) });
      switch (request.action) {
        case WriteAction.STAT: {
          const s = writer.status();
          response.digest = await writer.digest();
          response.total = BigInt(writer.total);
          response.startedAt = timestampFromDate(s.startedAt);
          response.updatedAt = timestampFromDate(s.updatedAt);
          break;
        }
        case WriteAction.WRITE:
        case WriteAction.COMMIT: {
          const offset = Number(request.offset);
          if (offset > 0 && offset !== writer.offset) {
            throw new GrpcError(GrpcCode.OUT_OF_RANGE, `write @${offset} must occur at current offset ${writer.offset}`);
          }
          if (offset === 0 && writer.offset > 0) await writer.truncate();
          if (request.data.length > 0) await writer.write(request.data);
          response.offset = BigInt(writer.offset);
          response.digest = request.action === WriteAction.COMMIT ? await writer.commit() : await writer.digest();
          break;
        }
        default:
          throw new GrpcError(GrpcCode.INVALID_ARGUMENT, `unknown write action ${request.action}`);
      }
      await call.send(toBinary(WriteContentResponseSchema, response));
      if (request.action === WriteAction.COMMIT) return;
      next = await requests.next();
      if (next.done) return; // the ingest stays, resumable by a later writer
      request = fromBinary(WriteContentRequestSchema, next.value);
    }
  } finally {
    await writer.close();
  }

}

/** Whether the blob a writer expects is already committed (an empty digest expects nothing). */
async function exists(store: LocalContentStore, expected: string): Promise<boolean> {
  return expected !== "" && (await store.info(expected)) !== undefined;
}

function alreadyExists(digest: string): GrpcError {
  return new GrpcError(GrpcCode.ALREADY_EXISTS, `blob with expected digest ${digest} exists`);
}
