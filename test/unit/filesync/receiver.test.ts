import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PacketType, decodePacket, encodeData, encodeEndOfListing, encodeErr, encodeFin, encodeStatPacket } from "../../../src/buildkit/filesync/packets.ts";
import { FILESEND_DIFFCOPY, fileSendAttachable, type ExportTarget } from "../../../src/buildkit/filesync/filesend.ts";
import { FILESYNC_DIFFCOPY, fileSyncAttachable } from "../../../src/buildkit/filesync/sender.ts";
import { GoMode } from "../../../src/buildkit/filesync/filemode.ts";
import type { FileStat } from "../../../src/buildkit/filesync/walk.ts";
import type { ReceiveResult } from "../../../src/buildkit/filesync/receiver.ts";
import { fakeCall, loopback, type FakeCall } from "./fake-call.ts";
import { makeFixture } from "./fixture.ts";

let work: string;
beforeEach(async () => (work = await mkdtemp(join(tmpdir(), "shim-receiver-"))));
afterEach(async () => rm(work, { recursive: true, force: true }));

const T1 = 1_650_000_000_250_000_000n; // ns
const T2 = 1_650_000_100_000_000_000n;
function statPacket(path: string, mode: number, extra: Partial<FileStat> = {}): Uint8Array {
  return encodeStatPacket({ path, mode: mode >>> 0, size: 0n, modTime: T1, linkname: "", devmajor: 0n, devminor: 0n, ...extra });
}

function startLocalExport(dest: string, headers: Record<string, string[]> = {}) {
  const call = fakeCall(FILESEND_DIFFCOPY, headers);
  const results: ReceiveResult[] = [];
  const targets = new Map<number, ExportTarget>([[0, { kind: "directory", dest, onDone: (r) => results.push(r) }]]);
  const done = fileSendAttachable(targets).methods[FILESEND_DIFFCOPY]!(call);
  done.catch(() => undefined);
  return { call, done, results };
}

const sentTypes = (call: FakeCall) => call.sent.map((m) => decodePacket(m));

/** The recorded stream a daemon's local exporter sends for a small tree, with interleaved DATA. */
async function playRecordedExport(call: FakeCall): Promise<void> {
  call.push(statPacket("d", GoMode.Dir | 0o750, { modTime: T2 })); // id 0
  call.push(statPacket("d/f", 0o640, { size: 11n })); // id 1
  call.push(statPacket("d/h", 0o640, { linkname: "d/f" })); // id 2: hardlink, not requested
  call.push(statPacket("l", GoMode.Symlink | 0o777, { linkname: "d/f", size: 3n })); // id 3
  call.push(statPacket("pipe", GoMode.NamedPipe | 0o644)); // id 4: skipped
  call.push(statPacket("x", GoMode.Setuid | 0o755, { size: 6n })); // id 5
  call.push(encodeEndOfListing());
  await call.waitForSent((m) => decodePacket(m).type === PacketType.PACKET_REQ && decodePacket(m).ID === 5);
  call.push(encodeData(5, Buffer.from("#!/bi")));
  call.push(encodeData(1, Buffer.from("hello ")));
  call.push(encodeData(1, Buffer.from("world")));
  call.push(encodeData(1, new Uint8Array(0)));
  call.push(encodeData(5, Buffer.from("n")));
  call.push(encodeData(5, new Uint8Array(0)));
  await call.waitForSent((m) => decodePacket(m).type === PacketType.PACKET_FIN);
  call.push(encodeFin());
}

describe("local exporter receiver (fed a recorded packet stream)", () => {
  it("creates dirs, files, links and modes, requests only regular files, and exchanges FIN", async () => {
    const dest = join(work, "out", "nested");
    const { call, done, results } = startLocalExport(dest);
    await playRecordedExport(call);
    await done;
    expect(results).toEqual([{ entries: 5, bytes: 17, skipped: ["pipe"] }]);

    const reqs = sentTypes(call).filter((p) => p.type === PacketType.PACKET_REQ).map((p) => p.ID);
    expect(reqs).toEqual([1, 5]);
    expect(sentTypes(call).at(-1)!.type).toBe(PacketType.PACKET_FIN);

    expect(await readFile(join(dest, "d", "f"), "utf8")).toBe("hello world");
    expect((await stat(join(dest, "d", "f"))).mode & 0o7777).toBe(0o640);
    expect((await stat(join(dest, "d"))).mode & 0o7777).toBe(0o750);
    expect((await stat(join(dest, "d"), { bigint: true })).mtimeNs).toBe(T2);
    expect((await stat(join(dest, "d", "f"), { bigint: true })).mtimeNs).toBe(T1);
    expect((await stat(join(dest, "d", "h"))).ino).toBe((await stat(join(dest, "d", "f"))).ino);
    expect(await readlink(join(dest, "l"))).toBe("d/f");
    expect((await lstat(join(dest, "l"), { bigint: true })).mtimeNs).toBe(T1);
    expect(await readFile(join(dest, "x"), "utf8")).toBe("#!/bin");
    expect((await stat(join(dest, "x"))).mode & 0o7777).toBe(0o4755);
    await expect(lstat(join(dest, "pipe"))).rejects.toThrow(/ENOENT/);
    expect((await readdir(join(work, "out"))).sort()).toEqual(["nested"]); // no staging left behind
  });

  it("merges into an existing destination like buildx: replaces exported names, keeps the rest", async () => {
    const dest = join(work, "existing");
    await mkdir(dest);
    await writeFile(join(dest, "keep.txt"), "mine");
    await writeFile(join(dest, "d"), "a file where the export has a directory");
    await mkdir(join(dest, "x")); // a directory where the export has a file
    await writeFile(join(dest, "x", "inside"), "");
    const { call, done } = startLocalExport(dest);
    await playRecordedExport(call);
    await done;
    expect(await readFile(join(dest, "keep.txt"), "utf8")).toBe("mine");
    expect(await readFile(join(dest, "d", "f"), "utf8")).toBe("hello world");
    expect(await readFile(join(dest, "x"), "utf8")).toBe("#!/bin");
    expect((await readdir(dest)).sort()).toEqual(["d", "keep.txt", "l", "x"]);
  });

  it("leaves the destination untouched and removes its staging when the export fails", async () => {
    const dest = join(work, "existing");
    await mkdir(dest);
    await writeFile(join(dest, "keep.txt"), "mine");
    const { call, done } = startLocalExport(dest);
    call.push(statPacket("d", GoMode.Dir | 0o755));
    call.push(statPacket("d/f", 0o644));
    await call.waitForSent((m) => decodePacket(m).type === PacketType.PACKET_REQ);
    call.push(encodeData(1, Buffer.from("partial")));
    call.push(encodeErr("exporter failed"));
    await expect(done).rejects.toThrow("error from sender: exporter failed");
    expect(await readdir(dest)).toEqual(["keep.txt"]);

    const fresh = join(work, "fresh");
    const second = startLocalExport(fresh);
    second.call.push(statPacket("a", 0o644));
    await second.call.waitForSent((m) => decodePacket(m).type === PacketType.PACKET_REQ);
    second.call.cancel(new Error("session closed"));
    await expect(second.done).rejects.toThrow();
    expect(await readdir(work)).toEqual(["existing"]);
  });

  it("rejects paths that escape or go through a symlink, and unknown hardlink targets", async () => {
    for (const [packets, message] of [
      [[statPacket("../evil", 0o644)], /invalid path/],
      [[statPacket("a/./b", 0o644)], /invalid path/],
      [[statPacket("l", GoMode.Symlink | 0o777, { linkname: "/etc" }), statPacket("l/passwd", 0o644)], /before its directory/],
      [[statPacket("h", 0o644, { linkname: "nowhere" })], /unknown path/],
    ] as const) {
      const dest = join(work, "evil");
      const { call, done } = startLocalExport(dest);
      for (const p of packets) call.push(p);
      await expect(done).rejects.toThrow(message);
      expect(sentTypes(call).at(-1)!.type).toBe(PacketType.PACKET_ERR);
      expect(await readdir(work)).toEqual([]);
    }
  });

  it("round-trips a real tree through our own sender (loopback)", async () => {
    const fixture = await makeFixture();
    try {
      const senderCall = fakeCall(FILESYNC_DIFFCOPY, { "dir-name": ["context"] });
      const dest = join(work, "copy");
      const { call: receiverCall, done } = startLocalExport(dest);
      loopback(senderCall, receiverCall);
      const sent = fileSyncAttachable({ context: fixture.root }).methods[FILESYNC_DIFFCOPY]!(senderCall);
      await Promise.all([sent, done]);
      for (const name of ["a/x", "a-b", "run.sh", "ö.txt", "\u{1F600}", "hard1", "hard2"]) {
        expect(await readFile(join(dest, name), "utf8")).toBe(await readFile(join(fixture.root, name), "utf8"));
        const [a, b] = await Promise.all([stat(join(dest, name), { bigint: true }), stat(join(fixture.root, name), { bigint: true })]);
        expect(a.mode).toBe(b.mode);
        expect(a.mtimeNs).toBe((b.mtimeNs / 1000n) * 1000n); // Node's utimes keeps whole microseconds
      }
      expect((await stat(join(dest, "hard1"))).ino).toBe((await stat(join(dest, "hard2"))).ino);
      expect(await readlink(join(dest, "link"))).toBe("a/x");
      expect((await stat(join(dest, "empty"))).isDirectory()).toBe(true);
    } finally {
      await fixture.cleanup();
    }
  });
});
