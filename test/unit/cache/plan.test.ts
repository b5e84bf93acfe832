import { describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { parseDockerArgv } from "../../../src/shim/argv.ts";
import { matchBuildCommand, type BuildCommand } from "../../../src/cache/build-argv.ts";
import { planBuildCache, routeBuild, type RoutingFacts, type BuildCacheFacts, type BuilderInfo, type KeyDirState } from "../../../src/cache/plan.ts";

const R = "/buildkit-cache";
const STAGING = "s1";
const from = (key: string) => ["--cache-from", `type=local,src=${R}/${key}`];
const to = (key: string) => ["--cache-to", `type=local,dest=${R}/${key}/.staging/${STAGING},mode=max,image-manifest=false`];
const hash8 = (p: string) => createHash("sha256").update(p).digest("hex").slice(0, 8);

const containerBuilder: BuilderInfo = { name: "bk", driver: "docker-container", canExport: true };
const dockerBuilder: BuilderInfo = { name: "default", driver: "docker", canExport: false };

function facts(over: Partial<BuildCacheFacts> = {}, keyDirs: Record<string, KeyDirState> = {}): BuildCacheFacts {
  return {
    cacheRoot: R,
    root: { state: "ok" },
    buildxInstalled: true,
    cliVersion: "24.0.7",
    builderAlias: false,
    dockerContext: "default",
    builder: containerBuilder,
    shimBuilderName: "shim",
    cwd: "/workspace/app",
    stagingId: STAGING,
    // By default every key already has an index (so imports are added).
    keyDir: (dir) => keyDirs[dir] ?? { hasIndex: true },
    ...over,
  };
}

function cmd(argv: string[]): BuildCommand {
  const c = matchBuildCommand(parseDockerArgv(argv));
  if (!c) throw new Error(`not a build: ${argv.join(" ")}`);
  return c;
}

function plan(argv: string[], over: Partial<BuildCacheFacts> = {}, env: Record<string, string> = {}, keyDirs: Record<string, KeyDirState> = {}) {
  return planBuildCache(cmd(argv), env, facts(over, keyDirs));
}

describe("matchBuildCommand: which commands", () => {
  it.each([
    [["build", "."], "build"],
    [["image", "build", "."], "image build"],
    [["builder", "build", "."], "builder build"],
    [["buildx", "build", "."], "buildx build"],
    [["buildx", "b", "."], "buildx build"],
    [["buildx", "--builder", "x", "build", "."], "buildx build"],
    [["buildx", "--builder=x", "b", "."], "buildx build"],
    [["buildx", "-D", "build", "."], "buildx build"],
    [["--context", "foo", "build", "."], "build"],
    [["-c", "foo", "image", "build", "."], "build"],
    [["-H", "tcp://h:2375", "--log-level=debug", "--config", "/cfg", "build", "."], "build"],
    [["-D", "--tls", "--tlscacert", "ca.pem", "buildx", "build", "."], "buildx build"],
    [["-Hunix:///x.sock", "build", "."], "build"],
  ])("%j is a build (%s)", (argv, form) => {
    expect(cmd(argv).form).toBe(form === "build" && argv.includes("image") ? "image build" : form);
  });

  it.each([
    [["run", "-t", "img", "build"]],
    [["run", "-it", "--rm", "img", "docker", "build", "."]],
    [["compose", "build"]],
    [["buildx", "bake"]],
    [["buildx", "ls"]],
    [["buildx", "--help", "build"]],
    [["image", "ls"]],
    [["builder", "prune"]],
    [["--context", "build", "ls"]], // `build` is the value of --context
    [["-c", "build", "ps"]],
    [["--unknown-global", "build", "."]],
    [["images"]],
    [[]],
  ])("%j is not a build", (argv) => {
    expect(matchBuildCommand(parseDockerArgv(argv))).toBeUndefined();
  });

  it("reads tag, context, user cache flags, builder, outputs, config dir", () => {
    const c = cmd(["--config", "/cfg", "buildx", "--builder", "a", "build", "-f", "Dockerfile", "--tag=x:1", "-t", "y", ".", "--cache-to", "type=inline", "--push", "--builder=b"]);
    expect(c).toMatchObject({ tag: "x:1", context: ".", userCacheFrom: false, userCacheTo: true, builderFlag: "b", hasOutput: true, configDir: "/cfg" });
    expect(cmd(["build", "-tX", "ctx"]).tag).toBe("X");
    expect(cmd(["build", "-t=X", "ctx"]).tag).toBe("X");
    expect(cmd(["build", "-qt", "X", "ctx"]).tag).toBe("X");
    expect(cmd(["build", "--tag", "X", "ctx"]).tag).toBe("X");
    expect(cmd(["build", ".", "-t", "late"]).tag).toBe("late"); // options after the context (cobra intersperses)
    expect(cmd(["build", "--build-arg", "A=1", "-f", "-", "--", "dir"]).context).toBe("dir");
    expect(cmd(["build", "--file", "x", "-"]).context).toBe("-");
    expect(cmd(["build", "-o", "type=tar,dest=o.tar", "."]).hasOutput).toBe(true);
    expect(cmd(["build", "--output=type=local,dest=d", "."]).hasOutput).toBe(true);
    expect(cmd(["build", "--load", "."]).hasOutput).toBe(true);
    expect(cmd(["build", "--cache-from=type=local,src=/x", "."]).userCacheFrom).toBe(true);
    expect(cmd(["build", "--help"]).help).toBe(true);
    expect(cmd(["build", "--frobnicate", "."]).unknownFlags).toEqual(["--frobnicate"]);
  });
});

describe("planBuildCache: key and flags", () => {
  it.each([
    // issue examples and the reference implementation's bugs
    [["build", "-t", "myapp:latest", "."], ["build", ...from("myapp"), ...to("myapp"), "-t", "myapp:latest", "."]],
    [["build", "-t", "localhost:5000/foo", "."], ["build", ...from("foo"), ...to("foo"), "-t", "localhost:5000/foo", "."]],
    [["build", "-t=registry.example.com/org/app:v1", "."], ["build", ...from("org_app"), ...to("org_app"), "-t=registry.example.com/org/app:v1", "."]],
    [["build", "--tag=ghcr.io/a/b@sha256:abc", "."], ["build", ...from("a_b"), ...to("a_b"), "--tag=ghcr.io/a/b@sha256:abc", "."]],
    [["build", "-t", "a", "-t", "b", "."], ["build", ...from("a"), ...to("a"), "-t", "a", "-t", "b", "."]],
    // global flags before the command stay in place
    [["--context", "default", "-D", "build", "-t", "x", "."], ["--context", "default", "-D", "build", ...from("x"), ...to("x"), "-t", "x", "."]],
    [["image", "build", "-t", "x", "."], ["image", "build", ...from("x"), ...to("x"), "-t", "x", "."]],
    [["builder", "build", "-t", "x", "."], ["builder", "build", ...from("x"), ...to("x"), "-t", "x", "."]],
    [["buildx", "b", "-t", "x", "."], ["buildx", "b", ...from("x"), ...to("x"), "-t", "x", "."]],
    [["buildx", "--builder", "bk", "build", "-t", "x", "."], ["buildx", "--builder", "bk", "build", ...from("x"), ...to("x"), "-t", "x", "."]],
    // no tag: context directory key; URL and stdin: default
    [["build", "."], ["build", ...from(`ctx-app-${hash8("/workspace/app")}`), ...to(`ctx-app-${hash8("/workspace/app")}`), "."]],
    [["build", "-f", "Dockerfile", "../lib"], ["build", ...from(`ctx-lib-${hash8("/workspace/lib")}`), ...to(`ctx-lib-${hash8("/workspace/lib")}`), "-f", "Dockerfile", "../lib"]],
    [["build", "https://github.com/a/b.git"], ["build", ...from("default"), ...to("default"), "https://github.com/a/b.git"]],
    [["build", "-"], ["build", ...from("default"), ...to("default"), "-"]],
    // tags that would escape the root
    [["build", "-t", "..", "."], ["build", ...from(`ctx-app-${hash8("/workspace/app")}`), ...to(`ctx-app-${hash8("/workspace/app")}`), "-t", "..", "."]],
    [["build", "-t", "../../etc", "."], ["build", ...from("_etc"), ...to("_etc"), "-t", "../../etc", "."]],
    // user cache flags: each decided on its own
    [["build", "--cache-from", "type=registry,ref=r/x", "-t", "x", "."], ["build", ...to("x"), "--cache-from", "type=registry,ref=r/x", "-t", "x", "."]],
    [["build", "--cache-to=type=inline", "-t", "x", "."], ["build", ...from("x"), "--cache-to=type=inline", "-t", "x", "."]],
    [["build", "--cache-from", "a", "--cache-to", "b", "-t", "x", "."], ["build", "--cache-from", "a", "--cache-to", "b", "-t", "x", "."]],
  ])("%j", (argv, expected) => {
    expect(plan(argv).args).toEqual(expected);
  });

  it("exports into a private staging dir under the key and reports the key", () => {
    const p = plan(["build", "-t", "myapp", "."]);
    expect(p.cache).toEqual({ key: "myapp", keyDir: `${R}/myapp`, importing: true, stagingDir: `${R}/myapp/.staging/${STAGING}` });
    expect(p.notices).toEqual([]);
    expect(p.debug.join("\n")).toMatch(/key "myapp" from tag "myapp" → \/buildkit-cache\/myapp/);
  });

  it("imports from a key that has no index yet (the first build only gets buildx's not-found warning)", () => {
    const p = plan(["build", "-t", "x", "."], {}, {}, { [`${R}/x`]: { hasIndex: false } });
    expect(p.args).toEqual(["build", ...from("x"), ...to("x"), "-t", "x", "."]);
    expect(p.cache?.importing).toBe(true);
    expect(p.debug.join("\n")).toMatch(/nothing to import yet/);
  });

  it("a key dir this uid cannot write: import only, one clear line", () => {
    const p = plan(["build", "-t", "x", "."], {}, {}, { [`${R}/x`]: { hasIndex: true, problem: `${R}/x is not writable by uid 1000` } });
    expect(p.args).toEqual(["build", ...from("x"), "-t", "x", "."]);
    expect(p.notices).toEqual([`shim: build cache is read-only here: ${R}/x is not writable by uid 1000`]);
  });
});

describe("planBuildCache: when the cache is off", () => {
  const argv = ["build", "-t", "x", "."];
  it("missing root: exact passthrough, explained only under SHIM_DEBUG", () => {
    const p = plan(argv, { root: { state: "missing" } });
    expect(p.args).toBe(cmd(argv).argv);
    expect(p.notices).toEqual([]);
    expect(p.debug.join("\n")).toMatch(/cache root \/buildkit-cache does not exist/);
  });
  it("unwritable root: exact passthrough and one line", () => {
    const p = plan(argv, { root: { state: "unusable", reason: "/buildkit-cache is not writable by uid 1000" } });
    expect(p.args).toEqual(argv);
    expect(p.notices).toEqual(["shim: build cache off: /buildkit-cache is not writable by uid 1000"]);
  });
  it("no buildx plugin: the docker build forms take the direct route; `buildx build` passes through", () => {
    const p = plan(argv, { buildxInstalled: false });
    expect(p.args).toEqual(argv);
    expect(p.direct).toBe(true);
    expect(plan(["image", "build", "-t", "x", "."], { buildxInstalled: false }).direct).toBe(true);
    const buildx = plan(["buildx", "build", "-t", "x", "."], { buildxInstalled: false });
    expect(buildx.direct).toBeUndefined();
    expect(buildx.args).toEqual(["buildx", "build", "-t", "x", "."]);
  });
  it("DOCKER_BUILDKIT=0 on a docker build form: passthrough (legacy builder); buildx build ignores it", () => {
    expect(plan(argv, {}, { DOCKER_BUILDKIT: "0" }).args).toEqual(argv);
    expect(plan(["buildx", "build", "-t", "x", "."], {}, { DOCKER_BUILDKIT: "0" }).args).toContain("--cache-to");
  });
  it("--help: passthrough", () => {
    expect(plan(["build", "--help"]).args).toEqual(["build", "--help"]);
  });
  it("no context and no tag: passthrough (the CLI reports the usage error)", () => {
    expect(plan(["build"]).args).toEqual(["build"]);
  });
});

describe("planBuildCache: routing and builders", () => {
  it("CLI < 23 does not send `build` to buildx: the shim rewrites every docker build form to `buildx build`", () => {
    for (const form of [["build"], ["image", "build"], ["builder", "build"]]) {
      const p = plan(["-H", "unix:///d.sock", ...form, "-t", "x", "."], { cliVersion: "20.10.24+dfsg1" });
      expect(p.args).toEqual(["-H", "unix:///d.sock", "buildx", "build", ...from("x"), ...to("x"), "-t", "x", "."]);
    }
  });

  it("routeBuild picks the builder docker build really uses", () => {
    const f = { cliVersion: "24.0.7", builderAlias: false, dockerContext: "ctx1" };
    // null = buildx's current builder
    const routeBuild_ = (c: BuildCommand, env: Record<string, string>, fs: RoutingFacts) => {
      const r = routeBuild(c, env, fs);
      return { ...r, builderName: r.builderName ?? null };
    };
    expect(routeBuild_(cmd(["build", "."]), {}, f)).toMatchObject({ rewriteToBuildx: false, builderName: "ctx1", userChoseBuilder: false });
    expect(routeBuild_(cmd(["build", "."]), {}, { ...f, builderAlias: true })).toMatchObject({ builderName: null, userChoseBuilder: false });
    expect(routeBuild_(cmd(["buildx", "build", "."]), {}, f)).toMatchObject({ builderName: null, userChoseBuilder: false });
    expect(routeBuild_(cmd(["build", "--builder", "b", "."]), {}, f)).toMatchObject({ builderName: "b", userChoseBuilder: true });
    expect(routeBuild_(cmd(["buildx", "--builder=b", "build", "."]), {}, f)).toMatchObject({ builderName: "b", userChoseBuilder: true });
    expect(routeBuild_(cmd(["build", "."]), { BUILDX_BUILDER: "e" }, f)).toMatchObject({ builderName: "e", userChoseBuilder: true });
    expect(routeBuild_(cmd(["build", "."]), {}, { ...f, cliVersion: "20.10.24" })).toMatchObject({ rewriteToBuildx: true, builderName: null });
    expect(routeBuild_(cmd(["build", "."]), {}, { ...f, cliVersion: undefined })).toMatchObject({ rewriteToBuildx: true });
  });

  it("a builder that cannot export + BUILDKIT_HOST: the shim's remote builder, --load, and both flags", () => {
    const p = plan(["build", "-t", "x", "."], { builder: dockerBuilder, buildkitHost: "unix:///bk.sock" });
    expect(p.args).toEqual(["build", "--builder", "shim", "--load", ...from("x"), ...to("x"), "-t", "x", "."]);
    expect(p.ensureBuilder).toEqual({ name: "shim", endpoint: "unix:///bk.sock" });
    expect(p.notices).toEqual([]);
  });

  it.each([["--load"], ["--push"], ["-o", "type=tar,dest=o.tar"], ["--output=type=docker"]])("no --load added when %j is given", (...flags) => {
    const p = plan(["buildx", "build", ...flags, "-t", "x", "."], { builder: dockerBuilder, buildkitHost: "tcp://bk:1234", shimBuilderName: "mine" });
    expect(p.args).toEqual(["buildx", "build", "--builder", "mine", ...from("x"), ...to("x"), ...flags, "-t", "x", "."]);
  });

  it("a builder that cannot export, no BUILDKIT_HOST: import only and one line saying how to fix it", () => {
    const p = plan(["build", "-t", "x", "."], { builder: dockerBuilder, cliVersion: "20.10.24" });
    expect(p.args).toEqual(["buildx", "build", ...from("x"), "-t", "x", "."]);
    expect(p.cache).toEqual({ key: "x", keyDir: `${R}/x`, importing: true });
    expect(p.notices).toEqual([
      'shim: build cache is read-only here (builder "default" (docker driver) cannot export cache); set BUILDKIT_HOST or use a docker-container builder to save it',
    ]);
  });

  it("a builder the user chose is never replaced, even with BUILDKIT_HOST", () => {
    const p = plan(["build", "--builder", "default", "-t", "x", "."], { builder: dockerBuilder, buildkitHost: "unix:///bk.sock" });
    expect(p.args).toEqual(["build", ...from("x"), "--builder", "default", "-t", "x", "."]);
    expect(p.ensureBuilder).toBeUndefined();
    expect(p.notices[0]).toMatch(/read-only here .*choose a docker-container or remote builder/);
  });

  it("falls back to import only when creating the remote builder failed", () => {
    const p = plan(["build", "-t", "x", "."], { builder: dockerBuilder, buildkitHost: "unix:///bk.sock", shimBuilderFailure: "permission denied" });
    expect(p.args).toEqual(["build", ...from("x"), "-t", "x", "."]);
    expect(p.notices[0]).toMatch(/creating builder "shim" for BUILDKIT_HOST failed: permission denied/);
  });

  it("an uninspectable builder is treated as unable to export", () => {
    const p = plan(["build", "-t", "x", "."], { builder: undefined, buildkitHost: "unix:///bk.sock" });
    expect(p.args.slice(0, 3)).toEqual(["build", "--builder", "shim"]);
  });

  it("read-only with nothing to import yet: import only, routed to buildx, and the line", () => {
    const p = plan(["build", "-t", "x", "."], { builder: dockerBuilder, cliVersion: "20.10.24" }, {}, { [`${R}/x`]: { hasIndex: false } });
    expect(p.args).toEqual(["buildx", "build", ...from("x"), "-t", "x", "."]);
    expect(p.notices).toHaveLength(1);
  });
});
