import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  dockerContextName,
  FactsCache,
  findBuildxPlugin,
  inspectBuilder,
  inspectKeyDir,
  inspectRoot,
  parseBuilderInspect,
  parseDockerVersion,
  type CliAccess,
} from "../../../src/cache/facts.ts";
import { ensureRemoteBuilder } from "../../../src/cache/builder.ts";

let tmp: string;
beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), "shim-facts-"));
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

// buildx v0.36 `docker buildx inspect` output, docker driver on a graphdriver daemon (no snapshotter label).
const DOCKER_DRIVER = `Name:          default
Driver:        docker
Last Activity: 2026-01-01 10:00:00 +0000 UTC

Nodes:
Name:             default
Endpoint:         default
Status:           running
BuildKit version: v0.8.3-3-g244e8cde
Platforms:        linux/amd64, linux/386
Labels:
 org.mobyproject.buildkit.worker.moby.host-gateway-ip: 172.17.0.1
`;

describe("parsing CLI output", () => {
  it("docker --version", () => {
    expect(parseDockerVersion("Docker version 20.10.24+dfsg1, build 297e128\n")).toBe("20.10.24+dfsg1");
    expect(parseDockerVersion("Docker version 28.0.1, build 068a01e")).toBe("28.0.1");
    expect(parseDockerVersion("garbage")).toBeUndefined();
  });

  it("buildx inspect: a docker driver without the containerd snapshotter cannot export", () => {
    expect(parseBuilderInspect(DOCKER_DRIVER)).toEqual({ name: "default", driver: "docker", canExport: false, endpoint: "default" });
  });

  it("buildx inspect: a docker driver with the containerd snapshotter can", () => {
    const text = DOCKER_DRIVER.replace("Labels:\n", "Labels:\n org.mobyproject.buildkit.worker.snapshotter: overlayfs\n");
    expect(parseBuilderInspect(text)?.canExport).toBe(true);
  });

  it("buildx inspect: buildx's own Features verdict wins when printed (--debug)", () => {
    expect(parseBuilderInspect(`${DOCKER_DRIVER}Features:\n Cache export: true\n`)?.canExport).toBe(true);
    expect(parseBuilderInspect(`Name: x\nDriver: remote\nFeatures:\n\tCache export:\tfalse\n`)?.canExport).toBe(false);
  });

  it("buildx inspect: remote and docker-container drivers can export", () => {
    const remote = "Name:   shim\nDriver: remote\n\nNodes:\nName:     shim0\nEndpoint: unix:///run/bk.sock\nStatus:   running\n";
    expect(parseBuilderInspect(remote)).toEqual({ name: "shim", driver: "remote", canExport: true, endpoint: "unix:///run/bk.sock" });
    expect(parseBuilderInspect("Name: b\nDriver: docker-container\n")?.canExport).toBe(true);
    expect(parseBuilderInspect("ERROR: no builder found")).toBeUndefined();
  });
});

describe("docker context name (docker/cli resolveContextName)", () => {
  it.each([
    [{ context: "a" }, { DOCKER_HOST: "unix:///x" }, {}, "a"],
    [{ host: "tcp://h" }, { DOCKER_CONTEXT: "c" }, {}, "default"],
    [{}, { DOCKER_HOST: "unix:///x", DOCKER_CONTEXT: "c" }, {}, "default"],
    [{}, { DOCKER_CONTEXT: "c" }, { currentContext: "cfg" }, "c"],
    [{}, {}, { currentContext: "cfg" }, "cfg"],
    [{}, {}, {}, "default"],
  ])("%j %j %j → %s", (global, env, config, name) => {
    expect(dockerContextName(global, env, config)).toBe(name);
  });
});

describe("file-system facts", () => {
  it("cache root: missing, not a directory, ok", async () => {
    expect(inspectRoot(join(tmp, "nope"))).toEqual({ state: "missing" });
    await writeFile(join(tmp, "file"), "");
    expect(inspectRoot(join(tmp, "file"))).toMatchObject({ state: "unusable", reason: expect.stringMatching(/not a directory/) });
    expect(inspectRoot(tmp)).toEqual({ state: "ok" });
  });

  it.skipIf(process.getuid?.() === 0)("cache root: not writable by this uid", async () => {
    await chmod(tmp, 0o555);
    expect(inspectRoot(tmp)).toMatchObject({ state: "unusable", reason: expect.stringMatching(/not writable by uid/) });
    await chmod(tmp, 0o755);
  });

  it("key dir: absent, with index", async () => {
    expect(inspectKeyDir(join(tmp, "k"))).toEqual({ hasIndex: false });
    await mkdir(join(tmp, "k"));
    await writeFile(join(tmp, "k", "index.json"), "{}");
    expect(inspectKeyDir(join(tmp, "k"))).toEqual({ hasIndex: true });
  });

  it("buildx plugin lookup follows the docker CLI's plugin dirs, config dir first", async () => {
    const cfg = join(tmp, "cfg");
    await mkdir(join(cfg, "cli-plugins"), { recursive: true });
    await writeFile(join(cfg, "cli-plugins", "docker-buildx"), "#!/bin/sh\n", { mode: 0o755 });
    expect(findBuildxPlugin(cfg, {})).toBe(join(cfg, "cli-plugins", "docker-buildx"));
    await chmod(join(cfg, "cli-plugins", "docker-buildx"), 0o644);
    expect(findBuildxPlugin(cfg, {})).not.toBe(join(cfg, "cli-plugins", "docker-buildx"));
  });

  it("the facts cache survives a damaged file and expires entries", async () => {
    const file = join(tmp, "c", "facts.json");
    await mkdir(join(tmp, "c"));
    await writeFile(file, "{broken");
    const cache = new FactsCache(file);
    expect(cache.get("k", 1000)).toBeUndefined();
    cache.set("k", { a: 1 });
    await cache.save();
    const again = new FactsCache(file);
    expect(again.get("k", 60_000)).toEqual({ a: 1 });
    expect(again.get("k", -1)).toBeUndefined();
    expect(JSON.parse(await readFile(file, "utf8")).k.value).toEqual({ a: 1 });
  });
});

/**
 * A recording fake of `docker buildx inspect|create|rm` that keeps builders as files, slow enough for races:
 * `create` fails with buildx's "existing instance" message when the builder exists.
 */
async function fakeDocker(dir: string): Promise<string> {
  const script = join(dir, "docker");
  await writeFile(
    script,
    `#!/bin/sh
state="${dir}/builders"; mkdir -p "$state"; echo "$*" >> "${dir}/calls.log"
while [ "$1" != "buildx" ]; do shift; done; shift; [ "$1" = "--debug" ] && shift
cmd="$1"; shift
case "$cmd" in
inspect)
  [ -f "$state/$1" ] || { echo "ERROR: no builder \\"$1\\" found" >&2; exit 1; }
  printf 'Name: %s\\nDriver: remote\\n\\nNodes:\\nName: %s0\\nEndpoint: %s\\n' "$1" "$1" "$(cat "$state/$1")";;
create)
  name="$2"; ep="$5"; sleep 0.2
  if [ -f "$state/$name" ]; then echo "ERROR: existing instance for \\"$name\\" but no append mode" >&2; exit 1; fi
  echo "$ep" > "$state/$name"; echo "$name";;
rm) rm -f "$state/$1";;
esac
`,
    { mode: 0o755 },
  );
  return script;
}

describe("ensureRemoteBuilder", () => {
  function cli(docker: string): CliAccess {
    return { docker, globals: [], env: { PATH: process.env.PATH }, dockerConfig: join(tmp, "dockercfg"), buildxPlugin: "/nonexistent" };
  }

  it("8 concurrent first builds: one create, all succeed", async () => {
    const docker = await fakeDocker(tmp);
    const outcomes = await Promise.all(
      Array.from({ length: 8 }, () => ensureRemoteBuilder(cli(docker), "shim", "unix:///bk.sock", new FactsCache(join(tmp, "facts.json")))),
    );
    expect(outcomes.filter((o) => o.action === "created")).toHaveLength(1);
    const calls = (await readFile(join(tmp, "calls.log"), "utf8")).split("\n").filter((l) => l.startsWith("buildx create"));
    expect(calls).toEqual(["buildx create --name shim --driver remote unix:///bk.sock"]);
  });

  it("re-creates a builder that points elsewhere, and is a no-op (cached) once it exists", async () => {
    const docker = await fakeDocker(tmp);
    const cache = new FactsCache(join(tmp, "facts.json"));
    await ensureRemoteBuilder(cli(docker), "shim", "unix:///old.sock", cache);
    expect((await ensureRemoteBuilder(cli(docker), "shim", "unix:///new.sock", cache)).action).toBe("recreated");
    expect((await inspectBuilder(cli(docker), "shim", cache, true)).info?.endpoint).toBe("unix:///new.sock");
    const before = (await readFile(join(tmp, "calls.log"), "utf8")).length;
    expect((await ensureRemoteBuilder(cli(docker), "shim", "unix:///new.sock", cache)).action).toBe("existed");
    expect((await readFile(join(tmp, "calls.log"), "utf8")).length).toBe(before); // answered from the facts cache
  });

  it("reports a create failure in one line", async () => {
    const docker = join(tmp, "docker-broken");
    await writeFile(docker, "#!/bin/sh\necho 'ERROR: failed to create: permission denied' >&2\nexit 1\n", { mode: 0o755 });
    await expect(ensureRemoteBuilder(cli(docker), "shim", "unix:///bk.sock", new FactsCache(join(tmp, "f.json")))).rejects.toThrow(
      /docker buildx create --name shim --driver remote unix:\/\/\/bk.sock: failed to create: permission denied/,
    );
  });
});
