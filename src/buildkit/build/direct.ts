// The direct route for `docker build` (issue #5 item 7): when the docker-mode cache planner (src/cache/) finds no
// usable buildx, `docker build …` / `docker image build …` / `docker builder build …` with the shared cache runs
// through this client instead of the classic CLI path, which cannot import or export a local cache.
//
//   const plan = planDirectBuild({ args, env, cacheDir, importFromCache, buildkitHost, dockerHost });  // pure
//   process.exit(await runDirectBuild(plan));
//
// The options are docker build's, understood by the same parser as `shim build` (dialect "docker"); anything
// this client cannot honour fails with one `shim: …` line suggesting the buildx plugin. The image is loaded
// into the Docker daemon unless an output option says otherwise, as `docker build` does.
import { ShimError } from "../../shim/errors.ts";
import { parseBuildFlags, BUILD_USAGE, type BuildFlags, type CacheSpec } from "./flags.ts";
import { runBuild, type BuildExtras, type BuildIo } from "./run.ts";

type Env = Readonly<Record<string, string | undefined>>;

export interface DirectBuildInput {
  /** Everything after the build subcommand: options and the context (`cmd.argv.slice(cmd.subcommandIndex + 1)`). */
  args: readonly string[];
  env: Env;
  /** The shared-cache key directory (`<cache root>/<key>`), when the cache applies to this build. */
  cacheDir?: string;
  /** The key directory has an index to import (a first build has none). */
  importFromCache?: boolean;
  /**
   * A standalone BuildKit to build on (BUILDKIT_HOST). Without it the Docker daemon's own BuildKit builds,
   * which can import a local cache but export only inline cache: the shared cache is then read-only.
   */
  buildkitHost?: string;
  /** The daemon the docker command talks to (`-H`, DOCKER_HOST); the image is loaded there. Default DOCKER_HOST. */
  dockerHost?: string;
}

export interface DirectBuildPlan {
  readonly flags: BuildFlags;
  readonly extras: BuildExtras;
  /** The environment for the build: DOCKER_HOST names the daemon that receives the image. */
  readonly env: Env;
  /** `shim: …` lines to show before the build (e.g. why the cache is read-only). */
  readonly notices: readonly string[];
  /** Why the plan looks like this (for SHIM_DEBUG). */
  readonly debug: readonly string[];
}

/** Pure: throws ShimError for options this client does not support (the caller prints it and exits 125). */
export function planDirectBuild(input: DirectBuildInput): DirectBuildPlan {
  const flags = parseBuildFlags(input.args, input.env, "docker");
  const notices: string[] = [];
  const debug: string[] = [];
  const env: Record<string, string | undefined> = { ...input.env };
  if (input.dockerHost) env.DOCKER_HOST = input.dockerHost;
  // Where to build: a standalone BuildKit when configured, else the daemon `docker build` would have used.
  flags.buildkit = input.buildkitHost ?? (input.dockerHost ? `docker+${input.dockerHost}` : "docker");
  debug.push(`direct build: no usable buildx; building with shim's BuildKit client on ${flags.buildkit}`);

  const cacheImports: CacheSpec[] = [];
  const cacheExports: CacheSpec[] = [];
  if (input.cacheDir && !flags.help) {
    if (flags.cacheFrom.length === 0 && input.importFromCache) cacheImports.push({ type: "local", attrs: { src: input.cacheDir } });
    if (flags.cacheTo.length === 0) {
      if (input.buildkitHost) {
        cacheExports.push({ type: "local", attrs: { dest: input.cacheDir, mode: "max" } });
      } else {
        notices.push(
          "shim: build cache is read-only here (the Docker daemon's BuildKit cannot export a local cache); set BUILDKIT_HOST to a buildkitd to save it",
        );
      }
    }
    debug.push(
      `direct build: cache ${input.cacheDir}: ${cacheImports.length > 0 ? "import" : "no import"}, ${cacheExports.length > 0 ? "export" : "no export"}`,
    );
  }
  return { flags, extras: { loadByDefault: true, cacheImports, cacheExports }, env, notices, debug };
}

/** Runs a planned direct build; resolves with the exit status (0, 1 for a failed build, 130 when cancelled). */
export async function runDirectBuild(plan: DirectBuildPlan, io: Partial<BuildIo> = {}): Promise<number> {
  const stderr = io.stderr ?? process.stderr;
  if (plan.flags.help) {
    (io.stdout ?? process.stdout).write(BUILD_USAGE.replace("shim build", "docker build"));
    return 0;
  }
  for (const notice of plan.notices) stderr.write(`${notice}\n`);
  try {
    return await runBuild(
      plan.flags,
      {
        env: plan.env,
        cwd: io.cwd ?? process.cwd(),
        stdin: io.stdin ?? process.stdin,
        stdout: io.stdout ?? process.stdout,
        stderr,
        handleSignals: io.handleSignals ?? true,
      },
      plan.extras,
    );
  } catch (err) {
    if (err instanceof ShimError) throw err;
    throw new ShimError(err instanceof Error ? err.message : String(err), 1);
  }
}
