// `shim build [OPTIONS] PATH | URL | -` (and the direct `docker build` route) → BuildFlags. Pure: the
// environment is passed in. Option names, value grammars and defaults follow `docker buildx build`
// (util/buildflags in docker/buildx; research/compose-cli.md §5.3–5.4). Every option is either understood or
// refused with one clear error that points at buildx: nothing is silently dropped.
import { flagTable, scanOptions, type FlagTable, type ScannedOption } from "../../shim/argv.ts";
import { ShimError } from "../../shim/errors.ts";
import type { ProgressMode } from "../progress/display.ts";
import { CsvError, parseCsvFields, splitKeyValue } from "./csv.ts";

export const PROGRESS_MODES: readonly ProgressMode[] = ["auto", "tty", "plain", "rawjson", "quiet"];

/** One `-o/--output` (also what `--load` and `--push` stand for). `dest` is client-side only. */
export interface OutputSpec {
  type: string;
  attrs: Record<string, string>;
  dest?: string;
}

/** One `--cache-from` / `--cache-to` entry. */
export interface CacheSpec {
  type: string;
  attrs: Record<string, string>;
}

export type SecretSpec = { id: string; file: string } | { id: string; env: string };

export interface BuildFlags {
  /** The PATH | URL | `-` positional, as written. */
  context: string;
  /** `-f`: as written (relative to the cwd, or `-` for stdin); undefined means `<context>/Dockerfile`. */
  file?: string;
  buildArgs: Record<string, string>;
  target?: string;
  platforms: string[];
  labels: Record<string, string>;
  noCache: boolean;
  noCacheFilter: string[];
  pull: boolean;
  /** `--build-context name=value`, in order (last wins per name). */
  buildContexts: { name: string; value: string }[];
  secrets: SecretSpec[];
  cacheFrom: CacheSpec[];
  cacheTo: CacheSpec[];
  tags: string[];
  /** Outputs in order; `--load` and `--push` are already included as `type=docker` / `type=registry`. */
  outputs: OutputSpec[];
  iidfile?: string;
  metadataFile?: string;
  progress: ProgressMode;
  /** `-q`: print only the image id on stdout. */
  quiet: boolean;
  /** `--buildkit ADDR` (else BUILDKIT_HOST, default sockets, the Docker daemon). */
  buildkit?: string;
  tls: { caCert?: string; cert?: string; key?: string; dir?: string; serverName?: string };
  debug: boolean;
  /** `--network`: `default` is left out. */
  network?: string;
  addHosts: string[];
  /** `--allow` entitlements (plus `network.host` for `--network host`). */
  allow: string[];
  help: boolean;
}

/** `buildx`: `shim build`; `docker`: the classic `docker build` options of the direct route. */
export type FlagDialect = "buildx" | "docker";

const COMMON_VALUE_FLAGS = [
  "-f,--file=", "--build-arg=", "--target=", "--platform=", "--label=", "--build-context=", "--secret=",
  "--cache-from=", "--cache-to=", "-t,--tag=", "-o,--output=", "--iidfile=", "--metadata-file=", "--progress=",
  "--network=", "--add-host=", "--allow=", "--no-cache-filter=",
];
const COMMON_BOOL_FLAGS = ["--load", "--push", "--no-cache", "--pull", "-q,--quiet", "-h,--help"];
/** shim's own connection options (buildctl's names). */
const SHIM_FLAGS = ["--buildkit=", "--tlscacert=", "--tlscert=", "--tlskey=", "--tlsdir=", "--tlsservername=", "-D,--debug"];
/** Classic `docker build` switches that mean nothing to BuildKit (no intermediate containers, no content trust). */
const DOCKER_NOOP_FLAGS = ["--rm", "--force-rm", "--disable-content-trust"];

const TABLES: Record<FlagDialect, FlagTable> = {
  buildx: flagTable(...COMMON_VALUE_FLAGS, ...COMMON_BOOL_FLAGS, ...SHIM_FLAGS),
  docker: flagTable(...COMMON_VALUE_FLAGS, ...COMMON_BOOL_FLAGS, ...DOCKER_NOOP_FLAGS),
};

/**
 * Options buildx or docker know but this client does not implement; they take a value, so the error can name
 * them precisely. (Anything else unknown is reported the same way.)
 */
const KNOWN_ELSEWHERE = flagTable(
  "--annotation=", "--attest=", "--sbom=", "--provenance=", "--call=", "--cgroup-parent=", "--policy=", "--resource=",
  "--shm-size=", "--ssh=", "--ulimit=", "-m,--memory=", "--memory-swap=", "-c,--cpu-shares=", "--cpu-period=",
  "--cpu-quota=", "--cpuset-cpus=", "--cpuset-mems=", "--isolation=", "--security-opt=", "--print=", "--builder=",
  "--check", "--compress", "--squash", "--stream", "--detach",
);

function unsupported(flag: string, dialect: FlagDialect): ShimError {
  const known = KNOWN_ELSEWHERE.has(flag);
  const what = known ? `${flag} is not supported by shim's BuildKit client` : `unknown option ${flag}`;
  const fix = dialect === "docker" ? "install the buildx plugin to use it with docker build" : "use `docker buildx build` for it";
  return new ShimError(`${what}; ${fix}`);
}

type Env = Readonly<Record<string, string | undefined>>;

/** strconv.ParseBool, as pflag reads `--flag=value` for booleans. */
function parseBool(flag: string, value: string | undefined): boolean {
  if (value === undefined) return true;
  if (["1", "t", "T", "TRUE", "true", "True"].includes(value)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(value)) return false;
  throw new ShimError(`invalid value "${value}" for ${flag}: expected a boolean`);
}

function csv(flag: string, value: string): string[] {
  try {
    return parseCsvFields(value);
  } catch (err) {
    if (err instanceof CsvError) throw new ShimError(`invalid ${flag} value ${JSON.stringify(value)}: ${err.message}`);
    throw err;
  }
}

/** buildx ExportEntry.UnmarshalText: a bare path is a local export (`-` a tar on stdout); `registry` means a pushed image. */
export function parseOutput(value: string, flag = "--output"): OutputSpec {
  const fields = csv(flag, value);
  let spec: OutputSpec;
  if (fields.length === 1 && fields[0] === value && !value.startsWith("type=")) {
    spec = value === "-" ? { type: "tar", attrs: {}, dest: "-" } : { type: "local", attrs: {}, dest: value };
  } else {
    spec = { type: "", attrs: {} };
    for (const field of fields) {
      const [key, fieldValue] = splitKeyValue(field);
      if (fieldValue === undefined) throw new ShimError(`invalid ${flag} value ${JSON.stringify(value)}: ${JSON.stringify(field)} is not key=value`);
      if (key === "type") spec.type = fieldValue;
      else if (key === "dest") spec.dest = fieldValue;
      else spec.attrs[key] = fieldValue;
    }
  }
  if (!spec.type) throw new ShimError(`invalid ${flag} value ${JSON.stringify(value)}: type is required`);
  if (spec.type === "registry") {
    spec.type = "image";
    spec.attrs.push ??= "true";
  }
  return spec;
}

/** buildx ParseCacheEntry: values without `=` are registry refs (a comma list gives several); else CSV with `type`. */
export function parseCacheEntries(value: string, flag: string): CacheSpec[] {
  if (value === "") return [];
  if (!value.includes("=")) return csv(flag, value).map((ref) => ({ type: "registry", attrs: { ref } }));
  const spec: CacheSpec = { type: "", attrs: {} };
  for (const field of csv(flag, value)) {
    const [key, fieldValue] = splitKeyValue(field);
    if (fieldValue === undefined) throw new ShimError(`invalid ${flag} value ${JSON.stringify(value)}: ${JSON.stringify(field)} is not key=value`);
    if (key === "type") spec.type = fieldValue;
    else spec.attrs[key] = fieldValue;
  }
  if (!spec.type) throw new ShimError(`invalid ${flag} value ${JSON.stringify(value)}: type is required`);
  return [spec];
}

/** buildx Secret.UnmarshalText: `id=…,src=…` (or `source=`) / `env=…`, `type=file|env`. */
export function parseSecret(value: string, environment: Env = {}): SecretSpec {
  let id = "";
  let file = "";
  let env = "";
  let type = "";
  for (const field of csv("--secret", value)) {
    const [key, fieldValue] = splitKeyValue(field);
    if (fieldValue === undefined) throw new ShimError(`invalid --secret value ${JSON.stringify(value)}: ${JSON.stringify(field)} is not key=value`);
    switch (key) {
      case "type":
        if (fieldValue !== "file" && fieldValue !== "env") throw new ShimError(`--secret: unsupported secret type ${JSON.stringify(fieldValue)}`);
        type = fieldValue;
        break;
      case "id":
        id = fieldValue;
        break;
      case "src":
      case "source":
        file = fieldValue;
        break;
      case "env":
        env = fieldValue;
        break;
      default:
        throw new ShimError(`--secret: unexpected key ${JSON.stringify(key)} in ${JSON.stringify(value)}`);
    }
  }
  if (type === "env" && !env) {
    env = file;
    file = "";
  }
  if (!id) throw new ShimError(`--secret ${JSON.stringify(value)}: id is required`);
  if (env) return { id, env };
  if (file) return { id, file };
  // As BuildKit's secretsprovider: with neither src nor env, an environment variable named like the id, else a file.
  return environment[id] !== undefined ? { id, env: id } : { id, file: id };
}

/** `KEY=VALUE`; a bare `KEY` takes its value from the environment and is skipped when unset (as buildx does). */
function parseBuildArg(value: string, env: Env, into: Record<string, string>): void {
  const eq = value.indexOf("=");
  if (eq === -1) {
    const fromEnv = env[value];
    if (fromEnv !== undefined) into[value] = fromEnv;
    return;
  }
  into[value.slice(0, eq)] = value.slice(eq + 1);
}

function parseLabel(value: string, into: Record<string, string>): void {
  const eq = value.indexOf("=");
  if (eq === -1) into[value] = "";
  else into[value.slice(0, eq)] = value.slice(eq + 1);
}

function parseProgress(value: string): ProgressMode {
  if ((PROGRESS_MODES as readonly string[]).includes(value)) return value as ProgressMode;
  throw new ShimError(`invalid --progress value ${JSON.stringify(value)}: use ${PROGRESS_MODES.join(", ")}`);
}

function parseBuildContext(value: string): { name: string; value: string } {
  const eq = value.indexOf("=");
  if (eq <= 0 || eq === value.length - 1) throw new ShimError(`invalid --build-context ${JSON.stringify(value)}: expected name=value`);
  return { name: value.slice(0, eq), value: value.slice(eq + 1) };
}

/** cobra's default: options and positionals mix; `--` ends the options. */
function scan(args: readonly string[], table: FlagTable, dialect: FlagDialect): { options: ScannedOption[]; positionals: string[] } {
  const options: ScannedOption[] = [];
  const positionals: string[] = [];
  let i = 0;
  while (i < args.length) {
    const result = scanOptions(args, table, i);
    options.push(...result.options);
    if (result.missingValue) throw new ShimError(`option ${result.missingValue} needs a value`);
    if (result.unknownFlag) throw unsupported(result.unknownFlag, dialect);
    if (result.terminator !== undefined) {
      positionals.push(...args.slice(result.positional));
      break;
    }
    if (result.positional >= args.length) break;
    positionals.push(args[result.positional]!);
    i = result.positional + 1;
  }
  return { options, positionals };
}

/** Parses the build options (everything after `build`). Throws ShimError for anything it cannot honour. */
export function parseBuildFlags(args: readonly string[], env: Env, dialect: FlagDialect = "buildx"): BuildFlags {
  const { options, positionals } = scan(args, TABLES[dialect], dialect);
  const flags: BuildFlags = {
    context: "",
    buildArgs: {},
    platforms: [],
    labels: {},
    noCache: false,
    noCacheFilter: [],
    pull: false,
    buildContexts: [],
    secrets: [],
    cacheFrom: [],
    cacheTo: [],
    tags: [],
    outputs: [],
    progress: parseProgress(env.BUILDKIT_PROGRESS || "auto"),
    quiet: false,
    tls: {},
    debug: false,
    addHosts: [],
    allow: [],
    help: false,
  };
  let load = false;
  let push = false;
  const platformValues: string[] = [];
  for (const option of options) {
    const value = option.value ?? "";
    switch (option.name) {
      case "file":
        flags.file = value;
        break;
      case "build-arg":
        parseBuildArg(value, env, flags.buildArgs);
        break;
      case "target":
        flags.target = value;
        break;
      case "platform":
        platformValues.push(value);
        break;
      case "label":
        parseLabel(value, flags.labels);
        break;
      case "build-context":
        flags.buildContexts.push(parseBuildContext(value));
        break;
      case "secret":
        flags.secrets.push(parseSecret(value, env));
        break;
      case "cache-from":
        flags.cacheFrom.push(...parseCacheEntries(value, "--cache-from"));
        break;
      case "cache-to":
        flags.cacheTo.push(...parseCacheEntries(value, "--cache-to"));
        break;
      case "tag":
        if (value === "") throw new ShimError("invalid tag: empty");
        flags.tags.push(value);
        break;
      case "output":
        if (value !== "") flags.outputs.push(parseOutput(value));
        break;
      case "iidfile":
        flags.iidfile = value || undefined;
        break;
      case "metadata-file":
        flags.metadataFile = value || undefined;
        break;
      case "progress":
        flags.progress = parseProgress(value);
        break;
      case "network":
        flags.network = value === "default" || value === "" ? undefined : value;
        break;
      case "add-host":
        flags.addHosts.push(value);
        break;
      case "allow":
        for (const entitlement of csv("--allow", value)) if (entitlement) flags.allow.push(entitlement);
        break;
      case "no-cache-filter":
        for (const stage of csv("--no-cache-filter", value)) if (stage) flags.noCacheFilter.push(stage);
        break;
      case "buildkit":
        flags.buildkit = value;
        break;
      case "tlscacert":
        flags.tls.caCert = value;
        break;
      case "tlscert":
        flags.tls.cert = value;
        break;
      case "tlskey":
        flags.tls.key = value;
        break;
      case "tlsdir":
        flags.tls.dir = value;
        break;
      case "tlsservername":
        flags.tls.serverName = value;
        break;
      case "load":
        load = parseBool(option.flag, option.value);
        break;
      case "push":
        push = parseBool(option.flag, option.value);
        break;
      case "no-cache":
        flags.noCache = parseBool(option.flag, option.value);
        break;
      case "pull":
        flags.pull = parseBool(option.flag, option.value);
        break;
      case "quiet":
        flags.quiet = parseBool(option.flag, option.value);
        break;
      case "debug":
        flags.debug = parseBool(option.flag, option.value);
        break;
      case "help":
        flags.help = parseBool(option.flag, option.value);
        break;
      case "rm":
      case "force-rm":
      case "disable-content-trust":
        parseBool(option.flag, option.value); // validated, and without effect under BuildKit (as in docker)
        break;
      default:
        throw unsupported(option.flag, dialect);
    }
  }
  if (flags.help) return flags;

  for (const value of platformValues.length > 0 ? platformValues : env.DOCKER_DEFAULT_PLATFORM ? [env.DOCKER_DEFAULT_PLATFORM] : []) {
    for (const platform of csv("--platform", value)) if (platform) flags.platforms.push(platform);
  }
  if (flags.network === "host" && !flags.allow.includes("network.host")) flags.allow.push("network.host");
  if (flags.quiet) flags.progress = "quiet";
  // buildx: --load is `--output type=docker`, --push is `--output type=registry`.
  if (load) flags.outputs.push({ type: "docker", attrs: {} });
  if (push) flags.outputs.push({ type: "image", attrs: { push: "true" } });

  if (positionals.length !== 1) {
    throw new ShimError(
      positionals.length === 0
        ? `build requires exactly one argument: the context (PATH, URL or -)`
        : `build requires exactly one context argument, got ${positionals.length}: ${positionals.join(" ")}`,
    );
  }
  flags.context = positionals[0]!;
  if (flags.context === "-" && flags.file === "-") throw new ShimError("cannot read both the context and the Dockerfile (-f -) from stdin");
  return flags;
}

export const BUILD_USAGE = `Usage: shim build [OPTIONS] PATH | -

Build an image with the embedded BuildKit client (the options are docker buildx build's).

Options:
  -f, --file PATH             Dockerfile (default PATH/Dockerfile; - reads it from stdin)
      --build-arg KEY=VALUE   Build-time variable (KEY alone takes it from the environment)
      --build-context N=PATH  Additional named context (a directory, or docker-image://, …)
      --target STAGE          Build this stage
      --platform LIST         Target platforms
      --label KEY=VALUE       Image label
      --no-cache              Do not use the cache;  --no-cache-filter STAGE  only for these stages
      --pull                  Always pull base images
      --secret id=ID,src=PATH|env=VAR   Secret for RUN --mount=type=secret
      --network MODE          RUN network (default, none, host)
      --add-host HOST:IP      Extra /etc/hosts entry
      --allow ENTITLEMENT     network.host, security.insecure
      --cache-from SPEC       type=local,src=DIR | type=registry,ref=REF | REF
      --cache-to SPEC         type=local,dest=DIR[,mode=max] | type=registry,ref=REF | type=inline
  -t, --tag NAME              Image name (repeatable)
      --load                  Load the image into the Docker daemon
      --push                  Push the image (-o type=image,push=true,registry.insecure=true for an http registry)
  -o, --output SPEC           type=local|tar|oci|docker|image|registry[,dest=PATH][,…]; a bare PATH means local
      --iidfile FILE          Write the image id to FILE
      --metadata-file FILE    Write the build result metadata (buildx keys) to FILE
      --progress MODE         auto, tty, plain, rawjson, quiet (default auto; env BUILDKIT_PROGRESS)
  -q, --quiet                 Print only the image id
      --buildkit ADDR         BuildKit address: unix://…, tcp://…, docker-container://NAME, docker
                              (default BUILDKIT_HOST, the default sockets, then the Docker daemon)
      --tlscacert/--tlscert/--tlskey FILE, --tlsdir DIR, --tlsservername NAME   TLS for tcp://
  -D, --debug                 Explain connection and session details on stderr
`;
