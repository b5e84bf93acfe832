// The shared build cache for compose (issue #4 item 6): which services a command builds, and the cache_from /
// cache_to entries, builder and environment each one gets. Pure.
import { posix } from "node:path";
import { isSafeKey, sanitizeKeyPart } from "../cache/key.ts";
import type { BuilderInfo, KeyDirState, RootState } from "../cache/plan.ts";
import type { ProjectModel } from "./model.ts";
import type { ServiceCache } from "./override.ts";
import type { BuildPath } from "./version.ts";

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
  /** Key dirs only imported from (prepared shared before the build, recorded as used after it). */
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
    // Imported even before the first export (buildx only warns that it is not there yet), like docker mode: what a
    // service gets does not depend on what another session did before.
    const cacheFrom = `type=local,src=${keyDir}`;
    let cacheTo: string | undefined;
    if (svc.build.cacheTo.length > 0) debug.push(`build cache: service ${service} has its own cache_to; not adding one`);
    else if (state.problem) notices.push(`shim: build cache is read-only for ${service}: ${state.problem}`);
    else if (decision.export) {
      const stagingId = facts.stagingId(service);
      const stagingDir = posix.join(keyDir, ".staging", stagingId);
      cacheTo = `type=local,dest=${stagingDir},mode=max`;
      exports.push({ service, key, keyDir, stagingId, stagingDir });
    }
    if (!cacheTo) importing.push(keyDir);
    debug.push(`build cache: service ${service} → key "${key}"${state.hasIndex ? "" : " (nothing to import yet)"}${cacheTo ? ", exporting" : ", import only"}`);
    perService.set(service, { cacheFrom, ...(cacheTo ? { cacheTo } : {}) });
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

