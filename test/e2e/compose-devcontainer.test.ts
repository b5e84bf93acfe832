// Issue #4 inside the dev-container scenario: the shim installed in front of docker and the compose plugin in a
// container whose workspace is a bind mount; the daemon outside sees other paths. `docker compose` there must mount
// the host's files, with no configuration (the mapping is auto-detected from the daemon).
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanupAll, fingerprint, removeProject, runId, tb, tempDir } from "./compose-helpers.ts";
import { repoRoot } from "./testbed.ts";

const image = "shim-e2e/devcontainer-compose:latest";
let host: string;
const name = `cdev${runId}`;

beforeAll(() => {
  const built = spawnSync("bash", [join(repoRoot, "desktop", "build-image.sh"), image, tb.TESTBED_DEVCONTAINER_BASE, tb.TESTBED_DOCKER], {
    env: { ...process.env, DOCKER_HOST: tb.DOCKER_HOST },
    encoding: "utf8",
  });
  if (built.status !== 0) throw new Error(`building the dev-container image failed: ${built.stderr}`);
  host = tempDir("shim-e2e-compose-ws-");
  const proj = join(host, name);
  mkdirSync(join(proj, "data"), { recursive: true });
  writeFileSync(join(proj, "data", "f"), "hello from the host\n");
  writeFileSync(join(proj, "token.txt"), "host token\n");
  writeFileSync(
    join(proj, "compose.yaml"),
    `services:\n  app:\n    image: ${tb.TESTBED_BASE_IMAGE}\n    command: sleep 600\n    volumes:\n      - ./data:/data:ro\n    secrets: [token]\n` +
      "secrets:\n  token:\n    file: ./token.txt\n",
  );
}, 300_000);
afterAll(() => {
  for (const session of ["dc1", "dc2"]) removeProject(`${name}-${session}`);
  cleanupAll();
});

/** Runs a shell script in a dev container (the workspace bind-mounted at /home/retro/work, the daemon's socket). */
function inDevContainer(script: string, env: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const socket = tb.DOCKER_HOST.replace(/^unix:\/\//, "");
  const child = spawn(
    tb.TESTBED_DOCKER,
    ["run", "--rm", "-v", `${socket}:/var/run/docker.sock`, "-v", `${host}:/home/retro/work`, ...env.flatMap((e) => ["-e", e]), image, "sh", "-c", script],
    { env: { ...process.env, DOCKER_HOST: tb.DOCKER_HOST }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

describe("compose in the dev-container scenario", () => {
  it("a compose bind mount and a file secret show the host's content; two sessions at once get their own stacks; nothing is left behind", async () => {
    const before = fingerprint(host);
    const script = [
      "set -e",
      `cd /home/retro/work/${name}`,
      "docker compose run --rm app cat /data/f /run/secrets/token",
      "docker compose up -d",
      "docker compose exec -T app cat /data/f",
      "docker compose ps --format '{{.Name}}'",
      "docker compose down -t 0",
      'ls -A /tmp/shim-$(id -u) 2>/dev/null | grep "^compose-" || echo "no override left"',
    ].join("\n");
    const results = await Promise.all(["dc1", "dc2"].map((session) => inDevContainer(script, [`SHIM_SESSION_ID=${session}`])));
    results.forEach((result, i) => {
      expect(result.stderr).not.toMatch(/^shim:/m);
      expect(result.code, result.stderr).toBe(0);
      const lines = result.stdout.trim().split("\n");
      expect(lines.slice(0, 3)).toEqual(["hello from the host", "host token", "hello from the host"]);
      expect(lines[3]).toMatch(new RegExp(`^${name}-dc${i + 1}[-_]app[-_]1$`));
      expect(lines.at(-1)).toBe("no override left");
    });
    expect(fingerprint(host)).toEqual(before);
  });
});
