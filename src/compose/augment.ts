// Round two, for commands that create containers or build: what compose resolved (`config`), the path mapping
// for bind sources and `run -v`, the shared cache (facts of src/cache, the pure cache-plan.ts), and the effect that
// writes the override and merges the exports. Loaded only for those commands.
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureRemoteBuilder } from "../cache/builder.ts";
import { FactsCache, findBuildxPlugin, inspectBuilder, inspectKeyDir, inspectRoot, readDockerConfig, type CliAccess, type InspectOutcome } from "../cache/facts.ts";
import { sanitizeKeyPart } from "../cache/key.ts";
import { DEFAULT_CACHE_ROOT, DEFAULT_SHIM_BUILDER, type RootState } from "../cache/plan.ts";
import { uniqueSuffix } from "../cache/shared-fs.ts";
import { parseDockerArgv, type ScannedOption } from "../shim/argv.ts";
import { isTrue } from "../shim/config.ts";
import { hostView } from "../shim/docker-mode.ts";
import type { Effect } from "../shim/plan.ts";
import { translateVolumeSpec } from "../translate/mounts.ts";
import { pathRules } from "../translate/rules.ts";
import { translateSource } from "../translate/source.ts";
import type { ComposeArgv, SubcommandOptions } from "./argv.ts";
import { planCache, servicesToBuild, type CacheFacts, type CachePlan } from "./cache-plan.ts";
import { composeEffect, OVERRIDE_DIR_PREFIX, OVERRIDE_FILE_NAME } from "./effect.ts";
import { buildxVersion, composeCwd, dockerConfigDirOf, firstTimeFor, resolvedModel, type BinaryFacts } from "./facts.ts";
import type { ComposeContext } from "./invocation.ts";
import type { ProjectModel } from "./model.ts";
import type { TranslatePath } from "./override.ts";
import type { NameDecision, Needs } from "./plan.ts";
import { normalizeV1, type Env, type ProjectLocation } from "./project.ts";
import { encodeV1CacheKeys, V1_CACHE_KEYS_VAR } from "./v1-cache-keys.ts";
import { bakeNeedsFsEntitlementsOff, buildPath, isV1, type BuildPath, type ComposeVersion } from "./version.ts";

export interface AugmentInput {
  readonly ctx: ComposeContext;
  readonly argv: ComposeArgv;
  readonly sub: SubcommandOptions | undefined;
  readonly needs: Needs;
  readonly version: ComposeVersion;
  readonly location: ProjectLocation;
  readonly name: NameDecision;
  /** The environment compose runs with. */
  readonly env: Env;
  readonly facts: BinaryFacts;
}

export interface Augmented {
  readonly model?: ProjectModel;
  readonly translate?: TranslatePath;
  readonly runVolumes: { option: ScannedOption; value: string }[];
  readonly cache?: CachePlan;
  readonly overrideFile: string;
  readonly env: Record<string, string>;
  readonly notices: string[];
  /** The effect around compose, given the override the planner produced. */
  effects(override: { file: string; doc: Record<string, unknown> } | undefined): Effect[];
}

/** The daemon compose talks to (for auto-detected mappings): `-H` before `compose` or of compose v1, else DOCKER_HOST. */
function daemonHost(ctx: ComposeContext, argv: ComposeArgv, env: Env): string | undefined {
  if (ctx.pluginForm) {
    const host = parseDockerArgv(ctx.tokens.slice(0, argv.start)).global.host;
    if (typeof host === "string") return host;
  }
  const at = argv.globalTokens.findIndex((t) => t === "-H" || t === "--host");
  if (at !== -1 && argv.globalTokens[at + 1]) return argv.globalTokens[at + 1];
  return env.DOCKER_HOST;
}

/** The project name whose `<name>_<service>` keys are shared by every session. */
function baseName(location: ProjectLocation, name: NameDecision, model: ProjectModel | undefined, argv: ComposeArgv, v1: boolean): string {
  if (name.insert || !location.nameChosenBy) return location.defaultName;
  if (!v1 && model?.name) return model.name;
  const chosen = argv.globals.projectName || location.env.COMPOSE_PROJECT_NAME || location.defaultName;
  return v1 ? normalizeV1(chosen) : chosen;
}

/** A fresh path in the per-user private dir (`<tmp>/shim-<uid>/compose-<pid>-<random>/…`); the effect creates it. */
function overrideFilePath(): string {
  const uid = process.getuid?.() ?? 0;
  return join(tmpdir(), `shim-${uid}`, `${OVERRIDE_DIR_PREFIX}${process.pid}-${randomBytes(6).toString("hex")}`, OVERRIDE_FILE_NAME);
}

/** The override without cache_to for the services whose staging dir could not be prepared. */
function renderWithout(doc: Record<string, unknown>, withoutExport: ReadonlySet<string>): string {
  const copy = structuredClone(doc) as { services?: Record<string, { build?: Record<string, unknown> }> };
  for (const service of withoutExport) {
    const svc = copy.services?.[service];
    if (!svc?.build) continue;
    delete svc.build.cache_to;
    if (Object.keys(svc.build).length === 0) delete svc.build;
  }
  return `${JSON.stringify(copy, null, 2)}\n`;
}

interface CacheInputs {
  readonly model: ProjectModel;
  readonly building: ReadonlySet<string>;
  readonly base: string;
  readonly path: BuildPath;
  readonly rootState: RootState;
  readonly cacheRoot: string;
  readonly dockerConfig: string;
  readonly builderFlag: string | undefined;
}

/** The cache plan, with the builder facts it needs (inspected, cached) and the shim's remote builder created. */
async function cacheFor(input: AugmentInput, c: CacheInputs, debug: string[]): Promise<CachePlan> {
  const { ctx, env, argv } = input;
  const path = c.path;
  const builderFacts = FactsCache.forEnv(env);
  const buildxPlugin = findBuildxPlugin(c.dockerConfig, env);
  const realDocker = ctx.realDocker();
  const chosenByUser = c.builderFlag ?? env.BUILDX_BUILDER ?? undefined;
  const cli: CliAccess | undefined =
    realDocker && buildxPlugin
      ? { docker: realDocker, globals: ctx.pluginForm ? ctx.tokens.slice(0, argv.start - 1) : [], env, dockerConfig: c.dockerConfig, buildxPlugin }
      : undefined;
  const inspected: InspectOutcome = cli ? await inspectBuilder(cli, chosenByUser, builderFacts) : { error: "no docker CLI with buildx to ask", cached: false };
  if (inspected.error) debug.push(`build cache: docker buildx inspect ${chosenByUser ?? ""}: ${inspected.error}`);
  const cacheFacts: CacheFacts = {
    root: c.cacheRoot,
    rootState: c.rootState,
    buildPath: path,
    builder: {
      ...(chosenByUser ? { chosenByUser } : {}),
      ...(inspected.info ? { builder: inspected.info } : {}),
      ...(ctx.settings.buildkitHost ? { buildkitHost: ctx.settings.buildkitHost } : {}),
      shimBuilderName: ctx.settings.builder || DEFAULT_SHIM_BUILDER,
      ...(cli ? {} : { shimBuilderFailure: "no docker CLI with the buildx plugin found" }),
    },
    keyDir: inspectKeyDir,
    stagingId: () => uniqueSuffix(),
    bakeNeedsFsOff: path.bake && buildxPlugin !== undefined && bakeNeedsFsEntitlementsOff(await buildxVersion(buildxPlugin, input.facts)),
    cwd: composeCwd(ctx.cwd, env, false), // compose v1 never gets cache entries
    warnNoCacheTo: path.bake && !path.cacheTo && firstTimeFor(ctx.realCompose, "bake-drops-cache-to", input.facts),
  };
  let cache = planCache(c.model, c.building, c.base, cacheFacts, env);
  if (cache.ensureBuilder && cli) {
    const { name, endpoint } = cache.ensureBuilder;
    try {
      const outcome = await ensureRemoteBuilder(cli, name, endpoint, builderFacts);
      debug.push(`build cache: remote builder "${name}" ${outcome.action}`);
    } catch (err) {
      cache = planCache(c.model, c.building, c.base, { ...cacheFacts, builder: { ...cacheFacts.builder, shimBuilderFailure: (err as Error).message } }, env);
    }
  }
  await builderFacts.save();
  debug.push(...cache.debug);
  return cache;
}

export async function augment(input: AugmentInput, debug: string[]): Promise<Augmented> {
  const { ctx, argv, sub, needs, version, location, name, env } = input;
  const v1 = isV1(version);

  let translate: TranslatePath | undefined;
  const runVolumes: { option: ScannedOption; value: string }[] = [];
  if (needs.volumes) {
    const view = hostView(ctx.cwd, env);
    const rules = await pathRules(ctx.settings, daemonHost(ctx, argv, env), env, debug);
    if (rules.length > 0) {
      // Only real mappings: a source compose resolved is already absolute, and `run -v` stays compose's business.
      translate = (source) => {
        const t = translateSource(source, view, rules);
        return t && t.why.startsWith("mapped") ? t : undefined;
      };
      for (const option of sub?.runVolumes ?? []) {
        const t = translateVolumeSpec(option.value ?? "", view, rules);
        if (!t || !t.why.startsWith("mapped")) continue;
        runVolumes.push({ option, value: t.value });
        debug.push(`run ${option.flag} ${option.value} → ${t.value} (${t.why})`);
      }
    }
  }

  const cacheRoot = ctx.settings.cacheDir ?? DEFAULT_CACHE_ROOT;
  const configFlag = ctx.pluginForm ? parseDockerArgv(ctx.tokens.slice(0, argv.start)).global.config : undefined;
  const dockerConfig = dockerConfigDirOf(typeof configFlag === "string" ? configFlag : undefined, env);
  const rootState: RootState = needs.cache && !v1 ? inspectRoot(cacheRoot) : { state: "missing" };
  // Compose v2.31–v2.36 also build with bake when the docker config file says `plugins.compose.build: bake`.
  const configSaysBake = () => (readDockerConfig(dockerConfig) as { plugins?: { compose?: { build?: string } } }).plugins?.compose?.build === "bake";
  const path = buildPath(version, env, needs.cache && !v1 && configSaysBake());
  const wantsCache = needs.cache && !v1 && rootState.state !== "missing" && path.buildkit && path.cacheFrom;
  const wantsV1Keys = needs.cache && v1 && name.insert !== undefined;
  if (needs.cache && !v1 && !wantsCache) {
    debug.push(rootState.state === "missing" ? `build cache off: cache root ${cacheRoot} does not exist (SHIM_CACHE_DIR)` : `build cache off: ${path.whyNoCacheTo}`);
  }

  let model: ProjectModel | undefined;
  if (translate || wantsCache || wantsV1Keys) {
    const outcome = await resolvedModel(ctx.realCompose, argv, name.insert, v1, env);
    if ("model" in outcome) model = outcome.model;
    else debug.push(`compose config failed (${outcome.error}); running the command without an override so compose reports the problem itself`);
  }

  const envAdded: Record<string, string> = {};
  let cache: CachePlan | undefined;
  if (model && (wantsCache || wantsV1Keys)) {
    const base = baseName(location, name, model, argv, v1);
    const profiles = argv.globals.profiles.length > 0 ? argv.globals.profiles : (location.env.COMPOSE_PROFILES ?? "").split(",").map((p) => p.trim()).filter(Boolean);
    const building = servicesToBuild(model, argv.subcommand!, sub?.services ?? [], profiles, sub?.withDependencies ?? false);
    if (wantsCache) {
      cache = await cacheFor(input, { model, building, base, path, rootState, cacheRoot, dockerConfig, builderFlag: sub?.builder }, debug);
      Object.assign(envAdded, cache.env);
    } else {
      // v1 builds through `docker build -t <project>_<service>`: tell docker mode the shared key of each tag.
      const keys: Record<string, string> = {};
      for (const service of building) {
        const svc = model.services.get(service);
        if (svc?.build) keys[svc.image ?? `${name.insert}_${service}`] = sanitizeKeyPart(`${base}_${service}`);
      }
      if (Object.keys(keys).length > 0) {
        envAdded[V1_CACHE_KEYS_VAR] = encodeV1CacheKeys(keys);
        debug.push(`build cache: compose v1 builds through docker build; keys for its tags: ${envAdded[V1_CACHE_KEYS_VAR]}`);
      }
    }
  }

  return {
    ...(model ? { model } : {}),
    ...(translate ? { translate } : {}),
    runVolumes,
    ...(cache ? { cache } : {}),
    overrideFile: overrideFilePath(),
    env: envAdded,
    notices: [...(cache?.notices ?? [])],
    effects(override) {
      const exports = cache?.exports ?? [];
      const importOnly = cache?.importing ?? [];
      if (!override && exports.length === 0 && importOnly.length === 0) return [];
      return [
        composeEffect({
          ...(override ? { file: override.file, render: (without: ReadonlySet<string>) => renderWithout(override.doc, without) } : {}),
          exports,
          importOnly,
          debug: isTrue(ctx.settings.debug),
        }),
      ];
    },
  };
}
