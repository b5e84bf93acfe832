import { describe, expect, it } from "vitest";
import { choseDaemon, flagTable, parseDockerArgv, scanOptions } from "../../../src/shim/argv.ts";
import { resolveSettings, settingsFromDocument } from "../../../src/shim/config.ts";
import { composeArgs } from "../../../src/shim/compose-mode.ts";
import { socketRouting } from "../../../src/shim/docker-mode.ts";
import { childEnv } from "../../../src/shim/exec.ts";
import { fingerprint, modeFor } from "../../../src/shim/main.ts";
import { checkLoop, findRealBinary, realBinaryCandidates, type FileProbe } from "../../../src/shim/real.ts";
import { installTargets, planInstall, planUninstall, shimHome, type FsView } from "../../../src/shim/install.ts";
import { formatShimError, ShimError } from "../../../src/shim/errors.ts";

describe("dispatch by argv[0]", () => {
  it.each([
    ["docker", "docker"],
    ["/usr/bin/docker", "docker"],
    ["./docker", "docker"],
    ["docker-compose", "compose"],
    ["/usr/libexec/docker/cli-plugins/docker-compose", "compose"],
    ["shim", "shim"],
    ["/opt/dist/shim", "shim"],
    ["docker.real", "shim"],
  ])("%s → %s", (name, mode) => {
    expect(modeFor(name)).toBe(mode);
  });
});

describe("pflag scanning", () => {
  const table = flagTable("-v,--volume=", "-t,--tty", "-i,--interactive", "--name=");
  it.each<[string[], { names: string[]; values: (string | undefined)[]; positional: number }]>([
    [["-it", "img"], { names: ["interactive", "tty"], values: [undefined, undefined], positional: 1 }],
    [["-v", "a:b", "img"], { names: ["volume"], values: ["a:b"], positional: 2 }],
    [["-va:b", "img"], { names: ["volume"], values: ["a:b"], positional: 1 }],
    [["-v=a:b", "img"], { names: ["volume"], values: ["a:b"], positional: 1 }],
    [["--volume=a:b", "--name", "n", "img"], { names: ["volume", "name"], values: ["a:b", "n"], positional: 3 }],
    [["-t=false", "img"], { names: ["tty"], values: ["false"], positional: 1 }],
    [["-", "x"], { names: [], values: [], positional: 0 }],
  ])("%j", (argv, expected) => {
    const scan = scanOptions(argv, table);
    expect(scan.options.map((o) => o.name)).toEqual(expected.names);
    expect(scan.options.map((o) => o.value)).toEqual(expected.values);
    expect(scan.positional).toBe(expected.positional);
  });

  it("reports a trailing value flag without value and unknown flags", () => {
    expect(scanOptions(["-v"], table).missingValue).toBe("-v");
    expect(scanOptions(["--nope", "x"], table).unknownFlag).toBe("--nope");
    expect(scanOptions(["-z"], table).unknownFlag).toBe("-z");
  });

  it("finds the docker command after global flags", () => {
    expect(parseDockerArgv(["--context", "foo", "build", "-t", "x", "."]).command).toBe("build");
    expect(parseDockerArgv(["-H=unix:///s", "-D", "ps"]).command).toBe("ps");
    expect(parseDockerArgv(["-Hunix:///s", "ps"]).global.host).toBe("unix:///s");
    expect(parseDockerArgv(["--config", "/c", "--log-level", "debug", "--tlscacert", "a", "--tlscert", "b", "--tlskey", "c", "run"]).command).toBe("run");
    expect(parseDockerArgv(["--version"]).command).toBeUndefined();
  });
});

describe("socket routing", () => {
  const settings = { dockerHost: "unix:///run/session.sock" };
  it.each<[string, string[], NodeJS.ProcessEnv, Record<string, string>]>([
    ["no daemon chosen", ["ps"], {}, { DOCKER_HOST: "unix:///run/session.sock" }],
    ["-H", ["-H", "unix:///x", "ps"], {}, {}],
    ["--host=", ["--host=unix:///x", "ps"], {}, {}],
    ["-c", ["-c", "ctx", "ps"], {}, {}],
    ["--context", ["--context", "ctx", "ps"], {}, {}],
    ["DOCKER_HOST", ["ps"], { DOCKER_HOST: "tcp://a:1" }, {}],
    ["DOCKER_CONTEXT", ["ps"], { DOCKER_CONTEXT: "x" }, {}],
  ])("%s", (_name, argv, env, expected) => {
    expect(socketRouting(argv, env, settings)).toEqual(expected);
  });

  it("does nothing without SHIM_DOCKER_HOST", () => {
    expect(socketRouting(["ps"], {}, {})).toEqual({});
    expect(choseDaemon(parseDockerArgv(["ps"]), {})).toBe(false);
  });
});

describe("config", () => {
  it("accepts documented keys and env-style names", () => {
    expect(
      settingsFromDocument({ path_map: { "/home/retro/work": "/srv/ws" }, debug: true, SHIM_DOCKER_HOST: "unix:///s", cache_dir: "/c" }, "f.yaml"),
    ).toEqual({ pathMap: "/home/retro/work=/srv/ws", debug: "1", dockerHost: "unix:///s", cacheDir: "/c" });
  });

  it.each<[unknown, RegExp]>([
    [{ bogus: 1 }, /config f\.yaml: unknown key "bogus"/],
    [{ debug: "yes" }, /key "debug" must be true or false/],
    [{ cache_dir: "relative" }, /key "cache_dir" must be an absolute path/],
    [{ path_map: [1] }, /key "path_map" must be/],
    [[1, 2], /expected a mapping/],
    [{ path_map: "work=/srv" }, /^config f\.yaml: key "path_map": "work=\/srv" must be \/container\/prefix=\/daemon\/prefix/],
    [{ path_map: { relative: "/srv" } }, /^config f\.yaml: key "path_map": "relative=\/srv" must be/],
  ])("rejects %j", (doc, message) => {
    expect(() => settingsFromDocument(doc, "f.yaml")).toThrow(message);
  });

  it("environment wins over the file; empty env counts as unset", () => {
    expect(resolveSettings({ SHIM_PATH_MAP: "/a=/b", SHIM_DEBUG: "" }, { pathMap: "/c=/d", debug: "1" })).toEqual({ pathMap: "/a=/b", debug: "1" });
  });
});

describe("compose plugin protocol", () => {
  it.each<[string, string[], NodeJS.ProcessEnv, string[]]>([
    ["metadata", ["docker-cli-plugin-metadata"], {}, ["docker-cli-plugin-metadata"]],
    ["plugin keeps compose", ["compose", "up"], { DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND: "/usr/bin/docker" }, ["compose", "up"]],
    ["plugin keeps globals", ["--context", "x", "compose", "ps"], { DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND: "docker" }, ["--context", "x", "compose", "ps"]],
    ["standalone drops compose", ["compose", "up"], {}, ["up"]],
    ["standalone as is", ["up", "-d"], {}, ["up", "-d"]],
  ])("%s", (_name, args, env, expected) => {
    expect(composeArgs(args, env)).toEqual(expected);
  });
});

function fakeProbe(executables: Record<string, string>): FileProbe {
  return {
    isExecutable: (p) => p in executables,
    realpath: (p) => executables[p],
  };
}

describe("finding the real binary", () => {
  const self = "/opt/shim/shim";
  const base = { kind: "docker" as const, self, cwd: "/", env: { PATH: "/usr/local/bin:/usr/bin" } };

  it("prefers SHIM_REAL_DOCKER and rejects a bad one", () => {
    const probe = fakeProbe({ "/x/docker": "/x/docker" });
    expect(findRealBinary({ ...base, invokedAs: "docker", env: { SHIM_REAL_DOCKER: "/x/docker" } }, probe)).toBe("/x/docker");
    expect(() => findRealBinary({ ...base, invokedAs: "docker", env: { SHIM_REAL_DOCKER: "/nope" } }, probe)).toThrow(/not an executable/);
    expect(() => findRealBinary({ ...base, invokedAs: "docker", env: { SHIM_REAL_DOCKER: "/usr/bin/docker" } }, fakeProbe({ "/usr/bin/docker": self }))).toThrow(/back at the shim/);
  });

  it("then docker.real beside the invoked path, then the defaults, then PATH without the shim", () => {
    const probe = fakeProbe({
      "/usr/local/bin/docker": self,
      "/usr/local/bin/docker.real": "/usr/local/bin/docker.real",
      "/usr/bin/docker": "/usr/bin/docker",
    });
    expect(findRealBinary({ ...base, invokedAs: "docker" }, probe)).toBe("/usr/local/bin/docker.real");
    const noReal = fakeProbe({ "/usr/local/bin/docker": self, "/usr/bin/docker": "/usr/bin/docker" });
    expect(findRealBinary({ ...base, invokedAs: "/usr/local/bin/docker" }, noReal)).toBe("/usr/bin/docker");
    const defaults = fakeProbe({ "/usr/local/bin/docker": self, "/usr/bin/docker.real": "/usr/bin/docker.real", "/usr/bin/docker": self });
    expect(findRealBinary({ ...base, invokedAs: "docker" }, defaults)).toBe("/usr/bin/docker.real");
  });

  it("ends a loop back into the shim with a clear error", () => {
    const onlyShim = fakeProbe({ "/usr/local/bin/docker": self, "/usr/bin/docker": self });
    expect(() => findRealBinary({ ...base, invokedAs: "docker" }, onlyShim)).toThrow(/cannot find the real docker/);
    const chain = checkLoop({}, "aaaa");
    expect(() => checkLoop({ SHIM_EXEC_CHAIN: chain }, "aaaa")).toThrow(/loop/);
    expect(checkLoop({ SHIM_EXEC_CHAIN: chain }, "bbbb")).toBe("aaaa,bbbb");
    expect(fingerprint("docker", "/d", ["ps"])).not.toBe(fingerprint("docker", "/d", ["ps", "-a"]));
  });

  it("looks for the compose plugin as docker-compose.real in plugin dirs", () => {
    const candidates = realBinaryCandidates({ kind: "compose", invokedAs: "/usr/libexec/docker/cli-plugins/docker-compose", self, cwd: "/", env: { HOME: "/root", PATH: "/usr/bin" } }, fakeProbe({}));
    expect(candidates[0]!.path).toBe("/usr/libexec/docker/cli-plugins/docker-compose.real");
    expect(candidates.map((c) => c.path)).toContain("/root/.docker/cli-plugins/docker-compose.real");
  });
});

describe("install", () => {
  function fsView(files: Record<string, string>): FsView {
    return { exists: (p) => p in files, realpath: (p) => files[p] };
  }
  const self = "/src/dist/shim";

  it("renames originals to .real and links them to the installed shim; second run is a no-op", () => {
    const fs = fsView({ "/p/bin/docker": "/p/bin/docker", "/p/libexec/docker/cli-plugins/docker-compose": "/p/libexec/docker/cli-plugins/docker-compose" });
    const targets = installTargets("/p", {}, fs, self);
    expect(targets.map((t) => t.kind)).toEqual(["docker", "compose-plugin"]);
    expect(planInstall(targets, "/p/bin/shim", self, fs)).toEqual([
      { op: "copy-self", to: "/p/bin/shim" },
      { op: "rename", from: "/p/bin/docker", to: "/p/bin/docker.real" },
      { op: "link", path: "/p/bin/docker", target: "/p/bin/shim" },
      { op: "rename", from: "/p/libexec/docker/cli-plugins/docker-compose", to: "/p/libexec/docker/cli-plugins/docker-compose.real" },
      { op: "link", path: "/p/libexec/docker/cli-plugins/docker-compose", target: "/p/bin/shim" },
    ]);
    const installed = fsView({
      "/p/bin/shim": "/p/bin/shim",
      "/p/bin/docker": "/p/bin/shim",
      "/p/bin/docker.real": "/p/bin/docker.real",
    });
    expect(planInstall(installTargets("/p", {}, installed, "/p/bin/shim"), "/p/bin/shim", "/p/bin/shim", installed)).toEqual([
      { op: "skip", path: "/p/bin/docker", why: "already installed" },
    ]);
    expect(planUninstall(installTargets("/p", {}, installed, "/p/bin/shim"), "/p/bin/shim", "/p/bin/shim", installed)).toEqual([
      { op: "remove", path: "/p/bin/docker" },
      { op: "rename", from: "/p/bin/docker.real", to: "/p/bin/docker" },
    ]);
  });

  it("accepts a flat prefix (DIR/docker) and puts the shim beside docker", () => {
    const fs = fsView({ "/p/docker": "/p/docker", "/p/cli-plugins/docker-compose": "/p/cli-plugins/docker-compose" });
    const targets = installTargets("/p", {}, fs, self);
    expect(targets).toEqual([
      { path: "/p/docker", kind: "docker" },
      { path: "/p/cli-plugins/docker-compose", kind: "compose-plugin" },
    ]);
    expect(shimHome("/p", targets)).toBe("/p/shim");
    expect(shimHome(undefined, targets)).toBe("/usr/local/bin/shim");
  });

  it("refuses to clobber when both the binary and .real exist", () => {
    const fs = fsView({ "/p/bin/docker": "/p/bin/docker", "/p/bin/docker.real": "/p/bin/docker.real" });
    expect(() => planInstall(installTargets("/p", {}, fs, self), "/p/bin/shim", self, fs)).toThrow(ShimError);
  });
});

describe("errors and env", () => {
  it("formats one line", () => {
    expect(formatShimError(new ShimError("bad\n  thing"))).toBe("shim: bad thing");
  });
  it("applies env changes", () => {
    expect(childEnv({ A: "1", B: "2" }, { B: null, C: "3" })).toEqual({ A: "1", C: "3" });
  });
});
