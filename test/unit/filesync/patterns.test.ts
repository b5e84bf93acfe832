import { describe, expect, it } from "vitest";
import { PatternMatcher, PatternError, type MatchInfo } from "../../../src/buildkit/filesync/patterns.ts";

// One pattern against one path, evaluated the three ways the code uses (full parent check, parent results
// passed down directory by directory, and parent results unknown) — all must agree.
function evaluate(patterns: string[], path: string): boolean {
  const pm = new PatternMatcher(patterns);
  const viaParents = pm.matchesOrParentMatches(path);
  let info: MatchInfo | undefined;
  const parts = path.split("/");
  for (let i = 1; i < parts.length; i++) info = pm.matchesUsingParentResults(parts.slice(0, i).join("/"), info).info;
  const viaChain = pm.matchesUsingParentResults(path, info).matched;
  const viaNoContext = pm.matchesUsingParentResults(path, undefined).matched;
  expect(viaChain, `chained results for ${JSON.stringify(patterns)} ${path}`).toBe(viaParents);
  expect(viaNoContext, `no-context results for ${JSON.stringify(patterns)} ${path}`).toBe(viaParents);
  return viaParents;
}

describe("PatternMatcher: single patterns (patternmatcher semantics)", () => {
  const table: [pattern: string, path: string, match: boolean][] = [
    ["**", "file", true],
    ["**", "file/", true],
    ["**/", "file", true],
    ["**", "dir/file", true],
    ["**/**", "dir/file", true],
    ["dir/**", "dir/file", true],
    ["dir/**", "dir/dir2/file", true],
    ["**/dir", "dir", true],
    ["**/dir", "dir/file", true],
    ["**/dir2/*", "dir/dir2/file", true],
    ["**/dir2/**", "dir/dir2/dir3/file", true],
    ["**file", "file", true],
    ["**file", "dir/file", true],
    ["**/file", "dir/file", true],
    ["**file", "dir/dir/file", true],
    ["**/file*", "dir/dir/file.txt", true],
    ["**/file*txt", "dir/dir/file.txt", true],
    ["**/**/*.txt", "dir/dir/file.txt", true],
    ["**/**/*.txt2", "dir/dir/file.txt", false],
    ["**/*.txt", "file.txt", true],
    ["a**/*.txt", "a/file.txt", true],
    ["a**/*.txt", "a/dir/dir/file.txt", true],
    ["a/*.txt", "a/dir/file.txt", false],
    ["a/*.txt", "a/file.txt", true],
    ["a/*.txt**", "a/file.txt", true],
    ["a[b-d]e", "ae", false],
    ["a[b-d]e", "ace", true],
    ["a[b-d]e", "aae", false],
    ["a[^b-d]e", "aze", true],
    [".*", ".foo", true],
    [".*", "foo", false],
    ["abc.def", "abcdef", false],
    ["abc.def", "abc.def", true],
    ["abc?def", "abcZdef", true],
    ["abc?def", "abcdef", false],
    ["a\\\\", "a\\", true],
    ["**/foo/bar", "foo/bar", true],
    ["**/foo/bar", "dir/dir2/foo/bar", true],
    ["abc/**", "abc", false],
    ["abc/**", "abc/def/ghi", true],
    ["**/.foo", ".foo", true],
    ["**/.foo", "bar.foo", false],
    ["a(b)c/def", "a(b)c/def", true],
    ["a(b)c/def", "a(b)c/xyz", false],
    ["a.|)$(}+{bc", "a.|)$(}+{bc", true],
    ["dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true],
    ["a\\*b", "a*b", true],
    ["a\\*b", "ab", false],
    ["a?b", "a☺b", true], // `?` is one character, not one UTF-16 unit or byte
    ["a[^a]b", "a☺b", true],
    ["a???b", "a☺b", false],
    ["a?b", "a🙂b", true],
    ["a?b", "a/b", false],
    ["a*b", "a/b", false],
    ["[\\]a]", "]", true],
    ["[\\-]", "-", true],
    ["[x\\-]", "-", true],
    ["[x\\-]", "z", false],
    ["[a\\-c]", "b", false], // an escaped dash is not a range
    ["[a-c]", "b", true],
    ["a]b", "a]b", true],
    ["*x", "xxx", true],
    ["a*b*c*d*e*/f", "axbxcxdxexxx/f", true],
    ["a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false],
  ];
  it.each(table)("%j vs %j → %s", (pattern, path, match) => {
    expect(evaluate([pattern], path)).toBe(match);
  });
});

describe("PatternMatcher: lists with exceptions", () => {
  const table: [patterns: string[], path: string, match: boolean][] = [
    [["*"], "fileutils.go", true],
    [["*.go"], "fileutils.go", true],
    [["!fileutils.go", "*.go"], "fileutils.go", true], // an exception only undoes earlier matches
    [["*.go", "!fileutils.go"], "fileutils.go", false],
    [["docs", "!docs/README.md"], "docs/README.md", false],
    [["docs/", "!docs/README.md"], "docs/README.md", false],
    [["docs/*", "!docs/README.md"], "docs/README.md", false],
    [["docs", "!docs/README.md"], "docs/other.md", true],
    [["**", "!util/docker/web"], "util/docker/web/foo", false],
    [["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", true],
    [["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", false],
    [["*.log", "!keep.log"], "keep.log", false],
    [["*.log", "!keep.log"], "drop.log", true],
    [[], "anything", false],
    [["", "   "], "anything", false],
  ];
  it.each(table)("%j vs %j → %s", (patterns, path, match) => {
    expect(evaluate(patterns, path)).toBe(match);
  });
});

describe("PatternMatcher: dockerignore, not gitignore", () => {
  it("anchors a bare pattern at the root", () => {
    expect(evaluate(["foo"], "foo")).toBe(true);
    expect(evaluate(["foo"], "a/foo")).toBe(false); // gitignore would match here
    expect(evaluate(["*.log"], "a/x.log")).toBe(false);
    expect(evaluate(["**/*.log"], "a/x.log")).toBe(true);
  });
  it("matches everything below a matching directory", () => {
    expect(evaluate(["node_modules"], "node_modules/a/b/c.js")).toBe(true);
    expect(evaluate(["a/b"], "a/b/c/d")).toBe(true);
    expect(evaluate(["a/b"], "a/bc")).toBe(false);
  });
  it("cleans patterns like Go's filepath.Clean", () => {
    expect(evaluate(["./foo/"], "foo")).toBe(true);
    expect(evaluate(["foo//bar/../baz"], "foo/baz")).toBe(true);
    expect(evaluate(["  spaced  "], "spaced")).toBe(true);
    expect(new PatternMatcher(["docs", "  !docs/README.md"]).hasExceptions).toBe(true);
  });
});

describe("PatternMatcher: syntax errors", () => {
  it.each(["!", "[", "[^", "[^bc", "a[", "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]"])("rejects %j", (p) => {
    expect(() => new PatternMatcher([p])).toThrow(PatternError);
  });
});
