// Finding the real docker / compose binaries behind the shim without ever finding the shim itself.
import { accessSync, constants, realpathSync, statSync } from "node:fs";
import { delimiter, dirname, isAbsolute, join, resolve } from "node:path";
import { ShimError } from "./errors.ts";
import type { RealBinaryKind } from "./plan.ts";

/** Directories the Docker CLI searches for CLI plugins, user dir first. */
export function pluginDirs(env: NodeJS.ProcessEnv): string[] {
  const dirs: string[] = [];
  const configDir = env.DOCKER_CONFIG || (env.HOME ? join(env.HOME, ".docker") : undefined);
  if (configDir) dirs.push(join(configDir, "cli-plugins"));
  dirs.push(
    "/usr/local/lib/docker/cli-plugins",
    "/usr/local/libexec/docker/cli-plugins",
    "/usr/lib/docker/cli-plugins",
    "/usr/libexec/docker/cli-plugins",
  );
  return dirs;
}

export interface FileProbe {
  isExecutable(path: string): boolean;
  realpath(path: string): string | undefined;
}

export const nodeProbe: FileProbe = {
  isExecutable(path) {
    try {
      if (!statSync(path).isFile()) return false;
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  },
  realpath(path) {
    try {
      return realpathSync(path);
    } catch {
      return undefined;
    }
  },
};

export interface RealBinaryQuery {
  readonly kind: RealBinaryKind;
  /** How the shim was invoked (argv[0]): a path, or a bare name found on PATH. */
  readonly invokedAs: string;
  /** Real path of the running shim executable. */
  readonly self: string;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
}

/** The candidates, in the documented order, with the reason each is considered. */
export function realBinaryCandidates(q: RealBinaryQuery, probe: FileProbe): { path: string; why: string }[] {
  const name = q.kind === "docker" ? "docker" : "docker-compose";
  const override = q.kind === "docker" ? q.env.SHIM_REAL_DOCKER : q.env.SHIM_REAL_COMPOSE;
  if (override) return [{ path: override, why: q.kind === "docker" ? "SHIM_REAL_DOCKER" : "SHIM_REAL_COMPOSE" }];

  const out: { path: string; why: string }[] = [];
  const invokedPath = invokedPathOf(q, probe);
  if (invokedPath) out.push({ path: join(dirname(invokedPath), `${name}.real`), why: "beside the invoked path" });
  if (q.kind === "docker") {
    out.push({ path: "/usr/bin/docker.real", why: "default" }, { path: "/usr/local/bin/docker.real", why: "default" });
  } else {
    for (const dir of pluginDirs(q.env)) out.push({ path: join(dir, "docker-compose.real"), why: "plugin dir" });
  }
  for (const dir of (q.env.PATH ?? "").split(delimiter).filter(Boolean)) {
    out.push({ path: join(dir, name), why: "PATH" });
  }
  if (q.kind === "compose") {
    for (const dir of pluginDirs(q.env)) out.push({ path: join(dir, "docker-compose"), why: "plugin dir" });
  }
  return out;
}

/** Resolves the real binary; throws a ShimError (never loops back into the shim). */
export function findRealBinary(q: RealBinaryQuery, probe: FileProbe = nodeProbe): string {
  const candidates = realBinaryCandidates(q, probe);
  const overridden = candidates.length === 1 && candidates[0]!.why.startsWith("SHIM_REAL_");
  for (const { path, why } of candidates) {
    const absolute = isAbsolute(path) ? path : resolve(q.cwd, path);
    if (!probe.isExecutable(absolute)) {
      if (overridden) throw new ShimError(`${why}=${path} is not an executable file`);
      continue;
    }
    if (probe.realpath(absolute) === q.self) {
      if (overridden) throw new ShimError(`${why}=${path} points back at the shim itself`);
      continue;
    }
    return absolute;
  }
  const name = q.kind === "docker" ? "docker" : "docker-compose";
  throw new ShimError(
    `cannot find the real ${name}: set ${q.kind === "docker" ? "SHIM_REAL_DOCKER" : "SHIM_REAL_COMPOSE"}, or install it as ${name}.real beside the shim`,
  );
}

function invokedPathOf(q: RealBinaryQuery, probe: FileProbe): string | undefined {
  if (q.invokedAs.includes("/")) return resolve(q.cwd, q.invokedAs);
  for (const dir of (q.env.PATH ?? "").split(delimiter).filter(Boolean)) {
    const candidate = resolve(q.cwd, dir, q.invokedAs);
    if (probe.isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/**
 * A guard against indirect loops (a "real" docker that is a wrapper calling `docker` on PATH again):
 * each shim adds a fingerprint of what it is about to run; seeing its own fingerprint again means a loop.
 */
export const LOOP_GUARD_VAR = "SHIM_EXEC_CHAIN";
const MAX_NESTING = 16;

export function checkLoop(env: NodeJS.ProcessEnv, fingerprint: string): string {
  const chain = (env[LOOP_GUARD_VAR] ?? "").split(",").filter(Boolean);
  if (chain.includes(fingerprint) || chain.length >= MAX_NESTING) {
    throw new ShimError("the real binary leads back into the shim (a loop); set SHIM_REAL_DOCKER / SHIM_REAL_COMPOSE to the real binary");
  }
  return [...chain, fingerprint].join(",");
}
