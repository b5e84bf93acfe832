// The shim's own `remote` builder for $BUILDKIT_HOST, created once and safely under concurrency: eight first
// builds starting together must not fail because they all raced to `buildx create`. They serialise on a lock
// next to buildx's state, re-check under it, and count buildx's "existing instance" answer as success.
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { buildxStateDir, inspectBuilder, lastLine, runCommand, type CliAccess, type FactsCache } from "./facts.ts";
import { withDirLock } from "./shared-fs.ts";

// `buildx create --driver remote` only writes buildx's state (no bootstrap), so a minute-old lock is a dead one.
const LOCK_OPTIONS = { timeoutMs: 90_000, staleMs: 60_000 };

export interface EnsureOutcome {
  /** What happened, for SHIM_DEBUG. */
  readonly action: "existed" | "created" | "recreated";
}

/** Makes sure builder `name` exists with driver `remote` and endpoint `endpoint`; throws with a one-line reason. */
export async function ensureRemoteBuilder(cli: CliAccess, name: string, endpoint: string, cache: FactsCache): Promise<EnsureOutcome> {
  const matches = (info: { driver: string; endpoint?: string } | undefined) => info?.driver === "remote" && info.endpoint === endpoint;
  if (matches((await inspectBuilder(cli, name, cache)).info)) return { action: "existed" };

  const buildxDir = buildxStateDir(cli.dockerConfig, cli.env);
  await mkdir(buildxDir, { recursive: true, mode: 0o700 }); // as buildx creates it
  return withDirLock(join(buildxDir, `.shim-create-${name}.lock`), LOCK_OPTIONS, async () => {
    const current = await inspectBuilder(cli, name, cache, true);
    if (matches(current.info)) return { action: "existed" };
    let action: EnsureOutcome["action"] = "created";
    if (current.info) {
      // Same name, other endpoint or driver (BUILDKIT_HOST changed): replace it.
      const removed = await runCommand(cli.docker, [...cli.globals, "buildx", "rm", name], cli.env);
      if (removed.code !== 0) throw new Error(`cannot replace builder "${name}": ${lastLine(removed.stderr)}`);
      action = "recreated";
    }
    const created = await runCommand(cli.docker, [...cli.globals, "buildx", "create", "--name", name, "--driver", "remote", endpoint], cli.env);
    if (created.code !== 0 && !/existing instance/i.test(created.stderr)) {
      throw new Error(`docker buildx create --name ${name} --driver remote ${endpoint}: ${lastLine(created.stderr)}`);
    }
    const after = await inspectBuilder(cli, name, cache, true);
    if (!matches(after.info)) {
      throw new Error(`builder "${name}" does not point at ${endpoint} after creating it${after.error ? `: ${after.error}` : ""}`);
    }
    return { action };
  });
}
