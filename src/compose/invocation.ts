// One compose command, from tokens to ExecPlan: gathers the facts (facts.ts, the cache facts of src/cache, the
// path mapping of src/translate) round by round, only as far as the command needs, and hands them to the pure
// planner (plan.ts). Shared by both entry points: the shim as `docker-compose` (standalone or CLI plugin) and
// `docker … compose …` seen in docker mode.
import { createHash, randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureRemoteBuilder } from "../cache/builder.ts";
import {
  dockerConfigDir,
  FactsCache,
  findBuildxPlugin,
  inspectBuilder,
  inspectKeyDir,
  inspectRoot,
  readDockerConfig,
  type CliAccess,
  type InspectOutcome,
} from "../cache/facts.ts";
import { sanitizeKeyPart } from "../cache/key.ts";
import { DEFAULT_CACHE_ROOT, DEFAULT_SHIM_BUILDER } from "../cache/plan.ts";
import { uniqueSuffix } from "../cache/shared-fs.ts";
import { parseDockerArgv, type ScannedOption } from "../shim/argv.ts";
import { isTrue, type Settings } from "../shim/config.ts";
import { hostView } from "../shim/docker-mode.ts";
import { childEnv } from "../shim/exec.ts";
import type { ExecPlan, RealBinaryKind } from "../shim/plan.ts";
import { translateVolumeSpec } from "../translate/mounts.ts";
import { pathRules } from "../translate/rules.ts";
import { translateSource } from "../translate/source.ts";
import { parseComposeArgv, parseSubcommand, type ComposeArgv } from "./argv.ts";
import { composeEffect, OVERRIDE_DIR_PREFIX, OVERRIDE_FILE_NAME } from "./effect.ts";
import { buildxVersion, composeCwd, composeVersion, firstTimeFor, nodeProjectFs, resolvedModel, type ConfigOutcome } from "./facts.ts";
import type { ProjectModel } from "./model.ts";
import type { TranslatePath } from "./override.ts";
import { assemble, decideName, needsOf, planCache, servicesToBuild, type CachePlan, type NameDecision } from "./plan.ts";
import { locateProject, normalizeV1, sessionIdFrom, Undecidable, type Env, type ProjectLocation } from "./project.ts";
import { encodeV1CacheKeys, V1_CACHE_KEYS_VAR } from "./v1-cache-keys.ts";
import { bakeNeedsFsEntitlementsOff, buildPath, isV1, readsTopLevelName } from "./version.ts";

/**
 * Set by docker mode on the Docker CLI it runs, to the fingerprint of the argv it planned: the compose plugin (the
 * shim again, when it is installed in front of the plugin) receives exactly that argv, recognises it, and passes
 * it through. A command is thus processed once, by the first shim that sees it; an unshimmed plugin still gets the
 * processed command, and a stray inherited value never matches another command.
 */
export const PLANNED_VAR = "SHIM_COMPOSE_PLANNED";

export function plannedFingerprint(args: readonly string[]): string {
  return createHash("sha256").update(args.join("\0")).digest("hex").slice(0, 24);
}

export interface ComposeContext {
  /** The real binary's argv[1..] as received (plugin form: `[docker globals] compose …`). */
  readonly tokens: readonly string[];
  readonly pluginForm: boolean;
  /** Which real binary runs the command: the compose binary itself, or the Docker CLI (docker mode). */
  readonly binary: RealBinaryKind;
  readonly env: NodeJS.ProcessEnv;
  readonly settings: Settings;
  readonly cwd: string;
  /** The compose binary to ask for facts (run standalone). */
  readonly realCompose: string;
  /** The real Docker CLI (for buildx), looked up only by commands that build. */
  readonly realDocker: () => string | undefined;
  readonly envChanges: Readonly<Record<string, string | null>>;
}

/** The daemon compose talks to (for auto-detected mappings): `-H` before `compose` or of compose v1, else DOCKER_HOST. */
function daemonHost(ctx: ComposeContext, argv: ComposeArgv, env: Env): string | undefined {
  if (ctx.pluginForm) {
    const host = parseDockerArgv(ctx.tokens.slice(0, argv.start)).global.host;
    if (typeof host === "string") return host;
  }
  const scanHost = argv.globalTokens.findIndex((t) => t === "-H" || t === "--host");
  if (scanHost !== -1 && argv.globalTokens[scanHost + 1]) return argv.globalTokens[scanHost + 1];
  return env.DOCKER_HOST;
}

/** The project name whose `<name>_<service>` keys are shared by every session. */
function baseName(location: ProjectLocation, name: NameDecision, model: ProjectModel | undefined, argv: ComposeArgv, v1: boolean): string {
  if (name.insert || !location.nameChosenBy) return location.defaultName;
  if (!v1 && model?.name) return model.name;
  const chosen = argv.globals.projectName || location.env.COMPOSE_PROJECT_NAME || location.defaultName;
  return v1 ? normalizeV1(chosen) : chosen;
}

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

export async function planComposeTokens(ctx: ComposeContext, debug: string[] = []): Promise<ExecPlan> {
  const { tokens, settings } = ctx;
  const pass = (why: string, notices: string[] = []): ExecPlan => ({ binary: ctx.binary, args: tokens, env: ctx.envChanges, debug: [...debug, `compose: ${why}`], notices });

  const argv = parseComposeArgv(tokens, ctx.pluginForm);
  if (!argv) return pass("no `compose` command word; passed through");
  if (argv.unknownGlobal) return pass(`unknown global option ${argv.unknownGlobal}; passed through`);
  const sub = parseSubcommand(argv);
  const needs = needsOf(argv, sub);
  if (!needs.projectName) return pass(`\`${argv.subcommand ?? ""}\` uses no project; passed through`);
  for (const flag of sub?.unknownFlags ?? []) debug.push(`compose: unknown option ${flag} of ${argv.subcommand} (taken as a switch)`);

  const env = childEnv(ctx.env, ctx.envChanges);
  const facts = FactsCache.forEnv(env);
  const versionOutcome = await composeVersion(ctx.realCompose, env, facts);
  const version = versionOutcome.version;
  if (!version) {
    return pass(`cannot tell the version of ${ctx.realCompose} (${versionOutcome.error}); passed through`, [
      `shim: cannot tell the version of ${ctx.realCompose} (${versionOutcome.error}); running it without the shim's compose handling`,
    ]);
  }
  debug.push(`compose ${version.text} (${ctx.realCompose}${versionOutcome.cached ? ", version cached" : ""})`);
  const v1 = isV1(version);

  let location: ProjectLocation;
  try {
    location = locateProject({ globals: argv.globals, env, cwd: composeCwd(ctx.cwd, env, v1), v1, readsName: readsTopLevelName(version) }, nodeProjectFs);
  } catch (err) {
    if (err instanceof Undecidable) return pass(`${err.message}; passed through`);
    throw err;
  }
  if (location.files.length === 0) return pass("no compose file found (compose reports it); passed through");
  const name = decideName(location, sessionIdFrom(settings.sessionId, env), v1);

  // Round two, only for commands that create containers or build.
  const view = hostView(ctx.cwd, env);
  let translate: TranslatePath | undefined;
  const runVolumes: { option: ScannedOption; value: string }[] = [];
  if (needs.volumes) {
    const rules = await pathRules(settings, daemonHost(ctx, argv, env), env, debug);
    if (rules.length > 0) {
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

  const cacheRoot = settings.cacheDir ?? DEFAULT_CACHE_ROOT;
  const dockerGlobals = ctx.pluginForm ? parseDockerArgv(tokens.slice(0, argv.start)) : undefined;
  const dockerConfig = dockerConfigDir(typeof dockerGlobals?.global.config === "string" ? dockerGlobals.global.config : undefined, env);
  const rootState = needs.cache ? inspectRoot(cacheRoot) : { state: "missing" as const };
  // Compose v2.31–v2.36 also build with bake when the docker config file says `plugins.compose.build: bake`.
  const configSaysBake = () => (readDockerConfig(dockerConfig) as { plugins?: { compose?: { build?: string } } }).plugins?.compose?.build === "bake";
  const path = buildPath(version, env, needs.cache && configSaysBake());
  const wantsCache = needs.cache && !v1 && rootState.state !== "missing" && path.buildkit && path.cacheFrom;
  const wantsV1Keys = needs.cache && v1 && name.insert !== undefined;
  if (needs.cache && !wantsCache && !v1) debug.push(rootState.state === "missing" ? `build cache off: cache root ${cacheRoot} does not exist (SHIM_CACHE_DIR)` : `build cache off: ${path.whyNoCacheTo}`);

  let model: ProjectModel | undefined;
  if (translate || wantsCache || wantsV1Keys) {
    const outcome: ConfigOutcome = await resolvedModel(ctx.realCompose, argv, name.insert, v1, env);
    if ("model" in outcome) model = outcome.model;
    else debug.push(`compose config failed (${outcome.error}); running the command without an override so compose reports the problem itself`);
  }

  let cache: CachePlan | undefined;
  const envAdded: Record<string, string> = {};
  const base = baseName(location, name, model, argv, v1);
  const activeProfiles = argv.globals.profiles.length > 0 ? argv.globals.profiles : (location.env.COMPOSE_PROFILES ?? "").split(",").map((p) => p.trim()).filter(Boolean);
  const building = model && sub ? servicesToBuild(model, argv.subcommand!, sub.services, activeProfiles, sub.withDependencies) : new Set<string>();
  if (model && wantsCache) {
    const buildxPlugin = findBuildxPlugin(dockerConfig, env);
    const realDocker = ctx.realDocker();
    const chosenByUser = sub?.builder ?? env.BUILDX_BUILDER ?? undefined;
    const cli: CliAccess | undefined =
      realDocker && buildxPlugin
        ? { docker: realDocker, globals: ctx.pluginForm ? tokens.slice(0, argv.start - 1) : [], env, dockerConfig, buildxPlugin }
        : undefined;
    const inspected: InspectOutcome = cli ? await inspectBuilder(cli, chosenByUser, facts) : { error: "no docker CLI with buildx to ask", cached: false };
    if (inspected.error) debug.push(`build cache: docker buildx inspect ${chosenByUser ?? ""}: ${inspected.error}`);
    const cacheFacts = {
      root: cacheRoot,
      rootState,
      buildPath: path,
      builder: {
        ...(chosenByUser ? { chosenByUser } : {}),
        ...(inspected.info ? { builder: inspected.info } : {}),
        ...(settings.buildkitHost ? { buildkitHost: settings.buildkitHost } : {}),
        shimBuilderName: settings.builder || DEFAULT_SHIM_BUILDER,
        ...(cli ? {} : { shimBuilderFailure: "no docker CLI with the buildx plugin found" }),
      },
      keyDir: inspectKeyDir,
      stagingId: () => uniqueSuffix(),
      bakeNeedsFsOff: path.bake && buildxPlugin !== undefined && bakeNeedsFsEntitlementsOff(await buildxVersion(buildxPlugin, facts)),
      cwd: composeCwd(ctx.cwd, env, v1),
      warnNoCacheTo: path.bake && !path.cacheTo && (await firstTimeFor(ctx.realCompose, "bake-drops-cache-to", facts)),
    };
    cache = planCache(model, building, base, cacheFacts, env);
    if (cache.ensureBuilder && cli) {
      const { name: builderName, endpoint } = cache.ensureBuilder;
      try {
        const outcome = await ensureRemoteBuilder(cli, builderName, endpoint, facts);
        debug.push(`build cache: remote builder "${builderName}" ${outcome.action}`);
      } catch (err) {
        cache = planCache(model, building, base, { ...cacheFacts, builder: { ...cacheFacts.builder, shimBuilderFailure: (err as Error).message } }, env);
      }
    }
    await facts.save();
    debug.push(...cache.debug);
    Object.assign(envAdded, cache.env);
  }
  if (model && wantsV1Keys) {
    const keys: Record<string, string> = {};
    for (const [service, svc] of model.services) {
      if (svc.build && building.has(service)) keys[svc.image ?? `${name.insert}_${service}`] = sanitizeKeyPart(`${base}_${service}`);
    }
    if (Object.keys(keys).length > 0) {
      envAdded[V1_CACHE_KEYS_VAR] = encodeV1CacheKeys(keys);
      debug.push(`build cache: compose v1 builds through docker build; keys for its tags: ${envAdded[V1_CACHE_KEYS_VAR]}`);
    }
  }

  const overrideFile = overrideFilePath();
  const plan = assemble({ argv, location, name, ...(model ? { model } : {}), ...(translate ? { translate } : {}), runVolumes, ...(cache ? { cache } : {}), overrideFile });
  const exports = cache?.exports ?? [];
  const importOnly = cache?.importing ?? [];
  const effects =
    plan.override || exports.length > 0 || importOnly.length > 0
      ? [
          composeEffect({
            ...(plan.override ? { file: plan.override.file, render: (without: ReadonlySet<string>) => renderWithout(plan.override!.doc, without) } : {}),
            exports,
            importOnly,
            debug: isTrue(settings.debug),
          }),
        ]
      : [];
  const env2: Record<string, string | null> = { ...ctx.envChanges, ...envAdded };
  if (ctx.binary === "docker") env2[PLANNED_VAR] = plannedFingerprint(plan.args);
  if (plan.override) debug.push(`override ${plan.override.file}`);
  return { binary: ctx.binary, args: plan.args, env: env2, debug: [...debug, ...plan.debug], notices: [...(cache?.notices ?? [])], effects };
}
