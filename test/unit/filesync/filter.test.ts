import { describe, expect, it } from "vitest";
import { PathFilter, combineIncludes, dedupePaths, type DirFilterState } from "../../../src/buildkit/filesync/filter.ts";
import { resolveFollowPaths, type TreeReader } from "../../../src/buildkit/filesync/followpaths.ts";

// A tiny in-memory tree: path → "dir" | "file" | { link: target }.
type Node = "dir" | "file" | { link: string };
function tree(nodes: Record<string, Node>): TreeReader & { list(): string[] } {
  const entries = new Map(Object.entries(nodes));
  return {
    async lstat(path) {
      const n = entries.get(path);
      if (n === undefined) return undefined;
      return typeof n === "object" ? { symlink: true, linkname: n.link } : { symlink: false, linkname: "" };
    },
    async readdir(path) {
      if (path !== "." && entries.get(path) !== "dir") return undefined;
      const prefix = path === "." ? "" : path + "/";
      return [...entries.keys()].filter((k) => k.startsWith(prefix) && !k.slice(prefix.length).includes("/")).map((k) => k.slice(prefix.length));
    },
    list() {
      return [...entries.keys()];
    },
  };
}

// Walks a sorted list of paths through the filter the way the walker does and returns what would be sent.
function filtered(paths: Record<string, "dir" | "file">, include: string[] | undefined, exclude: string[] | undefined): string[] {
  const filter = new PathFilter(include, exclude);
  const sorted = Object.keys(paths).sort();
  const out: string[] = [];
  const states = new Map<string, DirFilterState>();
  const pending = new Map<string, boolean>(); // dir → listed?
  const skipped: string[] = [];
  for (const p of sorted) {
    if (skipped.some((s) => p.startsWith(s + "/"))) continue;
    const parent = p.includes("/") ? p.slice(0, p.lastIndexOf("/")) : "";
    const isDir = paths[p] === "dir";
    const { action, state } = filter.visit(p, isDir, states.get(parent));
    if (action === "skip") {
      if (isDir) skipped.push(p);
      continue;
    }
    if (isDir) states.set(p, state);
    if (action === "exclude") {
      if (isDir) pending.set(p, false);
      continue;
    }
    for (const [dir, listed] of pending) {
      if (!listed && p.startsWith(dir + "/")) {
        out.push(dir);
        pending.set(dir, true);
      }
    }
    out.push(p);
    if (isDir) pending.set(p, true);
  }
  return out;
}

const context = {
  ".dockerignore": "file",
  "Dockerfile": "file",
  "big.bin": "file",
  "docs": "dir",
  "docs/README.md": "file",
  "docs/other.md": "file",
  "logs": "dir",
  "logs/a.log": "file",
  "logs/keep.log": "file",
  "node_modules": "dir",
  "node_modules/x": "dir",
  "node_modules/x/index.js": "file",
  "src": "dir",
  "src/main.ts": "file",
  "src/sub": "dir",
  "src/sub/a.go": "file",
} as const;

describe("PathFilter (fsutil filtered walk)", () => {
  it("sends everything without patterns", () => {
    expect(filtered(context, undefined, undefined)).toEqual(Object.keys(context).sort());
  });
  it("skips excluded directories whole, and excluded files", () => {
    expect(filtered(context, undefined, ["node_modules", "big.bin", "logs"])).toEqual([
      ".dockerignore", "Dockerfile", "docs", "docs/README.md", "docs/other.md", "src", "src/main.ts", "src/sub", "src/sub/a.go",
    ]);
  });
  it("re-includes an exception inside an excluded directory, listing the directory too", () => {
    expect(filtered(context, undefined, ["logs", "!logs/keep.log"])).toContain("logs/keep.log");
    const out = filtered(context, undefined, ["logs", "!logs/keep.log"]);
    expect(out.indexOf("logs")).toBe(out.indexOf("logs/keep.log") - 1);
    expect(out).not.toContain("logs/a.log");
  });
  it("handles wildcard exceptions (the directory must be walked)", () => {
    const out = filtered(context, undefined, ["**/*.log", "!**/keep.log"]);
    expect(out).toContain("logs");
    expect(out).toContain("logs/keep.log");
    expect(out).not.toContain("logs/a.log");
  });
  it("include patterns pull in their parent directories and nothing else", () => {
    expect(filtered(context, ["src/sub/a.go"], undefined)).toEqual(["src", "src/sub", "src/sub/a.go"]);
    expect(filtered(context, ["Dockerfile"], undefined)).toEqual(["Dockerfile"]);
  });
  it("includes everything below an included directory", () => {
    expect(filtered(context, ["src"], undefined)).toEqual(["src", "src/main.ts", "src/sub", "src/sub/a.go"]);
  });
  it("applies wildcard includes at any depth when written with **", () => {
    expect(filtered(context, ["**/*.go"], undefined)).toEqual(["src", "src/sub", "src/sub/a.go"]);
  });
  it("combines includes and excludes", () => {
    expect(filtered(context, ["src"], ["src/sub"])).toEqual(["src", "src/main.ts"]);
  });
  it("rules out directories by prefix without walking them", () => {
    const filter = new PathFilter(["src/main.ts"], undefined);
    expect(filter.visit("node_modules", true, undefined).action).toBe("skip");
    expect(filter.visit("src", true, undefined).action).toBe("exclude");
    const excl = new PathFilter(undefined, ["node_modules"]);
    expect(excl.visit("node_modules", true, undefined).action).toBe("skip");
  });
});

describe("followpaths", () => {
  it("adds the path itself when it is not a link", async () => {
    expect(await resolveFollowPaths(["Dockerfile", "Dockerfile.dockerignore"], tree({ Dockerfile: "file" }))).toEqual([
      "Dockerfile",
      "Dockerfile.dockerignore",
    ]);
  });
  it("adds symlinks and their targets, inside the root", async () => {
    const t = tree({ Dockerfile: { link: "build/Dockerfile.real" }, build: "dir", "build/Dockerfile.real": "file" });
    expect(await resolveFollowPaths(["Dockerfile"], t)).toEqual(["Dockerfile", "build/Dockerfile.real"]);
  });
  it("follows links in intermediate directories and absolute targets relative to the root", async () => {
    const t = tree({ dir: { link: "/real" }, real: "dir", "real/file": "file", abs: { link: "/etc/passwd" } });
    expect(await resolveFollowPaths(["dir/file", "abs"], t)).toEqual(["abs", "dir", "etc/passwd", "real/file"]);
  });
  it("terminates on link cycles", async () => {
    const t = tree({ a: { link: "b" }, b: { link: "a" } });
    expect(await resolveFollowPaths(["a"], t)).toEqual(["a", "b"]);
  });
  it("resolves wildcards against symlinks in the directory", async () => {
    const t = tree({ "x.txt": { link: "real.txt" }, "real.txt": "file", "y.txt": "file" });
    // the wildcard itself stays an include pattern; matching links add their targets
    expect(await resolveFollowPaths(["*.txt"], t)).toEqual(["*.txt", "real.txt"]);
    expect(await resolveFollowPaths(["*.md"], t)).toEqual(["*.md"]);
  });
  it("drops nested duplicates and gives up filtering for the root", async () => {
    expect(dedupePaths(["a", "a/b", "ab"])).toEqual(["a", "ab"]);
    expect(await resolveFollowPaths(["."], tree({}))).toBeUndefined();
    expect(combineIncludes(["x"], undefined)).toEqual(["x"]);
    expect(combineIncludes([], undefined)).toBeUndefined();
    expect(combineIncludes(["a"], ["a/b", "c"])).toEqual(["a", "c"]);
  });
});
