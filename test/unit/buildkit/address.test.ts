import { describe, expect, it } from "vitest";
import { parseBuildkitAddress, planCandidates, resolveTlsDir } from "../../../src/buildkit/transport/address.ts";

const addresses = (explicit: string | undefined, env: Record<string, string>, dockerHost?: string) =>
  planCandidates(explicit, env, dockerHost).map((c) => `${c.source}: ${c.target.kind === "docker" ? `docker ${c.target.dockerHost}` : c.target.address}`);

describe("planCandidates", () => {
  it("defaults: rootful socket, rootless socket, then the Docker daemon", () => {
    expect(addresses(undefined, { XDG_RUNTIME_DIR: "/run/user/1000" })).toEqual([
      "default socket: unix:///run/buildkit/buildkitd.sock",
      "default socket: unix:///run/user/1000/buildkit/buildkitd.sock",
      "docker daemon: docker unix:///var/run/docker.sock",
    ]);
    expect(addresses(undefined, { DOCKER_HOST: "tcp://10.0.0.1:2375" })).toEqual([
      "default socket: unix:///run/buildkit/buildkitd.sock",
      "docker daemon: docker tcp://10.0.0.1:2375",
    ]);
  });

  it("an explicit address, then BUILDKIT_HOST, is the only candidate", () => {
    const env = { BUILDKIT_HOST: "tcp://bk:1234", XDG_RUNTIME_DIR: "/run/user/0" };
    expect(addresses("unix:///tmp/bk.sock", env)).toEqual(["option: unix:///tmp/bk.sock"]);
    expect(addresses(undefined, env)).toEqual(["BUILDKIT_HOST: tcp://bk:1234"]);
  });

  it("the dockerHost override beats DOCKER_HOST, also for the `docker` address", () => {
    expect(addresses("docker", { DOCKER_HOST: "unix:///a.sock" }, "unix:///b.sock")).toEqual(["option: docker unix:///b.sock"]);
    expect(addresses(undefined, { DOCKER_HOST: "unix:///a.sock" }, "unix:///b.sock").at(-1)).toBe("docker daemon: docker unix:///b.sock");
  });

  it("XDG_RUNTIME_DIR lists: the first entry is used", () => {
    expect(addresses(undefined, { XDG_RUNTIME_DIR: "/run/user/5:/other" })[1]).toBe("default socket: unix:///run/user/5/buildkit/buildkitd.sock");
  });
});

describe("parseBuildkitAddress", () => {
  it.each([
    ["unix:///run/buildkit/buildkitd.sock", { kind: "unix", socketPath: "/run/buildkit/buildkitd.sock" }],
    ["tcp://buildkitd:1234", { kind: "tcp", host: "buildkitd", port: 1234 }],
    ["tcp://[::1]:1234", { kind: "tcp", host: "::1", port: 1234 }],
    ["docker-container://buildx_buildkit_default0", { kind: "docker-container", container: "buildx_buildkit_default0" }],
    ["docker+unix:///var/run/docker.sock", { kind: "docker", dockerHost: "unix:///var/run/docker.sock" }],
  ])("%s", (address, expected) => {
    expect(parseBuildkitAddress(address)).toMatchObject({ address, ...expected });
  });

  it.each([
    ["tcp://host", /port is required/],
    ["unix://", /empty socket path/],
    ["docker-container://c?context=remote", /contexts are not supported/],
    ["ssh://host", /unsupported BuildKit address/],
  ])("rejects %s", (address, message) => {
    expect(() => parseBuildkitAddress(address)).toThrow(message);
  });
});

describe("resolveTlsDir (buildctl --tlsdir)", () => {
  it("prefers the .pem names and falls back to ca.crt/tls.crt/tls.key", () => {
    const present = new Set(["/t/ca.pem", "/t/ca.crt", "/t/tls.crt", "/t/tls.key"]);
    expect(resolveTlsDir("/t", (p) => present.has(p))).toEqual({ caCert: "/t/ca.pem", cert: "/t/tls.crt", key: "/t/tls.key" });
  });
  it("names the missing file", () => {
    expect(() => resolveTlsDir("/t", (p) => p === "/t/ca.pem")).toThrow("does not contain cert.pem or tls.crt");
  });
});
