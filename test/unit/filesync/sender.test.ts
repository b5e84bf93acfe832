import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { chmod, mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import {
  DATA_CHUNK_BYTES,
  FILESYNC_DIFFCOPY,
  fileSyncAttachable,
} from "../../../src/buildkit/filesync/sender.ts";
import { PacketType, decodePacket, encodeErr, encodeFin, encodeReq, type Packet } from "../../../src/buildkit/filesync/packets.ts";
import { GrpcCode, GrpcError } from "../../../src/buildkit/session/attachable.ts";
import { isRegularGoMode } from "../../../src/buildkit/filesync/filemode.ts";
import { fakeCall, type FakeCall } from "./fake-call.ts";
import { FIXTURE_ORDER, makeFixture } from "./fixture.ts";

let fixture: Awaited<ReturnType<typeof makeFixture>>;
beforeEach(async () => (fixture = await makeFixture()));
afterEach(async () => fixture.cleanup());

function start(call: FakeCall, dirs: Record<string, string>, served?: { path: string; bytes: number }[]) {
  const handler = fileSyncAttachable(dirs, { onFileData: (e) => served?.push(e) }).methods[FILESYNC_DIFFCOPY]!;
  const done = handler(call);
  done.catch(() => undefined);
  return done;
}

const isEndOfListing = (m: Uint8Array) => m.length === 0;
const decoded = (call: FakeCall) => call.sent.map((m) => decodePacket(m));

/** Plays the daemon's receiver: waits for the listing, requests every regular file, collects contents, FINs. */
async function receiveAll(call: FakeCall): Promise<{ stats: Packet[]; files: Map<string, Buffer> }> {
  await call.waitForSent(isEndOfListing);
  const stats = decoded(call).filter((p) => p.type === PacketType.PACKET_STAT && p.stat);
  const wanted = new Map<number, string>();
  stats.forEach((p, id) => {
    if (isRegularGoMode(p.stat!.mode) && p.stat!.linkname === "") wanted.set(id, p.stat!.path);
  });
  for (const id of wanted.keys()) call.push(encodeReq(id));
  const files = new Map<string, Buffer[]>();
  const open = new Set(wanted.keys());
  let from = 0;
  while (open.size > 0) {
    const i = await call.waitForSent((m) => decodePacket(m).type === PacketType.PACKET_DATA, from);
    from = i + 1;
    const p = decodePacket(call.sent[i]!);
    const path = wanted.get(p.ID)!;
    expect(path, `DATA for an id that was not requested: ${p.ID}`).toBeDefined();
    if (p.data.length === 0) open.delete(p.ID);
    else files.set(path, [...(files.get(path) ?? []), Buffer.from(p.data)]);
  }
  call.push(encodeFin());
  return { stats, files: new Map([...wanted.values()].map((path) => [path, Buffer.concat(files.get(path) ?? [])])) };
}

describe("FileSync DiffCopy sender", () => {
  it("refuses unknown directory names with NOT_FOUND", async () => {
    const call = fakeCall(FILESYNC_DIFFCOPY, { "dir-name": ["secrets"] });
    await expect(start(call, { context: fixture.root })).rejects.toMatchObject({
      code: GrpcCode.NOT_FOUND,
      message: 'no access allowed to dir "secrets"',
    });
  });

  it("streams the listing, serves every requested file, and answers FIN with FIN", async () => {
    const call = fakeCall(FILESYNC_DIFFCOPY, { "dir-name": ["context"] });
    const done = start(call, { context: fixture.root });
    const { stats, files } = await receiveAll(call);
    await done;
    expect(stats.map((p) => p.stat!.path)).toEqual(FIXTURE_ORDER);
    expect(files.get("a/x")!.toString()).toBe("x-contents");
    expect(files.get("ö.txt")!.toString()).toBe("umlaut");
    expect(files.get("run.sh")!.toString()).toContain("echo hi");
    expect(files.has("hard2")).toBe(false); // a hardlink is never requested
    const last = call.sent[call.sent.length - 1]!;
    expect(Buffer.from(last).toString("hex")).toBe("0803"); // FIN
  });

  it("applies followpaths as includes and exclude patterns with exceptions", async () => {
    await writeFile(join(fixture.root, "keep.log"), "kept");
    await writeFile(join(fixture.root, "drop.log"), "dropped");
    const call = fakeCall(FILESYNC_DIFFCOPY, { "dir-name": ["context"], "exclude-patterns": ["*.log", "!keep.log", "a"] });
    const done = start(call, { context: fixture.root });
    const { stats } = await receiveAll(call);
    await done;
    const paths = stats.map((p) => p.stat!.path);
    expect(paths).toContain("keep.log");
    expect(paths).not.toContain("drop.log");
    expect(paths).not.toContain("a/x");

    const follow = fakeCall(FILESYNC_DIFFCOPY, { "dir-name": ["dockerfile"], followpaths: ["Dockerfile", "link"] });
    await writeFile(join(fixture.root, "Dockerfile"), "FROM scratch\n");
    const followDone = start(follow, { dockerfile: fixture.root });
    const followed = await receiveAll(follow);
    await followDone;
    // the link and its target (with its parent directory), nothing else
    expect(followed.stats.map((p) => p.stat!.path)).toEqual(["Dockerfile", "a", "a/x", "link"]);
  });

  it("answers REQs that arrive while the listing is still streaming, with interleaved DATA", async () => {
    const big = randomBytes(3 * DATA_CHUNK_BYTES + 17);
    await mkdir(join(fixture.root, "b"));
    await writeFile(join(fixture.root, "b", "big1"), big);
    await writeFile(join(fixture.root, "b", "big2"), big);
    const call = fakeCall(FILESYNC_DIFFCOPY, { "dir-name": ["context"] });
    let release!: () => void;
    let gate = new Promise<void>((r) => (release = r));
    let sends = 0;
    call.sendDelay = async () => {
      sends++;
      if (sends === 8) await gate; // hold the stream after a few messages
    };
    const done = start(call, { context: fixture.root });
    // STATs: .dockerignore(0) a(1) a/x(2) a-b(3) b(4) b/big1(5) b/big2(6) …
    await call.waitForSent((m) => decodePacket(m).stat?.path === "b/big2");
    call.push(encodeReq(5));
    call.push(encodeReq(6));
    // Backpressure: while the transport holds a send, nothing more is queued into it.
    await new Promise((r) => setTimeout(r, 50));
    expect(call.sent.length).toBe(8);
    release();
    gate = Promise.resolve();
    const endOfListing = await call.waitForSent(isEndOfListing);
    const firstData = await call.waitForSent((m) => decodePacket(m).type === PacketType.PACKET_DATA);
    const chunks = new Map<number, Buffer[]>([[5, []], [6, []]]);
    const ended = new Set<number>();
    const seenBeforeFirstEnd = new Set<number>();
    let from = 0;
    while (ended.size < 2) {
      const i = await call.waitForSent((m) => decodePacket(m).type === PacketType.PACKET_DATA, from);
      from = i + 1;
      const p = decodePacket(call.sent[i]!);
      if (p.data.length === 0) ended.add(p.ID);
      else chunks.get(p.ID)!.push(Buffer.from(p.data));
      if (ended.size === 0) seenBeforeFirstEnd.add(p.ID);
    }
    call.push(encodeFin());
    await done;
    expect(Buffer.concat(chunks.get(5)!).equals(big)).toBe(true);
    expect(Buffer.concat(chunks.get(6)!).equals(big)).toBe(true);
    expect(Math.max(...chunks.get(5)!.map((c) => c.length))).toBe(DATA_CHUNK_BYTES);
    // both files were in flight at once, and their DATA went out before the listing had ended
    expect([...seenBeforeFirstEnd].sort()).toEqual([5, 6]);
    expect(firstData).toBeLessThan(endOfListing);
  });

  it("counts bytes served, so excluded files can be shown never to be read", async () => {
    await writeFile(join(fixture.root, "huge.bin"), randomBytes(1 << 20));
    const served: { path: string; bytes: number }[] = [];
    const call = fakeCall(FILESYNC_DIFFCOPY, { "dir-name": ["context"], "exclude-patterns": ["huge.bin"] });
    const done = start(call, { context: fixture.root }, served);
    await receiveAll(call);
    await done;
    expect(served.some((s) => s.path === "huge.bin")).toBe(false);
    expect(served.reduce((n, s) => n + s.bytes, 0)).toBeGreaterThan(0);
  });

  it("rejects a REQ for an id that is not a requestable file", async () => {
    const call = fakeCall(FILESYNC_DIFFCOPY, { "dir-name": ["context"] });
    const done = start(call, { context: fixture.root });
    await call.waitForSent(isEndOfListing);
    call.push(encodeReq(1)); // "a" is a directory
    await expect(done).rejects.toThrow(/invalid file id 1/);
    const last = decodePacket(call.sent[call.sent.length - 1]!);
    expect(last.type).toBe(PacketType.PACKET_ERR);
  });

  it("fails the transfer with a clear ERR when a requested file cannot be read", async () => {
    if (process.getuid?.() === 0) return; // root reads everything
    await writeFile(join(fixture.root, "zz-locked"), "secret");
    await chmod(join(fixture.root, "zz-locked"), 0o000);
    const call = fakeCall(FILESYNC_DIFFCOPY, { "dir-name": ["context"] });
    const done = start(call, { context: fixture.root });
    await call.waitForSent(isEndOfListing);
    const id = decoded(call).filter((p) => p.stat).findIndex((p) => p.stat!.path === "zz-locked");
    call.push(encodeReq(id));
    await expect(done).rejects.toBeInstanceOf(GrpcError);
    const err = decodePacket(call.sent[call.sent.length - 1]!);
    expect(err.type).toBe(PacketType.PACKET_ERR);
    expect(Buffer.from(err.data).toString()).toMatch(/cannot read "zz-locked" in context: .*permission denied/);
  });

  it("stops on an ERR from the receiver", async () => {
    const call = fakeCall(FILESYNC_DIFFCOPY, { "dir-name": ["context"] });
    const done = start(call, { context: fixture.root });
    await call.waitForSent(isEndOfListing);
    call.push(encodeErr("disk full"));
    await expect(done).rejects.toThrow("error from receiver: disk full");
  });

  it("serves a symlinked root through its target", async () => {
    const linkRoot = fixture.root + "-link";
    await symlink(fixture.root, linkRoot);
    try {
      const call = fakeCall(FILESYNC_DIFFCOPY, { "dir-name": ["context"], "include-patterns": ["a"] });
      const done = start(call, { context: linkRoot });
      const { stats } = await receiveAll(call);
      await done;
      expect(stats.map((p) => p.stat!.path)).toEqual(["a", "a/x"]);
    } finally {
      await (await import("node:fs/promises")).rm(linkRoot);
    }
  });
});
