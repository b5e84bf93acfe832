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
