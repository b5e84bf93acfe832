import { describe, expect, it } from "vitest";
import { planDirectBuild } from "../../../src/buildkit/build/direct.ts";
import { planBuild, planExports } from "../../../src/buildkit/build/plan.ts";

describe("planDirectBuild (docker build without buildx)", () => {
  it("golden: a standalone buildkitd imports and exports the shared cache and loads into the daemon", () => {
    const plan = planDirectBuild({
      args: ["-t", "app:dev", "--rm", "."],
      env: { HOME: "/home/u" },
      cacheDir: "/buildkit-cache/app",
      importFromCache: true,
      buildkitHost: "tcp://buildkitd:1234",
      dockerHost: "unix:///run/docker.sock",
    });
    expect(plan.flags.buildkit).toBe("tcp://buildkitd:1234");
    expect(plan.env.DOCKER_HOST).toBe("unix:///run/docker.sock");
    expect(plan.extras).toEqual({
      loadByDefault: true,
      cacheImports: [{ type: "local", attrs: { src: "/buildkit-cache/app" } }],
      cacheExports: [{ type: "local", attrs: { dest: "/buildkit-cache/app", mode: "max" } }],
    });
    expect(plan.notices).toEqual([]);
    // No output option: the image goes into the daemon, as `docker build` does.
    const built = planBuild(plan.flags, { cwd: "/w", env: plan.env, stdoutIsTty: false, loadByDefault: true });
    expect(planExports(built, { via: "buildkitd", version: "v0.32.2" }).exports).toEqual([
      { type: "docker", attrs: { name: "app:dev" }, destination: { kind: "docker-load" } },
    ]);
  });

  it("on the Docker daemon's own BuildKit the cache is read-only (it exports inline cache only)", () => {
    const plan = planDirectBuild({ args: ["."], env: {}, cacheDir: "/c/k", importFromCache: true });
    expect(plan.flags.buildkit).toBe("docker");
    expect(plan.extras.cacheImports).toEqual([{ type: "local", attrs: { src: "/c/k" } }]);
    expect(plan.extras.cacheExports).toEqual([]);
    expect(plan.notices[0]).toMatch(/^shim: build cache is read-only here/);
    expect(planDirectBuild({ args: ["."], env: {}, dockerHost: "tcp://h:2375" }).flags.buildkit).toBe("docker+tcp://h:2375");
  });

  it("the user's own --cache-from/--cache-to win; nothing to import on a first build", () => {
    const plan = planDirectBuild({ args: ["--cache-from", "r/x:c", "--cache-to", "type=inline", "."], env: {}, cacheDir: "/c/k", importFromCache: true, buildkitHost: "unix:///b.sock" });
    expect(plan.extras.cacheImports).toEqual([]);
    expect(plan.extras.cacheExports).toEqual([]);
    expect(plan.flags.cacheFrom).toEqual([{ type: "registry", attrs: { ref: "r/x:c" } }]);
    expect(planDirectBuild({ args: ["."], env: {}, cacheDir: "/c/k", importFromCache: false, buildkitHost: "unix:///b.sock" }).extras.cacheImports).toEqual([]);
  });

  it("docker build options it cannot honour fail with one line suggesting buildx", () => {
    expect(() => planDirectBuild({ args: ["--squash", "."], env: {} })).toThrow(
      "--squash is not supported by shim's BuildKit client; install the buildx plugin to use it with docker build",
    );
    expect(() => planDirectBuild({ args: ["--isolation", "hyperv", "."], env: {} })).toThrow(/--isolation is not supported/);
    expect(() => planDirectBuild({ args: ["--bogus", "."], env: {} })).toThrow("unknown option --bogus; install the buildx plugin to use it with docker build");
  });
});
