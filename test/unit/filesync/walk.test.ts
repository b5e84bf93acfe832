import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { walkTree, type WalkEntry } from "../../../src/buildkit/filesync/walk.ts";
import { PathFilter } from "../../../src/buildkit/filesync/filter.ts";
import { GoMode } from "../../../src/buildkit/filesync/filemode.ts";
import { FIXTURE_ORDER, makeFixture } from "./fixture.ts";

let fixture: Awaited<ReturnType<typeof makeFixture>>;
beforeEach(async () => (fixture = await makeFixture()));
afterEach(async () => fixture.cleanup());

async function collect(root: string, filter = new PathFilter(undefined, undefined)): Promise<WalkEntry[]> {
  const out: WalkEntry[] = [];
  for await (const e of walkTree(root, filter)) out.push(e);
  return out;
}

describe("walkTree", () => {
  it("lists pre-order, byte-wise sorted, without the root", async () => {
    const entries = await collect(fixture.root);
    expect(entries.map((e) => e.stat.path)).toEqual(FIXTURE_ORDER);
  });

  it("fills Go modes, sizes, links and nanosecond times", async () => {
    const byPath = new Map((await collect(fixture.root)).map((e) => [e.stat.path, e.stat]));
    expect(byPath.get("a")!.mode).toBe((GoMode.Dir | 0o755) >>> 0);
    expect(byPath.get("a")!.size).toBe(0n);
    expect(byPath.get("empty")!.mode & GoMode.Dir).not.toBe(0);
    expect(byPath.get("run.sh")!.mode).toBe(0o755);
    expect(byPath.get("link")!.mode & GoMode.Symlink).not.toBe(0);
    expect(byPath.get("link")!.linkname).toBe("a/x");
    expect(byPath.get("link")!.size).toBe(3n);
    expect(byPath.get("a/x")!.size).toBe(BigInt("x-contents".length));
    expect(byPath.get("a-b")!.modTime).toBe(1_600_000_000_500_000_000n);
    // the second name of an inode is sent as a hardlink to the first, without size
    expect(byPath.get("hard1")!.linkname).toBe("");
    expect(byPath.get("hard1")!.size).toBe(12n);
    expect(byPath.get("hard2")!.linkname).toBe("hard1");
    expect(byPath.get("hard2")!.size).toBe(0n);
  });

  it("sends the second hardlink as a plain file when the first is filtered out", async () => {
    const entries = await collect(fixture.root, new PathFilter(undefined, ["hard1"]));
    const hard2 = entries.find((e) => e.stat.path === "hard2")!;
    expect(hard2.stat.linkname).toBe("");
    expect(hard2.stat.size).toBe(12n);
  });

  it("lists a directory excluded by a pattern only when an exception includes something inside it", async () => {
    await mkdir(join(fixture.root, "logs"));
    await writeFile(join(fixture.root, "logs", "a.log"), "");
    await writeFile(join(fixture.root, "logs", "keep.log"), "");
    const paths = (await collect(fixture.root, new PathFilter(undefined, ["logs", "!logs/keep.log", "a"]))).map((e) => e.stat.path);
    expect(paths).toContain("logs");
    expect(paths).toContain("logs/keep.log");
    expect(paths).not.toContain("logs/a.log");
    expect(paths).not.toContain("a");
    expect(paths).not.toContain("a/x");
    expect(paths.indexOf("logs")).toBeLessThan(paths.indexOf("logs/keep.log"));
  });

  it("fails clearly on an unreadable directory it has to send", async () => {
    if (process.getuid?.() === 0) return; // root reads everything
    await mkdir(join(fixture.root, "secret"));
    await chmod(join(fixture.root, "secret"), 0o000);
    try {
      await expect(collect(fixture.root)).rejects.toThrow(/cannot read directory "secret"/);
      // excluded, it does not matter
      const paths = (await collect(fixture.root, new PathFilter(undefined, ["secret"]))).map((e) => e.stat.path);
      expect(paths).not.toContain("secret");
    } finally {
      await chmod(join(fixture.root, "secret"), 0o755);
    }
  });
});
