// The core shim against the real test bed: passthrough parity (exit status, signals, stdin) and the
// dev-container scenario (the shim inside a container, the daemon outside, bind mounts translated).
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadTestbed, makeShimDir, repoRoot, type ShimDir } from "./testbed.ts";

const tb = loadTestbed();
const base = tb.TESTBED_BASE_IMAGE;
let shim: ShimDir;

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: string | Buffer) {
  return spawnSync(cmd, args, { env, input, encoding: "buffer", timeout: 120_000 });
}

/** Starts cmd, waits until a container with `label` runs, sends SIGTERM to cmd, and reports how cmd ended. */
async function terminateWhileRunning(cmd: string, args: string[], env: NodeJS.ProcessEnv, label: string) {
  const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  for (let i = 0; i < 200; i++) {
    const ps = run(tb.TESTBED_DOCKER, ["ps", "-q", "--filter", `label=${label}`], { ...process.env, DOCKER_HOST: tb.DOCKER_HOST });
    if (ps.stdout.toString().trim()) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGTERM");
  const result = await ended;
  // The container must be gone (or going) once docker returned.
  let remaining = "";
  for (let i = 0; i < 100; i++) {
    remaining = run(tb.TESTBED_DOCKER, ["ps", "-q", "--filter", `label=${label}`], { ...process.env, DOCKER_HOST: tb.DOCKER_HOST }).stdout.toString().trim();
    if (!remaining) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { ...result, remaining };
}

beforeAll(() => {
  shim = makeShimDir({ docker: tb.TESTBED_DOCKER }, { DOCKER_HOST: tb.DOCKER_HOST });
});
afterAll(() => shim?.cleanup());

describe("passthrough parity", () => {
  it("returns the container's exit status", () => {
    const viaShim = run(join(shim.dir, "docker"), ["run", "--rm", base, "sh", "-c", "exit 3"], shim.env);
    expect(viaShim.status).toBe(3);
    const real = run(tb.TESTBED_DOCKER, ["run", "--rm", base, "sh", "-c", "exit 3"], shim.env);
    expect(real.status).toBe(viaShim.status);
  });

  it("prints the same output as docker for an ordinary command", () => {
    const viaShim = run(join(shim.dir, "docker"), ["version", "--format", "{{.Server.Version}}"], shim.env);
    const real = run(tb.TESTBED_DOCKER, ["version", "--format", "{{.Server.Version}}"], shim.env);
    expect(viaShim.status).toBe(0);
    expect(viaShim.stdout.toString()).toBe(real.stdout.toString());
    expect(viaShim.stderr.toString()).toBe(real.stderr.toString());
  });

  it("passes stdin through byte for byte", () => {
    const bytes = Buffer.alloc(256 * 1024);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + (i >> 8)) & 0xff;
    const viaShim = run(join(shim.dir, "docker"), ["run", "--rm", "-i", base, "sh", "-c", "cat | md5sum"], shim.env, bytes);
    const real = run(tb.TESTBED_DOCKER, ["run", "--rm", "-i", base, "sh", "-c", "cat | md5sum"], shim.env, bytes);
    expect(viaShim.status).toBe(0);
    expect(viaShim.stdout.toString()).toBe(real.stdout.toString());
  });

  it("ends like docker when SIGTERM arrives during `docker run … sleep 60`, and the container stops", async () => {
    const args = (label: string) => ["run", "--rm", "--init", "--label", label, base, "sleep", "60"];
    const real = await terminateWhileRunning(tb.TESTBED_DOCKER, args("shim-e2e=real-term"), shim.env, "shim-e2e=real-term");
    const viaShim = await terminateWhileRunning(join(shim.dir, "docker"), args("shim-e2e=shim-term"), shim.env, "shim-e2e=shim-term");
    expect(viaShim.remaining).toBe("");
    expect({ code: viaShim.code, signal: viaShim.signal }).toEqual({ code: real.code, signal: real.signal });
    expect(viaShim.signal === "SIGTERM" || viaShim.code === 143).toBe(true);
  }, 120_000);

  it("fails with one shim line and 125 when the real docker is missing", () => {
    const result = run(join(shim.dir, "docker"), ["ps"], { ...shim.env, SHIM_REAL_DOCKER: "/nonexistent/docker" });
    expect(result.status).toBe(125);
    expect(result.stderr.toString()).toMatch(/^shim: SHIM_REAL_DOCKER=\/nonexistent\/docker is not an executable file\n$/);
  });

  it("rejects a bad config file naming the file and the key", () => {
    const dir = mkdtempSync(join(tmpdir(), "shim-e2e-config-"));
    const config = join(dir, "config.yaml");
    writeFileSync(config, "path_map: 12\n");
    try {
      const result = run(join(shim.dir, "docker"), ["ps"], { ...shim.env, SHIM_CONFIG: config });
      expect(result.status).toBe(125);
      expect(result.stderr.toString()).toBe(`shim: config ${config}: key "path_map" must be a "/container/prefix=/daemon/prefix,…" string, a mapping of container prefix to daemon prefix, or "off"\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reports a malformed --mount without running docker", () => {
    const result = run(join(shim.dir, "docker"), ["run", "--rm", "--mount", 'type=bind,"src=/tmp', base, "true"], shim.env);
    expect(result.status).toBe(125);
    expect(result.stderr.toString().trim().split("\n")).toHaveLength(1);
    expect(result.stderr.toString()).toMatch(/^shim: invalid --mount value/);
  });
});

describe("dev-container scenario", () => {
  const image = "shim-e2e/devcontainer:latest";
  let host: string;

  beforeAll(() => {
    const built = spawnSync("bash", [join(repoRoot, "desktop", "build-image.sh"), image, tb.TESTBED_DEVCONTAINER_BASE, tb.TESTBED_DOCKER], {
      env: { ...process.env, DOCKER_HOST: tb.DOCKER_HOST },
      encoding: "utf8",
    });
    if (built.status !== 0) throw new Error(`building the dev-container image failed: ${built.stderr}`);
    host = mkdtempSync(join(tmpdir(), "shim-e2e-ws-"));
    mkdirSync(join(host, "data", "sub", "rel"), { recursive: true });
    writeFileSync(join(host, "data", "f"), "hello from the host\n");
    writeFileSync(join(host, "data", "sub", "rel", "g"), "relative works\n");
  }, 300_000);
  afterAll(() => host && rmSync(host, { recursive: true, force: true }));

  /** Runs a shell script inside the dev container, whose docker talks to the test bed's daemon. */
  function inDevContainer(script: string, env: string[] = []) {
    const socket = tb.DOCKER_HOST.replace(/^unix:\/\//, "");
    return run(
      tb.TESTBED_DOCKER,
      ["run", "--rm", "-v", `${socket}:/var/run/docker.sock`, "-v", `${host}:/home/retro/work`, ...env.flatMap((e) => ["-e", e]), image, "sh", "-c", script],
      { ...process.env, DOCKER_HOST: tb.DOCKER_HOST },
    );
  }

  const cases: [string, string[]][] = [
    ["auto-detected from the daemon", []],
    ["WORKSPACE_DIR", [`WORKSPACE_DIR=${"HOSTDIR"}`]],
    ["SHIM_PATH_MAP", [`SHIM_PATH_MAP=/home/retro/work=${"HOSTDIR"}`]],
  ];

  it.each(cases)("a bind mount shows the host file's content (%s)", (_name, env) => {
    const result = inDevContainer(`docker run --rm -v /home/retro/work/data:/data ${base} cat /data/f`, env.map((e) => e.replace("HOSTDIR", host)));
    expect(result.stderr.toString()).toBe("");
    expect(result.stdout.toString()).toBe("hello from the host\n");
  });

  it("translates ./rel from a subdirectory and a path through a symlink", () => {
    const result = inDevContainer(
      [
        "set -e",
        "cd /home/retro/work/data/sub",
        `docker run --rm -v ./rel:/r ${base} cat /r/g`,
        "ln -s /home/retro/work/data /tmp/shortcut",
        `docker run --rm -v /tmp/shortcut:/s ${base} cat /s/f`,
        `docker run --rm --mount type=bind,src=/tmp/shortcut,dst=/m ${base} cat /m/f`,
      ].join("\n"),
    );
    expect(result.stderr.toString()).toBe("");
    expect(result.stdout.toString()).toBe("relative works\nhello from the host\nhello from the host\n");
  });

  it("is installed in front of docker and leaves the workspace untouched", () => {
    const before = readdirSync(host).sort();
    const result = inDevContainer("readlink /usr/bin/docker; test -x /usr/bin/docker.real && echo real-kept; shim version");
    expect(result.stdout.toString()).toMatch(/^\/usr\/local\/bin\/shim\nreal-kept\nshim \d+\.\d+\.\d+\n$/);
    expect(readdirSync(host).sort()).toEqual(before);
    expect(readFileSync(join(host, "data", "f"), "utf8")).toBe("hello from the host\n");
  });
});

describe("shim install / uninstall / doctor", () => {
  it("installs idempotently in a prefix, runs docker through it, and uninstalls", () => {
    const prefix = mkdtempSync(join(tmpdir(), "shim-e2e-prefix-"));
    try {
      mkdirSync(join(prefix, "bin"));
      mkdirSync(join(prefix, "libexec", "docker", "cli-plugins"), { recursive: true });
      writeFileSync(join(prefix, "bin", "docker"), readFileSync(tb.TESTBED_DOCKER), { mode: 0o755 });
      writeFileSync(join(prefix, "libexec", "docker", "cli-plugins", "docker-compose"), readFileSync(tb.TESTBED_COMPOSE_V2 || tb.TESTBED_COMPOSE_V5), { mode: 0o755 });
      const shimCmd = join(shim.dir, "shim");
      const first = run(shimCmd, ["install", "--prefix", prefix], shim.env);
      expect(first.status).toBe(0);
      const second = run(shimCmd, ["install", "--prefix", prefix], shim.env);
      expect(second.status).toBe(0);
      expect(second.stdout.toString()).toMatch(/already installed/);
      const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: tb.DOCKER_HOST, PATH: `${join(prefix, "bin")}:${process.env.PATH}` };
      delete env.SHIM_REAL_DOCKER;
      const version = run(join(prefix, "bin", "docker"), ["version", "--format", "{{.Server.Version}}"], env);
      expect(version.status).toBe(0);
      expect(version.stdout.toString().trim()).toMatch(/^\d+\.\d+/);
      const plugin = run(join(prefix, "libexec", "docker", "cli-plugins", "docker-compose"), ["docker-cli-plugin-metadata"], env);
      expect(JSON.parse(plugin.stdout.toString())).toMatchObject({ SchemaVersion: "0.1.0" });
      expect(run(join(prefix, "bin", "shim"), ["uninstall", "--prefix", prefix], env).status).toBe(0);
      expect(readdirSync(join(prefix, "bin")).sort()).toEqual(["docker", "shim"]);
      expect(readFileSync(join(prefix, "bin", "docker")).equals(readFileSync(tb.TESTBED_DOCKER))).toBe(true);
    } finally {
      rmSync(prefix, { recursive: true, force: true });
    }
  });

  it("doctor reports the real docker and the daemon, and exits non-zero with one line per problem", () => {
    const ok = run(join(shim.dir, "shim"), ["doctor"], shim.env);
    expect(ok.stdout.toString()).toMatch(/real docker: .*docker/);
    expect(ok.stdout.toString()).toMatch(/daemon .*: Docker Engine 20\.10/);
    const bad = run(join(shim.dir, "shim"), ["doctor"], { ...shim.env, DOCKER_HOST: "unix:///nonexistent.sock", SHIM_PATH_MAP: "relative=/x" });
    expect(bad.status).not.toBe(0);
    const problems = bad.stdout.toString().split("\n").filter((l) => l.startsWith("problem: "));
    expect(problems.some((l) => /daemon unix:\/\/\/nonexistent\.sock is not reachable/.test(l))).toBe(true);
    expect(problems.some((l) => /SHIM_PATH_MAP/.test(l))).toBe(true);
  });
});
