// Issue #4 with Compose v1 (Debian's docker-compose 1.29.2): session project names, translated binds through the
// override (v1's own `config` output, short syntax, file version), and the shared cache for its builds, which go
// through `docker build` on PATH — the shim in docker mode — with the session-independent key compose mode names.
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  cleanupAll,
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
  type Result,
} from "./compose-helpers.ts";
import { cachedSteps } from "./testbed.ts";

const projects = new Set<string>();
afterAll(() => {
  for (const p of projects) removeProject(p);
  cleanupAll();
});

const v1 = tb.TESTBED_COMPOSE_V1;

function project(files: Record<string, string>, parent = tempDir("shim-e2e-compose1-")): { dir: string; name: string } {
  const name = `cvone${runId}${Math.random().toString(36).slice(2, 6)}`;
  const dir = join(parent, name);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, ".."), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return { dir, name };
}

function checked(bed: ComposeBed, args: string[], dir: string): Result {
  const before = fingerprint(dir);
  const result = compose(bed, "standalone", args, dir);
  expect(fingerprint(dir), `user files after ${args.join(" ")}`).toEqual(before);
  expect(leftovers(bed), `override dirs after ${args.join(" ")}`).toEqual([]);
  return result;
}

describe.skipIf(!v1)("compose v1", () => {
  it("two sessions bring up the same project directory at once and get two separate stacks", async () => {
    const { dir, name } = project({ "docker-compose.yml": `version: "3.8"\nservices:\n  app:\n    image: ${tb.TESTBED_BASE_IMAGE}\n    command: sleep 600\n` });
    const a = composeBed(v1, "a1");
    const b = composeBed(v1, "b1");
    projects.add(`${name}-a1`).add(`${name}-b1`);
    const [ra, rb] = await Promise.all([composeAsync(a, "standalone", ["up", "-d"], dir).done, composeAsync(b, "standalone", ["up", "-d"], dir).done]);
    expect(ra.code, ra.stderr).toBe(0);
    expect(rb.code, rb.stderr).toBe(0);
    const psA = checked(a, ["ps", "-q"], dir).stdout.trim().split("\n");
    const psB = checked(b, ["ps", "-q"], dir).stdout.trim().split("\n");
    expect(psA).toHaveLength(1);
    expect(psB).toHaveLength(1);
    expect(psA[0]).not.toBe(psB[0]);
    expect(docker(["ps", "-q", "--filter", `label=com.docker.compose.project=${name}-a1`]).stdout.trim()).not.toBe("");
    expect(checked(a, ["down", "-t", "0"], dir).code).toBe(0);
    expect(docker(["ps", "-q", "--filter", `label=com.docker.compose.project=${name}-b1`]).stdout.trim()).not.toBe("");
    expect(checked(b, ["down", "-t", "0"], dir).code).toBe(0);
  });

  it("translates bind sources and file secrets through the override", () => {
    const view = tempDir("shim-e2e-compose1-view-");
    const real = tempDir("shim-e2e-compose1-real-");
    const name = `cvone${runId}t`;
    const file =
      `version: "3.8"\nservices:\n  app:\n    image: ${tb.TESTBED_BASE_IMAGE}\n    volumes:\n      - ./data:/data:ro\n` +
      "      - type: bind\n        source: ./conf\n        target: /conf\n    secrets: [token]\nsecrets:\n  token:\n    file: ./token.txt\n";
    for (const [root, says] of [[join(view, name), "container view"], [join(real, name), "host file"]] as const) {
      mkdirSync(join(root, "data"), { recursive: true });
      mkdirSync(join(root, "conf"), { recursive: true });
      writeFileSync(join(root, "docker-compose.yml"), file);
      writeFileSync(join(root, "data", "f"), `${says}\n`);
      writeFileSync(join(root, "conf", "c"), `${says} conf\n`);
      writeFileSync(join(root, "token.txt"), `${says} token\n`);
    }
    const dir = join(view, name);
    const bed = composeBed(v1, "t1", { SHIM_PATH_MAP: `${view}=${real}` });
    projects.add(`${name}-t1`);
    const result = checked(bed, ["run", "--rm", "app", "cat", "/data/f", "/conf/c", "/run/secrets/token"], dir);
    expect(result.stdout).toBe("host file\nhost file conf\nhost file token\n");
    checked(bed, ["down"], dir);
  });

  it("reports compose's own error for malformed YAML and a missing file", () => {
    const bed = composeBed(v1, "e1", { SHIM_PATH_MAP: "/nowhere=/elsewhere" });
    const bad = project({ "docker-compose.yml": "services:\n  app:\n    image: [unclosed\n" });
    const viaShim = checked(bed, ["up", "-d"], bad.dir);
    const real = compose(bed, "standalone", ["up", "-d"], bad.dir, { SHIM_DISABLE: "1" });
    expect(viaShim.code).not.toBe(0);
    expect(viaShim.code).toBe(real.code);
    expect(viaShim.stderr).not.toMatch(/^shim:/m);
    expect(viaShim.stderr).toBe(real.stderr);
    const missing = checked(bed, ["-f", "nope.yml", "up", "-d"], bad.dir);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/nope\.yml/);
  });

  it.each<[string, string[]]>([
    ["build", ["build"]],
    ["up --build", ["up", "--build", "-d"]],
  ])("`%s` in session A, then in session B with fresh BuildKit state, reports the RUN steps CACHED", (_name, args) => {
    const cacheRoot = tempDir("shim-e2e-compose1-cache-", 0o777);
    const nonce = `${runId}-${Math.random().toString(36).slice(2)}`;
    const { dir, name } = project({
      "docker-compose.yml": 'version: "3.8"\nservices:\n  app:\n    build: .\n    command: sleep 600\n',
      Dockerfile: `FROM ${tb.TESTBED_BASE_IMAGE}\nRUN echo "v1 ${nonce}" > /a && sleep 1\n`,
    });
    projects.add(`${name}-ca1`).add(`${name}-cb1`);
    const a = composeBed(v1, "ca1", { BUILDKIT_HOST: tb.BUILDKIT_HOST, SHIM_CACHE_DIR: cacheRoot, SHIM_BUILDER: "shim-e2e-ca1" });
    const first = checked(a, args, dir);
    expect(first.code, first.stderr).toBe(0);
    expect(readdirSync(cacheRoot)).toEqual([`${name}_app`]);
    expect(existsSync(join(cacheRoot, `${name}_app`, "index.json"))).toBe(true);

    const fresh = startBuildkitd();
    try {
      const b = composeBed(v1, "cb1", { BUILDKIT_HOST: fresh.host, SHIM_CACHE_DIR: cacheRoot, SHIM_BUILDER: "shim-e2e-cb1" });
      const second = checked(b, args, dir);
      expect(second.code, second.stderr).toBe(0);
      expect(cachedSteps(second.stdout + second.stderr).some((s) => s.includes(`RUN echo "v1 ${nonce}"`))).toBe(true);
      if (args.includes("up")) checked(b, ["down", "-t", "0"], dir);
    } finally {
      fresh.stop();
    }
    if (args.includes("up")) checked(a, ["down", "-t", "0"], dir);
  });
});
