// Docker-mode entry for builds: gathers the facts (facts.ts), asks the pure planner (plan.ts), makes sure the
// shim's remote builder exists when the plan needs it, and turns the plan into an ExecPlan whose effects stage
// the cache export and merge it into the shared store after the build (store.ts).
import { rmSync } from "node:fs";
import { basename, posix } from "node:path";
import type { DockerInvocation } from "../shim/context.ts";
import { isTrue } from "../shim/config.ts";
import type { ChildResult, Effect, ExecPlan } from "../shim/plan.ts";
import { matchBuildCommand, type BuildCommand } from "./build-argv.ts";
import { deriveCacheKey } from "./key.ts";
import { ensureRemoteBuilder } from "./builder.ts";
import {
  cliVersion,
  dockerConfigDir,
  dockerContextName,
  FactsCache,
  findBuildxPlugin,
  inspectBuilder,
  inspectKeyDir,
  inspectRoot,
  readDockerConfig,
  type CliAccess,
} from "./facts.ts";
import {
  cacheGate,
  DEFAULT_CACHE_ROOT,
  DEFAULT_SHIM_BUILDER,
  planBuildCache,
  routeBuild,
  type BuildCacheFacts,
  type BuildCachePlan,
  type Env,
} from "./plan.ts";
import { mkdirShared, uniqueSuffix } from "./shared-fs.ts";
import { openCacheDir, type Staging } from "./store.ts";

/** The environment the real CLI will see (the shim's env plus the plan's changes so far). */
function childEnvOf(inv: DockerInvocation): Env {
  const env: Record<string, string | undefined> = { ...inv.env };
  for (const [key, value] of Object.entries(inv.envChanges)) env[key] = value ?? undefined;
  return env;
}

export interface GatheredFacts {
  readonly facts: BuildCacheFacts;
  readonly cli: CliAccess;
  readonly cache: FactsCache;
  readonly debug: string[];
}

/**
 * The facts for one build command: a passthrough plan when the cache does not apply (cheap checks only), else
 * everything the planner needs (CLI version and builder capability come from the facts cache when possible).
 */
export async function gatherBuildFacts(inv: DockerInvocation, cmd: BuildCommand): Promise<BuildCachePlan | GatheredFacts> {
  const env = childEnvOf(inv);
  const cacheRoot = inv.settings.cacheDir ?? DEFAULT_CACHE_ROOT;
  const dockerConfig = dockerConfigDir(cmd.configDir, env);
  const buildxPlugin = findBuildxPlugin(dockerConfig, env);
  const gate = { cacheRoot, root: inspectRoot(cacheRoot), buildxInstalled: buildxPlugin !== undefined };
  const gated = cacheGate(cmd, env, gate);
  if (gated) return gated;

  const cache = FactsCache.forEnv(env);
  // The gate passed, so the plugin was found.
  const cli: CliAccess = { docker: inv.realDocker, globals: inv.args.slice(0, cmd.formIndex), env, dockerConfig, buildxPlugin: buildxPlugin! };
  const config = readDockerConfig(dockerConfig);
  const routingFacts = {
    cliVersion: await cliVersion(inv.realDocker, cache),
    builderAlias: config.aliases?.builder === "buildx",
    dockerContext: dockerContextName(inv.parsed.global, env, config),
  };
  const routing = routeBuild(cmd, env, routingFacts);
  const inspected = await inspectBuilder(cli, routing.builderName, cache);
  const debug: string[] = [];
  if (inspected.error) debug.push(`build cache: docker buildx inspect ${routing.builderName ?? ""}: ${inspected.error}`);
  else debug.push(`build cache: builder facts ${inspected.cached ? `from ${cache.file}` : "from docker buildx inspect"}`);
  const facts: BuildCacheFacts = {
    ...gate,
    ...routingFacts,
    ...(inspected.info ? { builder: inspected.info } : {}),
    ...(inv.settings.buildkitHost ? { buildkitHost: inv.settings.buildkitHost } : {}),
    shimBuilderName: inv.settings.builder || DEFAULT_SHIM_BUILDER,
    cwd: inv.cwd,
    stagingId: uniqueSuffix(),
    keyDir: inspectKeyDir,
  };
  return { facts, cli, cache, debug };
}

/** Returns undefined when the command is not a build form (the caller then passes it through). */
export async function planDockerBuild(inv: DockerInvocation, debug: string[]): Promise<ExecPlan | undefined> {
  const cmd = matchBuildCommand(inv.parsed);
  if (!cmd) return undefined;
  const gathered = await gatherBuildFacts(inv, cmd);
  if (!("facts" in gathered)) return gathered.direct ? directBuild(inv, cmd, gathered, debug) : toExecPlan(inv, gathered, debug);
  const { facts, cli, cache } = gathered;
  const env = childEnvOf(inv);
  let plan = planBuildCache(cmd, env, facts);
  if (plan.ensureBuilder) {
    const { name, endpoint } = plan.ensureBuilder;
    try {
      const outcome = await ensureRemoteBuilder(cli, name, endpoint, cache);
      gathered.debug.push(`build cache: remote builder "${name}" ${outcome.action}`);
    } catch (err) {
      plan = planBuildCache(cmd, env, { ...facts, shimBuilderFailure: (err as Error).message });
    }
  }
  await cache.save();
  return toExecPlan(inv, plan, debug, gathered.debug);
}

/** `docker build` without buildx, with the shared cache: the shim's BuildKit client does the build itself. */
async function directBuild(inv: DockerInvocation, cmd: BuildCommand, gated: BuildCachePlan, debug: readonly string[]): Promise<ExecPlan> {
  const { planDirectBuild, runDirectBuild } = await import("../buildkit/build/direct.ts");
  const env = childEnvOf(inv);
  const cacheRoot = inv.settings.cacheDir ?? DEFAULT_CACHE_ROOT;
  const derived = deriveCacheKey({ tag: cmd.tag, context: cmd.context, cwd: inv.cwd });
  const cacheDir = derived ? posix.join(cacheRoot, derived.key) : undefined;
  const host = inv.parsed.global.host;
  const direct = planDirectBuild({
    args: cmd.argv.slice(cmd.subcommandIndex + 1),
    env,
    ...(cacheDir ? { cacheDir, importFromCache: inspectKeyDir(cacheDir).hasIndex } : {}),
    ...(inv.settings.buildkitHost ? { buildkitHost: inv.settings.buildkitHost } : {}),
    ...(typeof host === "string" ? { dockerHost: host } : env.DOCKER_HOST ? { dockerHost: env.DOCKER_HOST } : {}),
  });
  return {
    binary: "docker",
    args: inv.args,
    env: inv.envChanges,
    debug: [...debug, ...gated.debug, ...(derived ? [`build cache: key "${derived.key}" ${derived.reason}`] : []), ...direct.debug],
    inProcess: { describe: `build with the shim's BuildKit client (${cmd.form})`, run: () => runDirectBuild(direct) },
  };
}

function toExecPlan(inv: DockerInvocation, plan: BuildCachePlan, debug: readonly string[], factDebug: readonly string[] = []): ExecPlan {
  const effects: Effect[] = [];
  const showDebug = isTrue(inv.settings.debug);
  if (plan.cache?.stagingDir) effects.push(exportEffect(plan.cache.keyDir, plan.cache.stagingDir, showDebug));
  else if (plan.cache?.importing) effects.push(usageEffect(plan.cache.keyDir));
  return {
    binary: "docker",
    args: plan.args,
    env: inv.envChanges,
    notices: plan.notices,
    debug: [...debug, ...plan.debug, ...factDebug],
    effects,
  };
}

function say(line: string): void {
  process.stderr.write(`shim: ${line}\n`);
}

/**
 * Creates the staging dir the plan named before the build, merges it into the key dir after a successful build,
 * and removes it otherwise (failure, signal, or the shim being killed). A cache problem never fails the build.
 */
export function exportEffect(keyDir: string, stagingDir: string, showDebug: boolean): Effect {
  let staging: Staging | undefined;
  const removeQuietly = () => {
    try {
      rmSync(stagingDir, { recursive: true, force: true });
    } catch {
      // nothing there we could remove
    }
  };
  return {
    describe: `export build cache via ${stagingDir} into ${keyDir}`,
    async before() {
      try {
        staging = await openCacheDir(keyDir).beginExport({ id: basename(stagingDir) });
      } catch (err) {
        say(`build cache not saved: cannot prepare ${stagingDir}: ${(err as Error).message}`);
      }
    },
    async after(result: ChildResult) {
      if (!staging) {
        removeQuietly(); // the exporter may have created it on its own
        return;
      }
      if (result.code !== 0) {
        if (showDebug) say(`debug: build ${result.signal ? `killed by ${result.signal}` : `exited with ${result.code}`}; cache export discarded`);
        await staging.discard().catch(() => removeQuietly());
        return;
      }
      try {
        const outcome = await staging.commit();
        for (const note of outcome.notes) say(`build cache: ${note}`);
        for (const { tag, missing } of outcome.skipped) {
          say(`build cache not saved for tag ${tag}: the export is missing ${missing.length} blob(s), e.g. ${missing[0]}`);
        }
        if (showDebug) {
          say(`debug: build cache merged into ${keyDir}: ${outcome.blobsAdded} new blob(s), tags [${outcome.published.join(", ")}]`);
        }
      } catch (err) {
        say(`build cache not saved: ${(err as Error).message}`);
      }
    },
    abort() {
      staging = undefined;
      removeQuietly();
    },
  };
}

/**
 * Import-only builds still count as a use of the key (for a later cleanup command). The key dir is created first,
 * shared: buildx would otherwise create a missing import dir itself with its own uid and umask, and another
 * session's user could then never export into that key.
 */
export function usageEffect(keyDir: string): Effect {
  return {
    describe: `record use of ${keyDir}`,
    async before() {
      await mkdirShared(keyDir).catch(() => undefined);
    },
    async after() {
      await openCacheDir(keyDir).recordUse().catch(() => undefined);
    },
  };
}

