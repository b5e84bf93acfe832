import { describe, expect, it } from "vitest";
import { cleanPath, compareUtf8, joinPath, dirPath, basePath } from "../../../src/buildkit/filesync/paths.ts";
import {
  goModeFromUnix,
  unixPermissionsFromGo,
  isRegularGoMode,
  kindOfGoMode,
  GoMode,
} from "../../../src/buildkit/filesync/filemode.ts";

describe("cleanPath (Go path.Clean)", () => {
  it.each([
    ["", "."],
    [".", "."],
    ["a/", "a"],
    ["./a//b/./c/", "a/b/c"],
    ["a/../..", ".."],
    ["../a/../b", "../b"],
    ["/../a", "/a"],
    ["//a", "/a"],
    ["/", "/"],
    ["!./foo", "!./foo"],
  ])("%j → %j", (input, out) => expect(cleanPath(input)).toBe(out));
  it("joins, dirs and bases like Go's path package", () => {
    expect(joinPath(".", "/abs/x")).toBe("abs/x");
    expect(joinPath("/", "a/../../b")).toBe("/b");
    expect(joinPath("", "")).toBe("");
    expect(dirPath("a/b/c")).toBe("a/b");
    expect(dirPath("a")).toBe(".");
    expect(basePath("a/b/")).toBe("b");
  });
});

describe("compareUtf8", () => {
  it("orders like the UTF-8 bytes, not like UTF-16 units", () => {
    const names = ["a-b", "a", "\u{1F600}", "\uE000", "é", "Z", "a/x", "ab"];
    const bytewise = [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    expect([...names].sort(compareUtf8)).toEqual(bytewise);
    // the default JS order disagrees for astral vs. private-use characters
    expect(["\uE000", "\u{1F600}"].sort()).toEqual(["\u{1F600}", "\uE000"]);
    expect(["\uE000", "\u{1F600}"].sort(compareUtf8)).toEqual(["\uE000", "\u{1F600}"]);
  });
});

describe("Go FileMode conversion", () => {
  it.each([
    ["regular 644", 0o100644, 0o644],
    ["regular 755", 0o100755, 0o755],
    ["directory 755", 0o040755, (0x80000000 | 0o755) >>> 0],
    ["symlink", 0o120777, (1 << 27) | 0o777],
    ["setuid+setgid+sticky", 0o107755, (1 << 23) | (1 << 22) | (1 << 20) | 0o755],
    ["sticky dir", 0o041777, (0x80000000 | (1 << 20) | 0o777) >>> 0],
    ["fifo", 0o010644, (1 << 25) | 0o644],
    ["socket", 0o140755, (1 << 24) | 0o755],
    ["char device", 0o020666, (1 << 26) | (1 << 21) | 0o666],
    ["block device", 0o060660, (1 << 26) | 0o660],
  ])("%s", (_name, unix, go) => {
    expect(goModeFromUnix(unix)).toBe(go);
  });
  it("maps special bits back for chmod and classifies entries", () => {
    expect(unixPermissionsFromGo((1 << 23) | (1 << 22) | (1 << 20) | 0o750)).toBe(0o7750);
    expect(isRegularGoMode(0o644)).toBe(true);
    expect(isRegularGoMode((1 << 23) | 0o755)).toBe(true); // setuid is not a type bit
    expect(isRegularGoMode(GoMode.Dir | 0o755)).toBe(false);
    expect(kindOfGoMode(GoMode.Symlink | 0o777)).toBe("symlink");
    expect(kindOfGoMode((GoMode.Dir | 0o700) >>> 0)).toBe("dir");
  });
});
