import { describe, expect, it } from "vitest";
import { toJson } from "@bufbuild/protobuf";
import { parseBuildFlags } from "../../../src/buildkit/build/flags.ts";
import { planBuild, planExports, supportsMultipleExports, type PlanFacts } from "../../../src/buildkit/build/plan.ts";
import { SolveRequestSchema } from "../../../src/buildkit/proto/gen/buildkit/control_pb.ts";
import { toSolveRequest } from "../../../src/buildkit/solve/request.ts";

const facts: PlanFacts = { cwd: "/work/app", env: {}, stdoutIsTty: false, loadByDefault: false };
const plan = (args: string[], more: Partial<PlanFacts> = {}) => planBuild(parseBuildFlags(args, {}), { ...facts, ...more });
const BUILDKITD = { via: "buildkitd" as const, version: "v0.32.2" };
const DOCKERD = { via: "docker" as const, version: "unknown (≤ v0.10)" };

describe("planBuild", () => {
  it("golden: locals, Dockerfile name, frontend attributes and the SolveRequest they make", () => {
    const p = plan(["-f", "docker/Dockerfile.dev", "--target", "dev", "--build-arg", "A=1", "--build-context", "lib=../lib", "--build-context", "base=docker-image://alpine:3", "."]);
    expect(p.locals).toEqual({ context: "/work/app", dockerfile: "/work/app/docker", lib: "/work/lib" });
    expect(p.contextDir).toBe("/work/app");
    expect(p.dockerfileDisplay).toBe("/work/app/docker/Dockerfile.dev");
    expect(toJson(SolveRequestSchema, toSolveRequest(p.request))).toEqual({
      Frontend: "dockerfile.v0",
      FrontendAttrs: {
        "build-arg:A": "1",
        "context:base": "docker-image://alpine:3",
        "context:lib": "local:lib",
        filename: "Dockerfile.dev",
        "frontend.caps": "moby.buildkit.frontend.contexts+forward",
        target: "dev",
      },
      Cache: {},
    });
  });

  it("-f is relative to the working directory, not the context (as buildx)", () => {
    const p = plan(["-f", "Dockerfile.ci", "sub/dir"]);
    expect(p.locals).toEqual({ context: "/work/app/sub/dir", dockerfile: "/work/app" });
    expect(p.request.filename).toBe("Dockerfile.ci");
  });

  it("named contexts called context or dockerfile get other local names", () => {
    expect(plan(["--build-context", "context=/x", "."]).locals._context).toBe("/x");
    expect(plan(["--build-context", "context=/x", "."]).request.frontendAttrs).toMatchObject({ "context:context": "local:_context" });
  });

  it("stdin: `-` is a Dockerfile with an empty context; `-f -` keeps the context", () => {
    const dash = plan(["-"]);
    expect([dash.dockerfileFromStdin, dash.emptyContext, dash.locals, dash.request.filename]).toEqual([true, true, {}, "Dockerfile"]);
    const f = plan(["-f", "-", "."]);
    expect([f.dockerfileFromStdin, f.emptyContext, f.locals]).toEqual([true, false, { context: "/work/app" }]);
  });

  it("a git or https context is fetched by the frontend: no locals", () => {
    const p = plan(["-f", "build/Dockerfile", "https://github.com/o/r.git#main"]);
    expect(p.locals).toEqual({});
    expect(p.request.frontendAttrs).toEqual({ context: "https://github.com/o/r.git#main" });
    expect(p.request.filename).toBe("build/Dockerfile");
  });

  it("tags name the image outputs; dests become absolute; cacheonly is dropped", () => {
    const p = plan(["-t", "a:1", "-t", "b:2", "-o", "type=oci,dest=out/x.tar", "-o", "type=local,dest=out/fs", "-o", "type=image,name=keep", "-o", "type=cacheonly", "."]);
    expect(p.outputs).toEqual([
      { type: "oci", attrs: { name: "a:1,b:2" }, dest: "/work/app/out/x.tar" },
      { type: "local", attrs: {}, dest: "/work/app/out/fs" },
      { type: "image", attrs: { name: "keep" } },
    ]);
  });

  it("cache entries: local paths absolute and required; others as given", () => {
    const p = plan(["--cache-from", "type=local,src=c", "--cache-from", "r/x:cache", "--cache-to", "type=inline", "."]);
    expect(p.cacheImports).toEqual([{ type: "local", attrs: { src: "/work/app/c" } }, { type: "registry", attrs: { ref: "r/x:cache" } }]);
    expect(p.cacheExports).toEqual([{ type: "inline", attrs: {} }]);
    expect(() => plan(["--cache-to", "type=local,mode=max", "."])).toThrow("--cache-to type=local needs dest=DIR");
  });

  it("refuses outputs that cannot work", () => {
    expect(() => plan(["--push", "."])).toThrow("a tag is needed when pushing to a registry: add -t NAME");
    expect(() => plan(["-o", "type=tar", "."])).toThrow(/type=tar needs dest=FILE/);
    expect(() => plan(["-o", "type=local", "."])).toThrow(/type=local needs dest=DIR/);
    expect(() => plan(["-o", "-", "."], { stdoutIsTty: true })).toThrow(/refusing to write the tar output to the terminal/);
    expect(plan(["-o", "-", "."]).outputs).toEqual([{ type: "tar", attrs: {}, dest: "-" }]);
  });

  it("secrets: files absolute, env as named", () => {
    expect(plan(["--secret", "id=a,src=s.txt", "--secret", "id=b,env=B", "."]).secrets).toEqual({ a: { file: "/work/app/s.txt" }, b: { env: "B" } });
  });
});

describe("planExports", () => {
  it("--load: docker tarball streamed into the daemon from buildkitd; moby exporter inside dockerd", () => {
    const p = plan(["-t", "app:1", "--load", "."]);
    expect(planExports(p, BUILDKITD).exports).toEqual([{ type: "docker", attrs: { name: "app:1" }, destination: { kind: "docker-load" } }]);
    expect(planExports(p, DOCKERD).exports).toEqual([{ type: "moby", attrs: { name: "app:1" }, destination: { kind: "none" } }]);
  });

  it("--push: the image exporter pushes from buildkitd; dockerd stores it and the daemon pushes", () => {
    const p = plan(["-t", "127.0.0.1:5000/app:1", "-o", "type=image,push=true,registry.insecure=true", "."]);
    expect(planExports(p, BUILDKITD).exports).toEqual([
      { type: "image", attrs: { name: "127.0.0.1:5000/app:1", push: "true", "registry.insecure": "true" }, destination: { kind: "none" } },
    ]);
    expect(planExports(p, DOCKERD).exports).toEqual([
      { type: "moby", attrs: { name: "127.0.0.1:5000/app:1" }, destination: { kind: "none" }, pushThroughDaemon: ["127.0.0.1:5000/app:1"] },
    ]);
  });

  it("file and directory outputs come back through the session", () => {
    const p = plan(["-o", "type=oci,dest=x.tar", "."]);
    expect(planExports(p, BUILDKITD).exports).toEqual([{ type: "oci", attrs: {}, destination: { kind: "file", path: "/work/app/x.tar" } }]);
    expect(planExports(plan(["-o", "type=docker,dest=-", "."]), BUILDKITD).exports[0]!.destination).toEqual({ kind: "stdout" });
    expect(planExports(plan(["-o", "out", "."]), DOCKERD).exports).toEqual([{ type: "local", attrs: {}, destination: { kind: "directory", path: "/work/app/out" } }]);
  });

  it("no output: dockerd loads (as buildx's docker driver), buildkitd warns, the docker build route loads", () => {
    expect(planExports(plan(["-t", "a", "."]), DOCKERD).exports).toEqual([{ type: "moby", attrs: { name: "a" }, destination: { kind: "none" } }]);
    const kept = planExports(plan(["."]), BUILDKITD);
    expect(kept.exports).toEqual([]);
    expect(kept.notices).toEqual(["shim: no output specified: the result stays in BuildKit's cache only; use --load, --push or -o to get it out"]);
    expect(planExports(plan(["-t", "a", "."], { loadByDefault: true }), BUILDKITD).exports).toEqual([{ type: "docker", attrs: { name: "a" }, destination: { kind: "docker-load" } }]);
  });

  it("several outputs need BuildKit v0.13+", () => {
    const p = plan(["-t", "a", "--load", "-o", "type=oci,dest=x.tar", "."]);
    expect(planExports(p, BUILDKITD).exports.map((e) => e.type)).toEqual(["oci", "docker"]);
    expect(() => planExports(p, { via: "buildkitd", version: "v0.12.5" })).toThrow(/BuildKit v0.12.5 takes one output per build, but 2 were given \(oci, docker\)/);
    expect(() => planExports(p, DOCKERD)).toThrow(/one output per build/);
    expect([supportsMultipleExports("v0.13.0"), supportsMultipleExports("v0.12.5"), supportsMultipleExports("unknown (≤ v0.10)")]).toEqual([true, false, false]);
  });
});
