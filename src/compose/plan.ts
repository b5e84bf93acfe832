// The compose planner: argv + facts → the real compose's argv, its environment changes and the override document.
// Pure. Facts are gathered in two rounds by facts.ts: the cheap ones for every command (version, where the project
// is and what it is called), then — only for commands that create containers or build — what compose resolved
// (`config`), the path mapping and the cache/builder facts.
import { posix } from "node:path";
import type { BuilderInfo, KeyDirState, RootState } from "../cache/plan.ts";
import { isSafeKey, sanitizeKeyPart } from "../cache/key.ts";
import { rewriteValues, type ScannedOption } from "../shim/argv.ts";
import type { ComposeArgv, SubcommandOptions } from "./argv.ts";
import type { ProjectModel } from "./model.ts";
import { buildOverride, type ServiceCache, type TranslatePath } from "./override.ts";
import { sessionProjectName, type ProjectLocation, type SessionId } from "./project.ts";
import type { BuildPath, ComposeVersion } from "./version.ts";

/** Subcommands that never use a project: no `-p` for them. */
const NO_PROJECT = new Set(["version", "help", "ls", "completion", "__complete", "__completeNoDesc", "docker-cli-plugin-metadata"]);
/** Subcommands that create containers from the project's service definitions. */
const CREATES_CONTAINERS = new Set(["up", "run", "create", "watch"]);

export interface NameDecision {
  /** The name to pass as `-p` (undefined: leave compose's own choice). */
  readonly insert?: string;
  /** The project name without the session suffix: the prefix of the cache keys, shared by every session. */
  readonly base: string;
  readonly why: string;
}

/** The project name for this session (compose-cli.md §3; issue item 5). */
export function decideName(location: ProjectLocation, session: SessionId | undefined, v1: boolean): NameDecision {
  if (location.nameChosenBy) return { base: location.defaultName, why: `project name chosen by ${location.nameChosenBy}; left alone` };
  if (!session) return { base: location.defaultName, why: "no session id (SHIM_SESSION_ID, HELIX_TASK_NUMBER, HELIX_SESSION_ID); project name left alone" };
  const name = sessionProjectName(location.defaultName, session, v1);
  if (!name) return { base: location.defaultName, why: `project name "${location.defaultName}" + session "${session.id}" gives no valid name; left alone` };
  return { insert: name, base: location.defaultName, why: `project "${name}" = "${location.defaultName}" + ${session.from}` };
}

export interface Needs {
  readonly projectName: boolean;
  /** Bind sources may need translating (the command creates containers). */
  readonly volumes: boolean;
  /** The command builds: the shared cache applies. */
  readonly cache: boolean;
}

/** What a command needs, from argv alone. */
export function needsOf(argv: ComposeArgv, sub: SubcommandOptions | undefined): Needs {
  const name = argv.subcommand;
  if (name === undefined || argv.globals.informational || sub?.help || NO_PROJECT.has(name)) {
    return { projectName: false, volumes: false, cache: false };
  }
  return {
    projectName: true,
    volumes: CREATES_CONTAINERS.has(name),
    cache: Boolean(sub?.builds) && !sub?.noBuildOutput,
  };
}

/**
 * The services a building command builds: the ones named on the command line — with what they depend on, except
 * for `build` without `--with-dependencies` — else every service its profiles enable (and their dependencies).
 */
export function servicesToBuild(model: ProjectModel, subcommand: string, named: readonly string[], activeProfiles: readonly string[], withDependencies: boolean): Set<string> {
  const enabled = (name: string) => {
    const svc = model.services.get(name);
    return svc !== undefined && (svc.profiles.length === 0 || activeProfiles.includes("*") || svc.profiles.some((p) => activeProfiles.includes(p)));
  };
  const followDependencies = subcommand !== "build" || withDependencies;
  const out = new Set<string>();
  const visit = (name: string) => {
    const svc = model.services.get(name);
    if (!svc || out.has(name)) return;
    out.add(name);
    if (followDependencies) for (const dep of svc.dependsOn) visit(dep);
  };
  for (const name of named.length > 0 ? named : [...model.services.keys()].filter(enabled)) visit(name);
  return out;
}

export interface BuilderFacts {
  /** The builder compose will use: `build --builder`, BUILDX_BUILDER, else buildx's current one. */
  readonly chosenByUser?: string;
  /** What `docker buildx inspect` said about it (undefined: could not be inspected). */
  readonly builder?: BuilderInfo;
  readonly buildkitHost?: string;
  readonly shimBuilderName: string;
  /** Creating the shim's remote builder failed (then the cache is read-only). */
  readonly shimBuilderFailure?: string;
}

export interface CacheFacts {
  readonly root: string;
  readonly rootState: RootState;
  readonly buildPath: BuildPath;
  readonly builder: BuilderFacts;
  readonly keyDir: (dir: string) => KeyDirState;
  /** A fresh staging dir name for each service that exports. */
  readonly stagingId: (service: string) => string;
  /** bake needs BUILDX_BAKE_ENTITLEMENTS_FS=0 to touch the cache root (see version.ts). */
  readonly bakeNeedsFsOff: boolean;
  /** compose's working directory (bake allows file access below it). */
  readonly cwd: string;
  /** Say (once per compose binary) that this compose cannot export, instead of only logging it. */
  readonly warnNoCacheTo: boolean;
}

export interface StagedExport {
  readonly service: string;
  readonly key: string;
  readonly keyDir: string;
  readonly stagingId: string;
  readonly stagingDir: string;
}

export interface CachePlan {
  readonly perService: ReadonlyMap<string, ServiceCache>;
  readonly exports: readonly StagedExport[];
  /** Key dirs only imported from (recorded as used, for a later cleanup). */
  readonly importing: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** The builder compose must be given (created before compose starts). */
  readonly ensureBuilder?: { readonly name: string; readonly endpoint: string };
  readonly notices: readonly string[];
  readonly debug: readonly string[];
}

type ExportDecision = { export: true; setBuilder?: string } | { export: false; why: string; notice?: string };

function exportDecision(b: BuilderFacts): ExportDecision {
  const who = b.builder ? `builder "${b.builder.name}" (${b.builder.driver} driver)` : `builder "${b.chosenByUser ?? "current"}"`;
  if (b.builder?.canExport) return { export: true };
  if (!b.chosenByUser && b.buildkitHost && !b.shimBuilderFailure) return { export: true, setBuilder: b.shimBuilderName };
  const fix = b.shimBuilderFailure
    ? `creating builder "${b.shimBuilderName}" for BUILDKIT_HOST failed: ${b.shimBuilderFailure}`
    : b.chosenByUser
      ? "choose a docker-container or remote builder to save it"
      : "set BUILDKIT_HOST or use a docker-container builder to save it";
  const line = `build cache is read-only here (${who} cannot export cache); ${fix}`;
  return { export: false, why: line, notice: `shim: ${line}` };
}

/** Cache entries for every service that builds (issue item 6). */
export function planCache(
  model: ProjectModel,
  building: ReadonlySet<string>,
  baseName: string,
  facts: CacheFacts,
  env: Readonly<Record<string, string | undefined>>,
): CachePlan {
  const debug: string[] = [];
  const notices: string[] = [];
  const empty = (line: string, notice?: string): CachePlan => ({
    perService: new Map(),
    exports: [],
    importing: [],
    env: {},
    notices: notice ? [notice] : [],
    debug: [line],
  });
  if (facts.rootState.state === "missing") return empty(`build cache off: cache root ${facts.root} does not exist (SHIM_CACHE_DIR)`);
  if (facts.rootState.state === "unusable") return empty(`build cache off: ${facts.rootState.reason}`, `shim: build cache off: ${facts.rootState.reason}`);
  const path = facts.buildPath;
  if (!path.buildkit || !path.cacheFrom) return empty(`build cache off: ${path.whyNoCacheTo ?? "this compose has no cache_from"}`);

  const decision: ExportDecision = path.cacheTo
    ? exportDecision(facts.builder)
    : { export: false, why: path.whyNoCacheTo!, ...(facts.warnNoCacheTo ? { notice: `shim: ${path.whyNoCacheTo}; the shared build cache is only read` } : {}) };
  const perService = new Map<string, ServiceCache>();
  const exports: StagedExport[] = [];
  const importing: string[] = [];
  for (const [service, svc] of model.services) {
    if (!svc.build || !building.has(service)) continue;
    const key = sanitizeKeyPart(`${baseName}_${service}`);
    if (!isSafeKey(key)) {
      debug.push(`build cache: service ${service} gives no usable key; skipped`);
      continue;
    }
    const keyDir = posix.join(facts.root, key);
    const state = facts.keyDir(keyDir);
    const cacheFrom = state.hasIndex ? `type=local,src=${keyDir}` : undefined;
    let cacheTo: string | undefined;
    if (svc.build.cacheTo.length > 0) debug.push(`build cache: service ${service} has its own cache_to; not adding one`);
    else if (state.problem) notices.push(`shim: build cache is read-only for ${service}: ${state.problem}`);
    else if (decision.export) {
      const stagingId = facts.stagingId(service);
      const stagingDir = posix.join(keyDir, ".staging", stagingId);
      cacheTo = `type=local,dest=${stagingDir},mode=max`;
      exports.push({ service, key, keyDir, stagingId, stagingDir });
    }
    if (!cacheTo && cacheFrom) importing.push(keyDir);
    debug.push(`build cache: service ${service} → key "${key}"${cacheFrom ? ", importing" : ", nothing to import yet"}${cacheTo ? ", exporting" : ""}`);
    if (cacheFrom || cacheTo) perService.set(service, { ...(cacheFrom ? { cacheFrom } : {}), ...(cacheTo ? { cacheTo } : {}) });
  }
  if (!decision.export && [...building].some((s) => model.services.get(s)?.build)) {
    debug.push(`build cache: not exporting: ${decision.why}`);
    if (decision.notice) notices.push(decision.notice);
  }

  const childEnv: Record<string, string> = {};
  let ensureBuilder: CachePlan["ensureBuilder"];
  if (exports.length > 0 && decision.export && decision.setBuilder && facts.builder.buildkitHost) {
    childEnv.BUILDX_BUILDER = decision.setBuilder;
    ensureBuilder = { name: decision.setBuilder, endpoint: facts.builder.buildkitHost };
    debug.push(`build cache: BUILDX_BUILDER=${decision.setBuilder} (remote builder for BUILDKIT_HOST=${facts.builder.buildkitHost})`);
  }
  const rootUnderCwd = facts.root === facts.cwd || facts.root.startsWith(`${facts.cwd}/`);
  if (path.bake && perService.size > 0 && facts.bakeNeedsFsOff && !rootUnderCwd && env.BUILDX_BAKE_ENTITLEMENTS_FS === undefined) {
    childEnv.BUILDX_BAKE_ENTITLEMENTS_FS = "0";
    debug.push("build cache: BUILDX_BAKE_ENTITLEMENTS_FS=0 (this buildx refuses bake access to the cache root otherwise)");
  }
  return { perService, exports, importing, env: childEnv, ...(ensureBuilder ? { ensureBuilder } : {}), notices, debug };
}

export interface PlanInput {
  readonly argv: ComposeArgv;
  readonly location: ProjectLocation;
  readonly name: NameDecision;
  /** Set when the command creates containers or builds and `config` succeeded. */
  readonly model?: ProjectModel;
  /** Path mapping for bind sources (undefined: no mapping applies). */
  readonly translate?: TranslatePath;
  /** `run -v` values rewritten (already decided by the caller from the same mapping). */
  readonly runVolumes?: ReadonlyArray<{ option: ScannedOption; value: string }>;
  readonly cache?: CachePlan;
  /** Where the override will be written (a fresh private directory the effect creates). */
  readonly overrideFile: string;
}

export interface ComposePlan {
  readonly args: readonly string[];
  readonly override?: { readonly file: string; readonly doc: Record<string, unknown> };
  readonly debug: readonly string[];
}

/**
 * The real compose's argv: the user's tokens, with the shim's global options inserted right before the
 * subcommand — the files compose would have loaded on its own (adding `-f` switches its discovery off), then the
 * override, then `-p`.
 */
export function assemble(input: PlanInput): ComposePlan {
  const { argv, location, name } = input;
  const debug: string[] = [name.why];
  const override = input.model
    ? buildOverride({ model: input.model, translate: input.translate ?? (() => undefined), cache: input.cache?.perService ?? new Map() })
    : { changes: [] };
  debug.push(...override.changes);

  const inserted: string[] = [];
  if (override.doc) {
    if (location.fileSource !== "-f") {
      for (const file of location.files) inserted.push("-f", file);
      debug.push(`compose files (${location.fileSource}) passed explicitly: ${location.files.join(", ")}`);
    }
    inserted.push("-f", input.overrideFile);
  }
  if (name.insert) inserted.push("-p", name.insert);

  const tokens = input.runVolumes?.length ? rewriteValues(argv.tokens, input.runVolumes) : argv.tokens;
  const args = [...tokens.slice(0, argv.subcommandIndex), ...inserted, ...tokens.slice(argv.subcommandIndex)];
  return { args, ...(override.doc ? { override: { file: input.overrideFile, doc: override.doc } } : {}), debug };
}
