// BuildFlags → BuildPlan (before connecting) and BuildPlan + daemon facts → the exporters (after connecting).
// Pure: the working directory, environment and terminal facts come in as data; golden vectors in
// test/unit/build/plan.test.ts. What buildx does is the reference (build/opt.go, commands/build.go).
import { basename, dirname, isAbsolute, resolve } from "node:path";
import semver from "semver";
import { ShimError } from "../../shim/errors.ts";
import type { SecretSource } from "../session/secrets.ts";
import type { BuildRequestOptions } from "../solve/request.ts";
import type { ProgressMode } from "../progress/display.ts";
import type { BuildFlags, CacheSpec, OutputSpec } from "./flags.ts";

type Env = Readonly<Record<string, string | undefined>>;

export interface PlanFacts {
  cwd: string;
  env: Env;
  /** `dest=-` would write a tarball into the terminal: refused, as buildx does. */
  stdoutIsTty: boolean;
  /** With no output option, load into the Docker daemon (the direct `docker build` route); otherwise warn. */
  loadByDefault: boolean;
}

export interface BuildPlan {
  /** FileSync directories: local name → absolute path. Without `dockerfile` when it comes from stdin. */
  locals: Record<string, string>;
  /** The Dockerfile is read from stdin (`-f -`, or `-` as the context) into a temporary `dockerfile` local. */
  dockerfileFromStdin: boolean;
  /** `-` as the context: there is no context directory (an empty one is served). */
  emptyContext: boolean;
  /** The absolute context directory, for the session's shared key; undefined for a remote context. */
  contextDir?: string;
  /** Dockerfile path for error messages (`-` for stdin). */
  dockerfileDisplay: string;
  /** Frontend options; exports and cache are added once the daemon is known. */
  request: BuildRequestOptions;
  secrets: Record<string, SecretSource>;
  cacheImports: CacheSpec[];
  cacheExports: CacheSpec[];
  /** Outputs with tags applied as `name` and destinations made absolute (`-` kept). */
  outputs: OutputSpec[];
  /** No output was asked for: load into the daemon (loadByDefault), or keep the result in BuildKit's cache. */
  defaultOutput: "load" | "none" | undefined;
  tags: string[];
  iidfile?: string;
  metadataFile?: string;
  progress: ProgressMode;
  quiet: boolean;
  connect: { address?: string; tls: BuildFlags["tls"] };
  debug: boolean;
}

/** A context the frontend fetches itself (buildx `isRemoteURL`): git or http(s) URLs. */
export function isRemoteContext(context: string): boolean {
  return /^(https?|git|ssh):\/\//.test(context) || context.startsWith("git@") || /^github\.com\//.test(context);
}

/** Forms of `--build-context` values the frontend resolves itself (buildx passes them through). */
function isPassThroughContext(value: string): boolean {
  return isRemoteContext(value) || value.startsWith("docker-image://") || value.startsWith("target:");
}

export function planBuild(flags: BuildFlags, facts: PlanFacts): BuildPlan {
  const abs = (path: string) => (isAbsolute(path) ? path : resolve(facts.cwd, path));
  const locals: Record<string, string> = {};
  const frontendAttrs: Record<string, string> = {};
  let dockerfileFromStdin = flags.file === "-";
  let emptyContext = false;
  let contextDir: string | undefined;
  let filename: string | undefined;
  let dockerfileDisplay: string;

  if (flags.context === "-") {
    // buildx: `-` is a Dockerfile on stdin (a tarball context on stdin is not supported here).
    dockerfileFromStdin = true;
    emptyContext = true;
    dockerfileDisplay = "-";
  } else if (isRemoteContext(flags.context)) {
    frontendAttrs.context = flags.context;
    if (flags.file && flags.file !== "-") filename = flags.file;
    dockerfileDisplay = flags.file ?? `${flags.context} (Dockerfile)`;
  } else {
    contextDir = abs(flags.context);
    locals.context = contextDir;
    dockerfileDisplay = flags.file && flags.file !== "-" ? abs(flags.file) : resolve(contextDir, "Dockerfile");
  }
  if (!dockerfileFromStdin && !isRemoteContext(flags.context)) {
    locals.dockerfile = dirname(dockerfileDisplay);
    filename = basename(dockerfileDisplay);
  }
  if (dockerfileFromStdin) filename = "Dockerfile";

  for (const { name, value } of flags.buildContexts) {
    if (!/^[a-z0-9][a-z0-9._/:@-]*$/.test(name)) throw new ShimError(`invalid --build-context name ${JSON.stringify(name)}`);
    frontendAttrs["frontend.caps"] = "moby.buildkit.frontend.contexts+forward";
    if (isPassThroughContext(value)) {
      frontendAttrs[`context:${name}`] = value;
      continue;
    }
    if (value.startsWith("oci-layout://")) throw new ShimError(`--build-context ${name}=oci-layout://… is not supported by shim's BuildKit client; use docker buildx build`);
    // Named locals must not collide with the two the frontend always asks for.
    const localName = name === "context" || name === "dockerfile" ? `_${name}` : name;
    locals[localName] = abs(value);
    frontendAttrs[`context:${name}`] = `local:${localName}`;
  }

  const secrets: Record<string, SecretSource> = {};
  for (const secret of flags.secrets) secrets[secret.id] = "env" in secret ? { env: secret.env } : { file: abs(secret.file) };

  const cacheImports = flags.cacheFrom.map((entry) => planCacheEntry(entry, "--cache-from", abs));
  const cacheExports = flags.cacheTo.map((entry) => planCacheEntry(entry, "--cache-to", abs));

  const outputs = flags.outputs
    .filter((o) => o.type !== "cacheonly")
    .map((o) => planOutput(o, flags.tags, facts, abs));
  const defaultOutput = flags.outputs.length > 0 ? undefined : facts.loadByDefault ? "load" : "none";

  const request: BuildRequestOptions = {
    ...(filename ? { filename } : {}),
    ...(flags.target ? { target: flags.target } : {}),
    buildArgs: flags.buildArgs,
    labels: flags.labels,
    platforms: flags.platforms,
    noCache: flags.noCache ? true : flags.noCacheFilter,
    pull: flags.pull,
    ...(flags.network ? { network: flags.network } : {}),
    addHosts: flags.addHosts,
    entitlements: flags.allow,
    frontendAttrs,
  };

  return {
    locals,
    dockerfileFromStdin,
    emptyContext,
    ...(contextDir ? { contextDir } : {}),
    dockerfileDisplay,
    request,
    secrets,
    cacheImports,
    cacheExports,
    outputs,
    defaultOutput,
    tags: flags.tags,
    ...(flags.iidfile ? { iidfile: abs(flags.iidfile) } : {}),
    ...(flags.metadataFile ? { metadataFile: abs(flags.metadataFile) } : {}),
    progress: flags.progress,
    quiet: flags.quiet,
    connect: { ...(flags.buildkit ? { address: flags.buildkit } : {}), tls: flags.tls },
    debug: flags.debug,
  };
}

function planCacheEntry(entry: CacheSpec, flag: string, abs: (path: string) => string): CacheSpec {
  const attrs = { ...entry.attrs };
  if (entry.type === "local") {
    const key = flag === "--cache-from" ? "src" : "dest";
    if (!attrs[key]) throw new ShimError(`${flag} type=local needs ${key}=DIR`);
    attrs[key] = abs(attrs[key]!);
  }
  if (entry.type === "registry" && !attrs.ref) throw new ShimError(`${flag} type=registry needs ref=NAME`);
  return { type: entry.type, attrs };
}

function planOutput(output: OutputSpec, tags: readonly string[], facts: PlanFacts, abs: (path: string) => string): OutputSpec {
  const attrs = { ...output.attrs };
  if (["image", "docker", "oci"].includes(output.type) && !attrs.name && tags.length > 0) attrs.name = tags.join(",");
  const planned: OutputSpec = { type: output.type, attrs };
  if (output.dest !== undefined) planned.dest = output.dest === "-" ? "-" : abs(output.dest);
  switch (output.type) {
    case "local":
      if (!planned.dest || planned.dest === "-") throw new ShimError("--output type=local needs dest=DIR");
      break;
    case "tar":
    case "oci":
      if (!planned.dest) throw new ShimError(`--output type=${output.type} needs dest=FILE (or dest=- for stdout)`);
      break;
    case "image":
      if (isTrue(attrs.push) && !attrs.name) throw new ShimError("a tag is needed when pushing to a registry: add -t NAME");
      break;
  }
  if (planned.dest === "-" && facts.stdoutIsTty) {
    throw new ShimError(`refusing to write the ${output.type} output to the terminal: redirect stdout or give dest=FILE`);
  }
  return planned;
}

export function isTrue(value: string | undefined): boolean {
  return value !== undefined && ["1", "t", "T", "true", "TRUE", "True"].includes(value);
}

// ---------------------------------------------------------------------------------------------------------------
// After connecting: which exporters to send, and where each one's result goes.

export interface DaemonFacts {
  via: "buildkitd" | "docker";
  /** e.g. "v0.32.2", or "unknown (≤ v0.10)". */
  version: string;
}

/** Where an exporter's result goes on this side of the session. */
export type ExportDestination =
  | { kind: "file"; path: string }
  | { kind: "stdout" }
  /** The tarball is streamed into the Docker daemon's `POST /images/load`. */
  | { kind: "docker-load" }
  | { kind: "directory"; path: string }
  /** Nothing comes back through the session (the image lands in the daemon, a registry or BuildKit's store). */
  | { kind: "none" };

export interface PlannedExport {
  /** Sent to the daemon (without client-side attributes such as `dest`). */
  type: string;
  attrs: Record<string, string>;
  destination: ExportDestination;
  /** Names to push through the Docker daemon afterwards (dockerd's `moby` exporter cannot push). */
  pushThroughDaemon?: string[];
}

/** Exporter list support: BuildKit v0.13 added SolveRequest.Exporters; older daemons read one exporter. */
export function supportsMultipleExports(version: string): boolean {
  const parsed = semver.coerce(version);
  return parsed !== null && !version.startsWith("unknown") && semver.gte(parsed, "0.13.0");
}

export function planExports(plan: BuildPlan, daemon: DaemonFacts): { exports: PlannedExport[]; notices: string[] } {
  const notices: string[] = [];
  const outputs: OutputSpec[] = [...plan.outputs];
  if (plan.defaultOutput !== undefined) {
    // buildx's docker driver loads by default; so does `docker build`.
    if (daemon.via === "docker" || plan.defaultOutput === "load") {
      outputs.push({ type: "docker", attrs: plan.tags.length > 0 ? { name: plan.tags.join(",") } : {} });
    } else {
      notices.push("shim: no output specified: the result stays in BuildKit's cache only; use --load, --push or -o to get it out");
    }
  }
  const exports = outputs.map((output) => planExport(output, daemon));
  if (exports.length > 1 && !supportsMultipleExports(daemon.version)) {
    throw new ShimError(
      `BuildKit ${daemon.version} takes one output per build, but ${exports.length} were given (${exports.map((e) => e.type).join(", ")}); ` +
        "several outputs need BuildKit v0.13 or later",
    );
  }
  return { exports, notices };
}

function planExport(output: OutputSpec, daemon: DaemonFacts): PlannedExport {
  const attrs = { ...output.attrs };
  const dest = output.dest;
  const toClient = (): ExportDestination => (dest === "-" ? { kind: "stdout" } : { kind: "file", path: dest! });
  switch (output.type) {
    case "local":
      return { type: "local", attrs, destination: { kind: "directory", path: dest! } };
    case "tar":
    case "oci":
      return { type: output.type, attrs, destination: toClient() };
    case "docker":
      if (dest !== undefined) return { type: "docker", attrs, destination: toClient() };
      // Into the daemon: dockerd's own BuildKit stores the image itself (moby exporter); a standalone
      // buildkitd streams a docker-format tarball that we feed to `POST /images/load`.
      if (daemon.via === "docker") return { type: "moby", attrs: mobyAttrs(attrs), destination: { kind: "none" } };
      return { type: "docker", attrs, destination: { kind: "docker-load" } };
    case "image":
      if (daemon.via === "docker") {
        const push = isTrue(attrs.push);
        const names = (attrs.name ?? "").split(",").filter(Boolean);
        return {
          type: "moby",
          attrs: mobyAttrs(attrs),
          destination: { kind: "none" },
          ...(push ? { pushThroughDaemon: names } : {}),
        };
      }
      return { type: "image", attrs, destination: { kind: "none" } };
    default:
      return { type: output.type, attrs, destination: dest === undefined ? { kind: "none" } : toClient() };
  }
}

/** dockerd's moby exporter knows `name` (and ignores push/registry attributes it cannot honour). */
function mobyAttrs(attrs: Record<string, string>): Record<string, string> {
  return attrs.name ? { name: attrs.name } : {};
}
