// The build-cache planner (issue #3 items 1–5): given a recognised build command and facts gathered elsewhere,
// decide the extra arguments. Pure: every fact comes in as data or an injected lookup.
import { posix } from "node:path";
import type { BuildCommand } from "./build-argv.ts";
import { deriveCacheKey } from "./key.ts";
import { composeV1CacheKey } from "../compose/v1-cache-keys.ts";

export const DEFAULT_CACHE_ROOT = "/buildkit-cache";
export const DEFAULT_SHIM_BUILDER = "shim";

/** What `docker buildx inspect` said about a builder. */
export interface BuilderInfo {
  readonly name: string;
  readonly driver: string;
  readonly canExport: boolean;
  /** Endpoint of the first node. */
  readonly endpoint?: string;
}

export type RootState = { state: "ok" } | { state: "missing" } | { state: "unusable"; reason: string };

/** A key directory as seen from this process. `problem` is set when we could import but not export there. */
export interface KeyDirState {
  readonly hasIndex: boolean;
  readonly problem?: string;
}

export interface RoutingFacts {
  /** Client version of the real CLI (`docker --version`), e.g. "20.10.24+dfsg1". */
  readonly cliVersion?: string;
  /** config.json has `"aliases": {"builder": "buildx"}` (`docker buildx install`). */
  readonly builderAlias: boolean;
  /** The docker context the command uses (its name is the name of its docker-driver builder). */
  readonly dockerContext: string;
}

export interface BuildCacheFacts extends RoutingFacts {
  readonly cacheRoot: string;
  readonly root: RootState;
  readonly buildxInstalled: boolean;
  /** The effective builder (see `routeBuild`); undefined when it could not be inspected. */
  readonly builder?: BuilderInfo;
  readonly buildkitHost?: string;
  readonly shimBuilderName: string;
  /** Set when creating the shim's remote builder failed; the plan then falls back to import only. */
  readonly shimBuilderFailure?: string;
  readonly cwd: string;
  /** A fresh name for this build's staging directory. */
  readonly stagingId: string;
  readonly keyDir: (dir: string) => KeyDirState;
}

export type Env = Readonly<Record<string, string | undefined>>;

export interface Routing {
  /** Replace the form by `buildx build` because the real CLI would not send it to buildx. */
  readonly rewriteToBuildx: boolean;
  /** The builder buildx will use; undefined means buildx's current builder (`docker buildx use`). */
  readonly builderName?: string;
  /** Whether the user chose the builder (`--builder`, BUILDX_BUILDER): then the shim does not replace it. */
  readonly userChoseBuilder: boolean;
  readonly why: string;
}

export interface BuildCachePlan {
  readonly args: readonly string[];
  readonly notices: readonly string[];
  readonly debug: readonly string[];
  /** Present when the plan imports from and/or exports into a key directory. */
  readonly cache?: {
    readonly key: string;
    readonly keyDir: string;
    readonly importing: boolean;
    /** The private staging dir the build exports into; merged by the executor after success. */
    readonly stagingDir?: string;
  };
  /** The remote builder that must exist before the build runs. */
  readonly ensureBuilder?: { readonly name: string; readonly endpoint: string };
  /** No buildx to add flags for: the build goes through the shim's BuildKit client (src/buildkit/build/direct.ts). */
  readonly direct?: boolean;
}

export function cliMajor(version: string | undefined): number | undefined {
  const m = /^v?(\d+)\./.exec(version ?? "");
  return m ? Number(m[1]) : undefined;
}

/** strconv.ParseBool's false spellings: DOCKER_BUILDKIT=0 asks for the legacy builder. */
function buildkitDisabled(env: Env): boolean {
  return ["0", "f", "F", "false", "FALSE", "False"].includes(env.DOCKER_BUILDKIT ?? "");
}

/**
 * Where the build goes (compose-cli.md §5.2). Docker ≥ 23 sends `build`, `image build` and `builder build` to
 * `buildx build` with BUILDX_BUILDER=<context> (its docker-driver builder, ignoring `buildx use`) unless
 * `--builder`, BUILDX_BUILDER or the `builder` alias says otherwise. Older CLIs do not route to buildx at all,
 * so the shim rewrites the form itself; buildx then uses its current builder.
 */
export function routeBuild(cmd: BuildCommand, env: Env, facts: RoutingFacts): Routing {
  const major = cliMajor(facts.cliVersion);
  const cliRoutes = cmd.form === "buildx build" || (major !== undefined && major >= 23);
  const rewriteToBuildx = !cliRoutes;
  const versionText = facts.cliVersion ? `docker CLI ${facts.cliVersion}` : "docker CLI of unknown version";
  const how =
    cmd.form === "buildx build"
      ? "buildx build"
      : rewriteToBuildx
        ? `${versionText} does not send \`${cmd.form}\` to buildx; the shim runs \`buildx build\``
        : `${versionText} sends \`${cmd.form}\` to buildx`;
  if (cmd.builderFlag !== undefined) {
    return { rewriteToBuildx, builderName: cmd.builderFlag, userChoseBuilder: true, why: `${how}; builder "${cmd.builderFlag}" from --builder` };
  }
  if (env.BUILDX_BUILDER) {
    return { rewriteToBuildx, builderName: env.BUILDX_BUILDER, userChoseBuilder: true, why: `${how}; builder "${env.BUILDX_BUILDER}" from BUILDX_BUILDER` };
  }
  if (cmd.form !== "buildx build" && !rewriteToBuildx && !facts.builderAlias) {
    return { rewriteToBuildx, builderName: facts.dockerContext, userChoseBuilder: false, why: `${how}; builder "${facts.dockerContext}" (the docker context's builder)` };
  }
  return { rewriteToBuildx, userChoseBuilder: false, why: `${how}; buildx's current builder` };
}

function passthrough(cmd: BuildCommand, debug: string[], notices: string[] = []): BuildCachePlan {
  return { args: cmd.argv, notices, debug };
}

function describeBuilder(b: BuilderInfo): string {
  return `builder "${b.name}" (${b.driver} driver)`;
}

/** The facts that decide whether the cache applies at all; cheap to gather (a few stats). */
export type GateFacts = Pick<BuildCacheFacts, "cacheRoot" | "root" | "buildxInstalled">;

/** A passthrough plan when the cache does not apply to this build; undefined when it does. */
export function cacheGate(cmd: BuildCommand, env: Env, facts: GateFacts): BuildCachePlan | undefined {
  const debug = [`build cache: \`${cmd.form}\` recognised`];
  if (cmd.help) return passthrough(cmd, [...debug, "build cache: --help given; nothing to do"]);
  if (facts.root.state === "missing") {
    return passthrough(cmd, [...debug, `build cache off: cache root ${facts.cacheRoot} does not exist (SHIM_CACHE_DIR)`]);
  }
  if (facts.root.state === "unusable") {
    const line = `build cache off: ${facts.root.reason}`;
    return passthrough(cmd, [...debug, line], [`shim: ${line}`]);
  }
  if (cmd.form !== "buildx build" && buildkitDisabled(env)) {
    return passthrough(cmd, [...debug, "build cache off: DOCKER_BUILDKIT=0 selects the legacy builder, which has no BuildKit cache"]);
  }
  if (!facts.buildxInstalled) {
    if (cmd.form === "buildx build") return passthrough(cmd, [...debug, "build cache off: the buildx plugin is not installed"]);
    return { ...passthrough(cmd, [...debug, "build cache: the buildx plugin is not installed; the shim's own BuildKit client builds"]), direct: true };
  }
  if (cmd.userCacheFrom && cmd.userCacheTo) {
    return passthrough(cmd, [...debug, "build cache: --cache-from and --cache-to both given by the user; nothing to add"]);
  }
  return undefined;
}

export function planBuildCache(cmd: BuildCommand, env: Env, facts: BuildCacheFacts): BuildCachePlan {
  const gated = cacheGate(cmd, env, facts);
  if (gated) return gated;
  const debug: string[] = [`build cache: \`${cmd.form}\` recognised`];
  const notices: string[] = [];

  // Issue #4: compose v1 tags its builds `<project>_<service>` with the session's project name; compose mode names the
  // session-independent key for that tag (SHIM_COMPOSE_CACHE_KEYS) so sessions share it.
  const composeKey = composeV1CacheKey(cmd.tag, env);
  const derived = composeKey
    ? { key: composeKey, reason: `compose v1 service image ${JSON.stringify(cmd.tag)} (SHIM_COMPOSE_CACHE_KEYS)` }
    : deriveCacheKey({ tag: cmd.tag, context: cmd.context, cwd: facts.cwd });
  if (!derived) return passthrough(cmd, [...debug, "build cache: no tag and no context argument; leaving the CLI to report it"]);
  for (const flag of cmd.unknownFlags) debug.push(`build cache: unknown option ${flag} (taken as a switch)`);
  const keyDir = posix.join(facts.cacheRoot, derived.key);
  debug.push(`build cache: key "${derived.key}" ${derived.reason} → ${keyDir}`);

  const routing = routeBuild(cmd, env, facts);
  debug.push(`build cache: ${routing.why}`);
  const builder = facts.builder;
  if (builder) debug.push(`build cache: ${describeBuilder(builder)} ${builder.canExport ? "can" : "cannot"} export cache`);
  else debug.push("build cache: could not inspect the builder; assuming it cannot export cache");

  const keyState = facts.keyDir(keyDir);
  const wantExport = !cmd.userCacheTo;
  let exporting = false;
  let useShimBuilder = false;
  if (wantExport) {
    if (keyState.problem) {
      notices.push(`shim: build cache is read-only here: ${keyState.problem}`);
    } else if (builder?.canExport) {
      exporting = true;
    } else if (facts.buildkitHost && !routing.userChoseBuilder && !facts.shimBuilderFailure) {
      exporting = true;
      useShimBuilder = true;
      debug.push(`build cache: using remote builder "${facts.shimBuilderName}" for BUILDKIT_HOST=${facts.buildkitHost}`);
    } else {
      const who = builder ? describeBuilder(builder) : `builder "${routing.builderName ?? "current"}"`;
      const fix = facts.shimBuilderFailure
        ? `creating builder "${facts.shimBuilderName}" for BUILDKIT_HOST failed: ${facts.shimBuilderFailure}`
        : routing.userChoseBuilder
          ? "choose a docker-container or remote builder to save it"
          : "set BUILDKIT_HOST or use a docker-container builder to save it";
      notices.push(`shim: build cache is read-only here (${who} cannot export cache); ${fix}`);
    }
  } else {
    debug.push("build cache: --cache-to given by the user; not adding one");
  }

  // Imported even before the first export: buildx then only warns "local cache import … not found", and the
  // flag the user sees does not depend on what another session did before.
  const importing = !cmd.userCacheFrom;
  if (cmd.userCacheFrom) debug.push("build cache: --cache-from given by the user; not adding one");
  else if (!keyState.hasIndex) debug.push(`build cache: nothing to import yet (${keyDir}/index.json absent)`);

  const stagingDir = exporting ? posix.join(keyDir, ".staging", facts.stagingId) : undefined;
  const added: string[] = [];
  if (useShimBuilder) {
    added.push("--builder", facts.shimBuilderName);
    if (!cmd.hasOutput) added.push("--load");
  }
  if (importing) added.push("--cache-from", `type=local,src=${keyDir}`);
  // image-manifest=false: the index layout every BuildKit can import. BuildKit ≥ 0.21 defaults to an image
  // manifest, which the BuildKit v0.8 inside Docker 20.10 reads but silently cannot use (measured on the test bed).
  if (stagingDir) added.push("--cache-to", `type=local,dest=${stagingDir},mode=max,image-manifest=false`);

  if (added.length === 0) {
    return { args: cmd.argv, notices, debug: [...debug, "build cache: nothing to add"] };
  }
  const argv = cmd.argv;
  const head = routing.rewriteToBuildx ? [...argv.slice(0, cmd.formIndex), "buildx", "build"] : argv.slice(0, cmd.subcommandIndex + 1);
  const args = [...head, ...added, ...argv.slice(cmd.subcommandIndex + 1)];
  return {
    args,
    notices,
    debug,
    cache: { key: derived.key, keyDir, importing, ...(stagingDir ? { stagingDir } : {}) },
    ...(useShimBuilder && facts.buildkitHost ? { ensureBuilder: { name: facts.shimBuilderName, endpoint: facts.buildkitHost } } : {}),
  };
}
