// Dispatch by the name the shim was invoked as: `docker` → docker mode, `docker-compose` → compose mode,
// anything else (`shim`) → the shim's own commands.
import { realpathSync, writeSync } from "node:fs";
import { basename } from "node:path";
import { composeArgs, planCompose } from "./compose-mode.ts";
import { isTrue, loadConfigFile, resolveSettings } from "./config.ts";
import { planDocker, socketRouting } from "./docker-mode.ts";
import { formatShimError, SHIM_EXIT, ShimError } from "./errors.ts";
import { childEnv, exitLike, replaceProcess, runChild } from "./exec.ts";
import { parseDockerArgv } from "./argv.ts";
import type { ExecPlan, RealBinaryKind } from "./plan.ts";
import { checkLoop, findRealBinary, LOOP_GUARD_VAR } from "./real.ts";

export type Mode = RealBinaryKind | "shim";

export function modeFor(invokedAs: string): Mode {
  const name = basename(invokedAs);
  if (name === "docker") return "docker";
  if (name === "docker-compose") return "compose";
  return "shim";
}

/** A short, stable fingerprint of what is about to run (FNV-1a; no crypto needed on the hot path). */
export function fingerprint(kind: RealBinaryKind, file: string, args: readonly string[]): string {
  let hash = 0x811c9dc5;
  for (const ch of [kind, file, ...args].join("\0")) {
    hash ^= ch.codePointAt(0)!;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, "0");
}

function selfPath(): string {
  try {
    return realpathSync(process.execPath);
  } catch {
    return process.execPath;
  }
}

/** Written synchronously: the process may be replaced by exec right after. */
function say(line: string): void {
  writeSync(2, `${line}\n`);
}

function showDebug(file: string, plan: ExecPlan): void {
  for (const line of plan.debug ?? []) say(`shim: debug: ${line}`);
  for (const [key, value] of Object.entries(plan.env ?? {})) {
    if (key === LOOP_GUARD_VAR) continue;
    say(`shim: debug: env ${value === null ? `-${key}` : `${key}=${value}`}`);
  }
  say(`shim: debug: exec ${[file, ...plan.args].map((a) => JSON.stringify(a)).join(" ")}`);
}

/** Runs the real binary for docker or compose mode. */
async function front(kind: RealBinaryKind, invokedAs: string, args: readonly string[]): Promise<never> {
  const env = process.env;
  const cwd = process.cwd();
  const config = await loadConfigFile(env);
  const settings = resolveSettings(env, config.values);
  const realFile = findRealBinary({
    kind,
    invokedAs,
    self: selfPath(),
    env: { ...env, SHIM_REAL_DOCKER: settings.realDocker, SHIM_REAL_COMPOSE: settings.realCompose },
    cwd,
  });

  let plan: ExecPlan;
  if (isTrue(settings.disable)) {
    plan = { binary: kind, args: kind === "compose" ? composeArgs(args, env) : args, debug: ["SHIM_DISABLE=1: pure passthrough"] };
  } else if (kind === "docker") {
    const envChanges = socketRouting(args, env, settings);
    plan = await planDocker({ args, parsed: parseDockerArgv(args), env, settings, cwd, realDocker: realFile, envChanges });
  } else {
    const envChanges = socketRouting([], env, settings);
    plan = await planCompose({ args, env, settings, cwd, realCompose: realFile, envChanges });
  }

  const chain = checkLoop(env, fingerprint(kind, realFile, plan.args));
  plan = { ...plan, env: { ...plan.env, [LOOP_GUARD_VAR]: chain } };
  for (const notice of plan.notices ?? []) say(notice);
  if (plan.inProcess) {
    if (isTrue(settings.debug)) {
      for (const line of plan.debug ?? []) say(`shim: debug: ${line}`);
      say(`shim: debug: in-process: ${plan.inProcess.describe}`);
    }
    process.exit(await plan.inProcess.run());
  }
  if (isTrue(settings.debug)) showDebug(realFile, plan);

  let result;
  try {
    if (!plan.effects?.length) replaceProcess(realFile, plan.args, childEnv(env, plan.env));
    result = await runChild({ file: realFile, plan, env });
  } catch (err) {
    throw new ShimError(`cannot run ${realFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  exitLike(result);
}

export async function main(invokedAs: string, args: readonly string[]): Promise<never> {
  try {
    const mode = modeFor(invokedAs);
    if (mode !== "shim") return await front(mode, invokedAs, args);
    // `shim docker …` / `shim compose …` run a mode explicitly (useful before `shim install`).
    if (args[0] === "docker") return await front("docker", "docker", args.slice(1));
    if (args[0] === "compose" || args[0] === "docker-compose") return await front("compose", "docker-compose", args.slice(1));
    const { runShimCommand } = await import("./commands.ts");
    process.exit(await runShimCommand(args));
  } catch (err) {
    say(formatShimError(err));
    process.exit(err instanceof ShimError ? err.exitCode : SHIM_EXIT);
  }
}
