// Issue #4 end to end with real Compose v2.40.3 and v5.5.0 (standalone, as the Docker CLI plugin, and through
// `docker compose` in docker mode), the test bed's dockerd 20.10 and buildkitd. After every command: the user's
// files are byte-identical and no override dir is left in the session's TMPDIR.
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  cleanupAll,
  childrenOf,
  compose,
  composeAsync,
  composeBed,
  docker,
  fingerprint,
  leftovers,
  removeProject,
  runId,
  startBuildkitd,
  tb,
  tempDir,
  type ComposeBed,
  type Entry,
  type Result,
} from "./compose-helpers.ts";
import { cachedSteps } from "./testbed.ts";

const projects = new Set<string>();
afterAll(() => {
  for (const p of projects) removeProject(p);
  cleanupAll();
});

const versions = [
  ["v2", tb.TESTBED_COMPOSE_V2],
  ["v5", tb.TESTBED_COMPOSE_V5],
].filter(([, path]) => path) as [string, string][];

/** A project dir named uniquely for this run; returns the dir and the name compose gives it. */
function project(files: Record<string, string>): { dir: string; name: string } {
  const parent = tempDir("shim-e2e-compose-");
  const name = `cproj${runId}${Math.random().toString(36).slice(2, 6)}`;
  const dir = join(parent, name);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, ".."), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return { dir, name };
}

/** Runs a command and checks the invariants that hold after every command. */
function checked(bed: ComposeBed, entry: Entry, args: string[], dir: string, env: NodeJS.ProcessEnv = {}): Result {
  const before = fingerprint(dir);
  const result = compose(bed, entry, args, dir, env);
  expect(fingerprint(dir), `user files after ${args.join(" ")}`).toEqual(before);
  expect(leftovers(bed), `override dirs after ${args.join(" ")}`).toEqual([]);
  return result;
}

function sleeper(extra = ""): string {
  return `services:\n  app:\n    image: ${tb.TESTBED_BASE_IMAGE}\n    command: sleep 600\n${extra}`;
}

describe.each(versions)("compose %s", (label, composePath) => {
  it("two sessions bring up the same project directory at once and get two separate stacks", async () => {
    const { dir, name } = project({ "compose.yaml": sleeper() });
    const a = composeBed(composePath, `a${label}`);
    const b = composeBed(composePath, `b${label}`);
    const [pa, pb] = [`${name}-a${label}`, `${name}-b${label}`];
    projects.add(pa).add(pb);
    const before = fingerprint(dir);
    const [ra, rb] = await Promise.all([composeAsync(a, "standalone", ["up", "-d"], dir).done, composeAsync(b, "docker", ["up", "-d"], dir).done]);
    expect(ra.code, ra.stderr).toBe(0);
    expect(rb.code, rb.stderr).toBe(0);
    expect(fingerprint(dir)).toEqual(before);
    // Every entry point of a session agrees on the project.
    const psA = checked(a, "plugin", ["ps", "-q"], dir).stdout.trim().split("\n");
    const psB = checked(b, "standalone", ["ps", "-q"], dir).stdout.trim().split("\n");
    expect(psA).toHaveLength(1);
    expect(psB).toHaveLength(1);
    expect(psA[0]).not.toBe(psB[0]);
    expect(docker(["ps", "-q", "--filter", `label=com.docker.compose.project=${pa}`]).stdout.trim()).not.toBe("");
    expect(docker(["ps", "-q", "--filter", `label=com.docker.compose.project=${pb}`]).stdout.trim()).not.toBe("");
    expect(checked(a, "docker", ["down", "-t", "0"], dir).code).toBe(0);
    expect(docker(["ps", "-aq", "--filter", `label=com.docker.compose.project=${pa}`]).stdout.trim()).toBe("");
    expect(docker(["ps", "-q", "--filter", `label=com.docker.compose.project=${pb}`]).stdout.trim()).not.toBe("");
    expect(checked(b, "standalone", ["down", "-t", "0"], dir).code).toBe(0);
  });

  it.each<Entry>(["standalone", "plugin", "docker"])("translates bind sources, secrets and `run -v` through the override (%s)", (entry) => {
    // The shim's view of the workspace (`view`) differs from the daemon's (`real`), as in a dev container.
    const view = tempDir("shim-e2e-compose-view-");
    const real = tempDir("shim-e2e-compose-real-");
    const name = `cproj${runId}${entry}`;
    const composeFile = sleeper(
      "    volumes:\n      - ./data:/data:ro\n      - type: bind\n        source: ~/cfg\n        target: /cfg\n    secrets: [token]\n" +
        "secrets:\n  token:\n    file: ./token.txt\n",
    );
    for (const [root, says] of [[join(view, name), "container view"], [join(real, name), "host file"]] as const) {
      mkdirSync(join(root, "data"), { recursive: true });
      mkdirSync(join(root, "home", "cfg"), { recursive: true });
      writeFileSync(join(root, "compose.yaml"), composeFile);
      writeFileSync(join(root, "data", "f"), `${says}\n`);
      writeFileSync(join(root, "token.txt"), `${says} token\n`);
      writeFileSync(join(root, "home", "cfg", "c"), `${says} cfg\n`);
      writeFileSync(join(root, "other"), `${says} other\n`);
    }
    const dir = join(view, name);
    const bed = composeBed(composePath, `t${label}`, { SHIM_PATH_MAP: `${view}=${real}`, HOME: join(dir, "home") });
    projects.add(`${name}-t${label}`.toLowerCase());
    const result = checked(bed, entry, ["run", "--rm", "-v", `${join(dir, "other")}:/other`, "app", "cat", "/data/f", "/cfg/c", "/run/secrets/token", "/other"], dir);
    expect(result.stderr).not.toMatch(/^shim:/m);
    expect(result.stdout).toBe("host file\nhost file cfg\nhost file token\nhost file other\n");
    checked(bed, entry, ["down"], dir);
  });

  it("without a session id and mapping, compose runs exactly as without the shim", () => {
    const { dir, name } = project({ "compose.yaml": sleeper() });
    const bed = composeBed(composePath, "none", { SHIM_SESSION_ID: "" });
    const viaShim = checked(bed, "standalone", ["config"], dir);
    const real = compose(bed, "standalone", ["config"], dir, { SHIM_DISABLE: "1" });
    expect(viaShim).toEqual(real);
    expect(viaShim.stdout).toContain(`name: ${name}`);
  });

  it("reports compose's own error for malformed YAML, a missing file and an unknown service, files untouched", () => {
    const bed = composeBed(composePath, `e${label}`, { SHIM_PATH_MAP: "/nowhere=/elsewhere" });
    const bad = project({ "compose.yaml": "services:\n  app:\n    image: [unclosed\n" });
    // (`ps`, `logs`, `down` with a project name tolerate a broken file in compose itself, -p or COMPOSE_PROJECT_NAME alike.)
    for (const args of [["up", "-d"], ["build"], ["run", "--rm", "app"], ["config"]]) {
      const viaShim = checked(bed, "standalone", args, bad.dir);
      const real = compose(bed, "standalone", args, bad.dir, { SHIM_DISABLE: "1" });
      expect(viaShim.code).not.toBe(0);
      expect(viaShim.code).toBe(real.code);
      expect(viaShim.stderr).not.toMatch(/^shim:/m);
      // The same message from compose (with the shim's -p compose may prefix it with the file it failed to parse).
      expect(viaShim.stderr).toContain(real.stderr.trim().split("\n").at(-1));
    }
    const ok = project({ "compose.yaml": sleeper() });
    const missing = checked(bed, "docker", ["-f", "nope.yaml", "up", "-d"], ok.dir);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/nope\.yaml/);
    expect(missing.stderr).not.toMatch(/^shim:/m);
    const unknown = checked(bed, "standalone", ["up", "--build", "-d", "nosuchservice"], ok.dir);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/no such service: nosuchservice/);
  });

  /** Waits until the project's container runs; the override must exist meanwhile. */
  async function waitRunning(bed: ComposeBed, project: string, running: { child: { exitCode: number | null } }) {
    for (let i = 0; i < 600 && running.child.exitCode === null && docker(["ps", "-q", "--filter", `label=com.docker.compose.project=${project}`]).stdout.trim() === ""; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(leftovers(bed)).toHaveLength(1);
  }

  it("removes the override when `up` in the foreground is stopped: SIGTERM, Ctrl-C, or compose killed outright", async () => {
    const { dir, name } = project({ "compose.yaml": sleeper("    stop_grace_period: 1s\n    volumes: [./data:/data]\n"), "data/f": "x\n" });
    const bed = composeBed(composePath, `s${label}`, { SHIM_PATH_MAP: `${join(dir, "data")}=${tempDir("shim-e2e-compose-daemon-")}` });
    const stack = `${name}-s${label}`;
    projects.add(stack);
    const before = fingerprint(dir);

    // SIGTERM to the shim: forwarded to compose, which stops the stack and exits; then the shim cleans up.
    let running = composeAsync(bed, "standalone", ["up"], dir);
    await waitRunning(bed, stack, running);
    running.child.kill("SIGTERM");
    let result = await running.done;
    expect(leftovers(bed), "after SIGTERM").toEqual([]);

    // Ctrl-C in a terminal: SIGINT to the whole process group (docker mode: shim → docker CLI → plugin → compose).
    running = composeAsync(bed, "docker", ["up"], dir, {}, true);
    await waitRunning(bed, stack, running);
    process.kill(-running.child.pid!, "SIGINT");
    result = await running.done;
    expect(leftovers(bed), "after Ctrl-C").toEqual([]);

    // The real compose killed outright: the shim still removes the override, then dies the same way.
    running = composeAsync(bed, "standalone", ["up"], dir);
    await waitRunning(bed, stack, running);
    const [composePid] = childrenOf(running.child.pid!);
    expect(composePid).toBeDefined();
    process.kill(composePid!, "SIGKILL");
    result = await running.done;
    expect(result.signal).toBe("SIGKILL");
    expect(leftovers(bed), "after compose was killed").toEqual([]);

    expect(fingerprint(dir)).toEqual(before);
    checked(bed, "standalone", ["down", "-t", "0"], dir);
  });

  it("processes `docker compose` once when the plugin is the shim too", () => {
    const { dir, name } = project({ "compose.yaml": sleeper("    volumes: [./x:/x]\n") });
    const bed = composeBed(composePath, `o${label}`, { SHIM_PATH_MAP: `${dir}=${dir}/mapped`, SHIM_DEBUG: "1" });
    projects.add(`${name}-o${label}`);
    const result = checked(bed, "docker", ["config"], dir);
    expect(result.code, result.stderr).toBe(0);
    const execs = result.stderr.split("\n").filter((l) => l.startsWith("shim: debug: exec "));
    expect(execs).toHaveLength(2);
    expect(execs[0]).toContain(`"-p" "${name}-o${label}"`);
    expect(execs[1]).not.toContain(`"-p" "${name}-o${label}" "-p"`);
    expect(result.stderr).toContain("processed by docker mode already; passed through");
    expect(result.stdout).toContain(`name: ${name}-o${label}`);
  });
});

describe.each(versions)("shared build cache with compose %s", (label, composePath) => {
  function buildProject() {
    const nonce = `${runId}-${Math.random().toString(36).slice(2)}`;
    return project({
      "compose.yaml": "services:\n  app:\n    build: ./app\n    command: sleep 600\n  tool:\n    build:\n      context: ./tool\n    profiles: [tools]\n",
      "app/Dockerfile": `FROM ${tb.TESTBED_BASE_IMAGE}\nRUN echo "app ${nonce}" > /a && sleep 1\nRUN echo second > /b\n`,
      "tool/Dockerfile": `FROM ${tb.TESTBED_BASE_IMAGE}\nRUN echo "tool ${nonce}" > /t\n`,
    });
  }

  it.each<[string, string[]]>([
    ["compose build", ["--progress", "plain", "build"]],
    ["compose up --build", ["--progress", "plain", "up", "--build", "-d"]],
  ])("%s in session A, then in session B with fresh BuildKit state, reports the RUN steps CACHED", (_name, args) => {
    const cacheRoot = tempDir("shim-e2e-compose-cache-", 0o777);
    const { dir, name } = buildProject();
    const a = composeBed(composePath, `ca${label}`, { BUILDKIT_HOST: tb.BUILDKIT_HOST, SHIM_CACHE_DIR: cacheRoot, SHIM_BUILDER: `shim-e2e-ca${label}` });
    projects.add(`${name}-ca${label}`).add(`${name}-cb${label}`);
    const first = checked(a, "standalone", args, dir);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout + first.stderr).toContain("exporting cache to client directory");
    expect(cachedSteps(first.stdout + first.stderr).filter((s) => s.includes("RUN"))).toEqual([]);
    expect(readdirSync(cacheRoot)).toEqual([`${name}_app`]);
    expect(existsSync(join(cacheRoot, `${name}_app`, "index.json"))).toBe(true);
    expect(readdirSync(join(cacheRoot, `${name}_app`, ".staging"))).toEqual([]);

    const fresh = startBuildkitd();
    try {
      const b = composeBed(composePath, `cb${label}`, { BUILDKIT_HOST: fresh.host, SHIM_CACHE_DIR: cacheRoot, SHIM_BUILDER: `shim-e2e-cb${label}` });
      const second = checked(b, "docker", args, dir);
      expect(second.code, second.stderr).toBe(0);
      const cached = cachedSteps(second.stdout + second.stderr).filter((s) => s.includes("RUN"));
      expect(cached.some((s) => s.includes("RUN echo \"app"))).toBe(true);
      expect(cached.some((s) => s.includes("RUN echo second"))).toBe(true);
      if (args.includes("up")) checked(b, "standalone", ["down", "-t", "0"], dir);
    } finally {
      fresh.stop();
    }
    if (args.includes("up")) checked(a, "standalone", ["down", "-t", "0"], dir);
  });

  it("merges a service's export while `up --build` keeps running in the foreground", async () => {
    const cacheRoot = tempDir("shim-e2e-compose-cache-", 0o777);
    const { dir, name } = buildProject();
    const bed = composeBed(composePath, `cf${label}`, { BUILDKIT_HOST: tb.BUILDKIT_HOST, SHIM_CACHE_DIR: cacheRoot, SHIM_BUILDER: `shim-e2e-cf${label}` });
    projects.add(`${name}-cf${label}`);
    const running = composeAsync(bed, "standalone", ["up", "--build"], dir);
    const index = join(cacheRoot, `${name}_app`, "index.json");
    for (let i = 0; i < 1200 && !existsSync(index) && running.child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(index)).toBe(true);
    expect(running.child.exitCode).toBeNull();
    running.child.kill("SIGINT");
    await running.done;
    expect(leftovers(bed)).toEqual([]);
    checked(bed, "standalone", ["down", "-t", "0"], dir);
  });

  it("without BUILDKIT_HOST the docker driver cannot export: imports only, and says why", () => {
    const cacheRoot = tempDir("shim-e2e-compose-cache-", 0o777);
    const { dir, name } = buildProject();
    const bed = composeBed(composePath, `cd${label}`, { SHIM_CACHE_DIR: cacheRoot });
    projects.add(`${name}-cd${label}`);
    const result = checked(bed, "standalone", ["build"], dir);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('shim: build cache is read-only here (builder "default" (docker driver) cannot export cache); set BUILDKIT_HOST or use a docker-container builder to save it');
    // Imported from (nothing there yet): the key dir is prepared shared, and nothing was exported into it.
    expect(readdirSync(cacheRoot)).toEqual([`${name}_app`]);
    expect(statSync(join(cacheRoot, `${name}_app`)).mode & 0o777).toBe(0o777);
    expect(existsSync(join(cacheRoot, `${name}_app`, "index.json"))).toBe(false);
  });
});
