// Loads testbed.env (written by `make testbed`) so end-to-end tests talk to the real components.
import { readFileSync, existsSync } from "node:fs";
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

import { mkdtempSync, mkdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";

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
