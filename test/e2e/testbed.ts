// Loads testbed.env (written by `make testbed`) so end-to-end tests talk to the real components.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const shimBinary = join(repoRoot, "dist", "shim");

export interface Testbed {
  DOCKER_HOST: string;
  BUILDKIT_HOST: string;
  TESTBED_REGISTRY: string;
  TESTBED_BASE_IMAGE: string;
  TESTBED_DEVCONTAINER_BASE: string;
  TESTBED_DOCKER: string;
  TESTBED_DOCKERD: string;
  TESTBED_BUILDCTL: string;
  TESTBED_BUILDKITD: string;
  TESTBED_BUILDX: string;
  TESTBED_COMPOSE_V1: string;
  TESTBED_COMPOSE_V2: string;
  TESTBED_COMPOSE_V5: string;
  TESTBED_STATE: string;
  TESTBED_RUN: string;
  [key: string]: string;
}

export function loadTestbed(): Testbed {
  const file = join(repoRoot, "testbed.env");
  if (!existsSync(file)) throw new Error(`testbed.env missing: run \`make testbed\` first (${file})`);
  const env: Record<string, string> = {};
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const m = /^\s*export\s+([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2]!.trim();
    if ((value.startsWith("'") && value.endsWith("'")) || (value.startsWith('"') && value.endsWith('"'))) {
      value = value.slice(1, -1);
    }
    env[m[1]!] = value;
  }
  return env as Testbed;
}


export interface ShimDir {
  /** A directory holding `docker` (and `docker-compose`) symlinks to dist/shim; put it first on PATH. */
  readonly dir: string;
  /** Environment for running through the shim: PATH with dir first, SHIM_REAL_* pointing at the real binaries. */
  readonly env: NodeJS.ProcessEnv;
  cleanup(): void;
}

/** Puts the compiled shim in front of the real binaries, the way `shim install` does, in a scratch dir. */
export function makeShimDir(real: { docker: string; compose?: string }, extraEnv: NodeJS.ProcessEnv = {}): ShimDir {
  const dir = mkdtempSync(join(tmpdir(), "shim-e2e-bin-"));
  symlinkSync(shimBinary, join(dir, "docker"));
  symlinkSync(shimBinary, join(dir, "docker-compose"));
  symlinkSync(shimBinary, join(dir, "shim"));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${dir}:${process.env.PATH ?? "/usr/bin:/bin"}`,
    SHIM_REAL_DOCKER: real.docker,
    ...(real.compose ? { SHIM_REAL_COMPOSE: real.compose } : {}),
    ...extraEnv,
  };
  return { dir, env, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A private DOCKER_CONFIG dir (so buildx state and plugins of one test do not leak into another). */
export function makeDockerConfig(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), "shim-e2e-config-"));
  mkdirSync(join(dir, "cli-plugins"));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A second buildkitd with an empty --root and its own socket ("a session with fresh BuildKit state"), configured
 * like the test bed's. `stop()` ends it, detaches whatever it left mounted and removes its directory.
 */
export function startFreshBuildkitd(): { host: string; stop(): void } {
  const tb = loadTestbed();
  const dir = mkdtempSync(join(tmpdir(), "shim-e2e-bk-"));
  const sock = join(dir, "bk.sock");
  writeFileSync(
    join(dir, "buildkitd.toml"),
    `root = "${dir}/root"\n[grpc]\n  address = ["unix://${sock}"]\n[worker.oci]\n  enabled = true\n  gc = true\n` +
      `[worker.containerd]\n  enabled = false\n[registry."${tb.TESTBED_REGISTRY}"]\n  http = true\n  insecure = true\n`,
  );
  const daemon = spawn(tb.TESTBED_BUILDKITD, ["--config", join(dir, "buildkitd.toml")], { stdio: ["ignore", "ignore", "pipe"], detached: true });
  let log = "";
  daemon.on("error", (err) => (log += `${err.message}\n`));
  daemon.stderr!.on("data", (d: Buffer) => (log += d.toString()));
  const stop = () => {
    if (daemon.exitCode === null) {
      daemon.kill("SIGTERM");
      spawnSync("sh", ["-c", `for i in $(seq 50); do kill -0 ${daemon.pid} 2>/dev/null || exit 0; sleep 0.1; done; kill -9 ${daemon.pid}`]);
    }
    // Mounts a killed daemon may leave under its root must go before the directory can.
    const mounts = readFileSync("/proc/self/mounts", "utf8").split("\n").map((l) => l.split(" ")[1] ?? "").filter((m) => m.startsWith(dir));
    for (const m of mounts.reverse()) spawnSync("umount", ["-l", m]);
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 150; i++) {
    if (spawnSync(tb.TESTBED_BUILDCTL, ["--addr", `unix://${sock}`, "debug", "workers"]).status === 0) return { host: `unix://${sock}`, stop };
    if (daemon.exitCode !== null) break;
    spawnSync("sleep", ["0.2"]);
  }
  stop();
  throw new Error(`buildkitd did not start: ${log}`);
}

/** Names of the build steps plain progress reports as CACHED (e.g. `[2/3] RUN echo …`, `[app 2/3] …`). */
export function cachedSteps(progress: string): string[] {
  const names = new Map<string, string>();
  const cached: string[] = [];
  for (const line of progress.split("\n")) {
    const step = /^#(\d+) (\[.*)$/.exec(line);
    if (step && !names.has(step[1]!)) names.set(step[1]!, step[2]!);
    const hit = /^#(\d+) CACHED$/.exec(line);
    if (hit && names.has(hit[1]!)) cached.push(names.get(hit[1]!)!);
  }
  return cached;
}
