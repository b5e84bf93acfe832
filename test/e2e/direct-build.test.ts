// `docker build` in a dev container WITHOUT the buildx plugin: the shim builds through its own BuildKit client
// (standalone buildkitd via BUILDKIT_HOST), loads the image into the daemon and saves the shared cache.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadTestbed, repoRoot } from "./testbed.ts";

const tb = loadTestbed();
const image = "shim-e2e/devcontainer-direct:latest";
const env = { ...process.env, DOCKER_HOST: tb.DOCKER_HOST };
let cacheRoot: string;

function inDevContainer(script: string) {
  const socket = tb.DOCKER_HOST.replace(/^unix:\/\//, "");
  const buildkitSocket = tb.BUILDKIT_HOST.replace(/^unix:\/\//, "");
  return spawnSync(
    tb.TESTBED_DOCKER,
    [
      "run", "--rm",
      "-v", `${socket}:/var/run/docker.sock`,
      "-v", `${buildkitSocket}:/run/buildkit/buildkitd.sock`,
      "-v", `${cacheRoot}:/buildkit-cache`,
      "-e", "BUILDKIT_HOST=unix:///run/buildkit/buildkitd.sock",
      image, "sh", "-c", `rm -f /usr/libexec/docker/cli-plugins/docker-buildx\n${script}`,
    ],
    { env, encoding: "utf8", timeout: 240_000 },
  );
}

beforeAll(() => {
  const built = spawnSync("bash", [join(repoRoot, "desktop", "build-image.sh"), image, tb.TESTBED_DEVCONTAINER_BASE, tb.TESTBED_DOCKER], { env, encoding: "utf8" });
  if (built.status !== 0) throw new Error(`building the dev-container image failed: ${built.stderr}`);
  cacheRoot = mkdtempSync(join(tmpdir(), "shim-e2e-direct-cache-"));
}, 300_000);

afterAll(() => {
  spawnSync(tb.TESTBED_DOCKER, ["rmi", "-f", "shim-e2e/direct:1"], { env });
  // The container wrote the cache as root; removing it from here is fine (the tests run as root).
  if (cacheRoot) rmSync(cacheRoot, { recursive: true, force: true });
});

describe("docker build without buildx", () => {
  it("builds with the shim's BuildKit client, loads the image and saves the shared cache", () => {
    const result = inDevContainer(
      [
        "set -e",
        "mkdir -p /tmp/app && cd /tmp/app",
        `printf 'FROM ${tb.TESTBED_BASE_IMAGE}\\nRUN echo built-directly > /made\\n' > Dockerfile`,
        "docker build --progress=plain -t shim-e2e/direct:1 .",
        "docker run --rm shim-e2e/direct:1 cat /made",
      ].join("\n"),
    );
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout.trim().split("\n").pop()).toBe("built-directly");
    const keyDir = join(cacheRoot, "shim-e2e_direct");
    expect(existsSync(join(keyDir, "index.json"))).toBe(true);
    const index = JSON.parse(readFileSync(join(keyDir, "index.json"), "utf8")) as { manifests: { digest: string }[] };
    expect(index.manifests.length).toBeGreaterThan(0);
    for (const { digest } of index.manifests) expect(existsSync(join(keyDir, "blobs", ...digest.split(":")))).toBe(true);
  });

  it("an option the client cannot honour is one clear line suggesting buildx, never silently dropped", () => {
    const result = inDevContainer("mkdir -p /tmp/app && cd /tmp/app && echo 'FROM scratch' > Dockerfile && docker build --squash -t x .");
    expect(result.status).not.toBe(0);
    const lines = result.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^shim: .*--squash.*buildx/);
  });
});
