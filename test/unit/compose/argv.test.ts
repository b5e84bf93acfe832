import { describe, expect, it } from "vitest";
import { parseComposeArgv, parseSubcommand } from "../../../src/compose/argv.ts";
import { needsOf } from "../../../src/compose/plan.ts";

const parse = (tokens: string[], plugin = false) => parseComposeArgv(tokens, plugin)!;

describe("compose argv", () => {
  it.each<[string, string[], boolean, { start: number; sub?: string; at: number }]>([
    ["standalone", ["-f", "a.yml", "up", "-d"], false, { start: 0, sub: "up", at: 2 }],
    ["plugin form", ["compose", "-p", "x", "ps"], true, { start: 1, sub: "ps", at: 3 }],
    ["plugin form with docker globals", ["--context", "c", "-H=unix:///s", "compose", "--project-directory=/p", "logs"], true, { start: 4, sub: "logs", at: 5 }],
    ["attached value", ["-fa.yml", "--env-file=.e", "build"], false, { start: 0, sub: "build", at: 2 }],
    ["no subcommand", ["-f", "a.yml"], false, { start: 0, at: 2 }],
  ])("%s", (_name, tokens, plugin, expected) => {
    const argv = parse(tokens, plugin);
    expect(argv.start).toBe(expected.start);
    expect(argv.subcommand).toBe(expected.sub);
    expect(argv.subcommandIndex).toBe(expected.at);
  });

  it("collects the globals that decide files and names", () => {
    const argv = parse(["-f", "a.yml", "--file=b.yml", "-p", "one", "--project-name", "two", "--env-file", "e1", "--profile", "x", "--workdir", "/w", "up"]);
    expect(argv.globals).toEqual({ files: ["a.yml", "b.yml"], projectName: "two", projectDirectory: "/w", envFiles: ["e1"], profiles: ["x"], informational: false });
    expect(argv.globalTokens).toEqual(argv.tokens.slice(0, 13));
  });

  it("flags an unknown global (arity unknown) and returns nothing for a plugin argv without compose", () => {
    expect(parse(["--frobnicate", "up"]).unknownGlobal).toBe("--frobnicate");
    expect(parse(["-f"]).unknownGlobal).toBe("-f");
    expect(parseComposeArgv(["ps"], true)).toBeUndefined();
  });

  it("marks --help/--version globals as informational", () => {
    expect(needsOf(parse(["--version"]), undefined).projectName).toBe(false);
    expect(needsOf(parse(["-h", "up"]), undefined).projectName).toBe(false);
  });
});

describe("--build is a real option of the subcommand only", () => {
  const builds = (tokens: string[]) => {
    const argv = parse(tokens);
    return parseSubcommand(argv)?.builds ?? false;
  };
  it.each<[string[], boolean]>([
    [["build"], true],
    [["build", "web", "--no-cache"], true],
    [["up", "--build"], true],
    [["up", "-d", "web", "--build"], true],
    [["up", "--scale", "web=2", "--build", "web"], true],
    [["up", "--build=false"], false],
    [["up", "--build=true"], true],
    [["up", "--exit-code-from", "--build"], false],
    [["up", "--", "--build"], false],
    [["up"], false],
    [["create", "--build"], true],
    [["run", "--build", "app", "sh"], true],
    [["run", "app", "make", "--build"], false],
    [["run", "--rm", "-e", "A=1", "app", "npm", "run", "build"], false],
    [["run", "app", "build"], false],
    [["ps", "--build"], false],
    [["up", "--frob", "--build"], true],
  ])("%j → %s", (tokens, expected) => {
    expect(builds(tokens)).toBe(expected);
  });

  it("reads build --builder, --print and run -v", () => {
    expect(parseSubcommand(parse(["build", "--builder", "b1", "web"]))?.builder).toBe("b1");
    expect(parseSubcommand(parse(["build", "--print"]))?.noBuildOutput).toBe(true);
    const run = parseSubcommand(parse(["run", "-v", "/a:/b", "--volume=/c:/d", "-vx:/y", "app", "-v", "/not:/me"]))!;
    expect(run.runVolumes.map((o) => o.value)).toEqual(["/a:/b", "/c:/d", "x:/y"]);
    expect(run.services).toEqual(["app"]);
    expect(parseSubcommand(parse(["up", "-d", "web", "--scale", "db=2", "db", "--", "x"]))!.services).toEqual(["web", "db", "x"]);
    expect(parseSubcommand(parse(["build", "--with-dependencies", "web"]))!.withDependencies).toBe(true);
  });

  it("knows which commands need what", () => {
    expect(needsOf(parse(["ps"]), undefined)).toEqual({ projectName: true, volumes: false, cache: false });
    expect(needsOf(parse(["version"]), undefined).projectName).toBe(false);
    expect(needsOf(parse(["ls"]), undefined).projectName).toBe(false);
    const up = parse(["up", "--build"]);
    expect(needsOf(up, parseSubcommand(up))).toEqual({ projectName: true, volumes: true, cache: true });
    const build = parse(["build", "--print"]);
    expect(needsOf(build, parseSubcommand(build)).cache).toBe(false);
    const help = parse(["up", "--help"]);
    expect(needsOf(help, parseSubcommand(help)).projectName).toBe(false);
  });
});
