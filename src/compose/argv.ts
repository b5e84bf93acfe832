// The compose command line: where compose's own arguments start (after `[docker globals] compose` when the Docker
// CLI runs the plugin), its global options, the subcommand, and the few subcommand options the shim acts on.
// Pure. The flag tables are the union over Compose v1.29, v2.x and v5.x (compose-cli.md §4); only arity matters.
import { flagTable, parseDockerArgv, scanOptions, type FlagTable, type ScannedOption } from "../shim/argv.ts";

/** Global options: compose v2/v5 root flags, v1's docopt globals, and the v1-style flags v2 standalone converts. */
export const COMPOSE_GLOBAL_FLAGS: FlagTable = flagTable(
  "-f,--file=", "-p,--project-name=", "--project-directory=", "--env-file=", "--profile=", "--progress=", "--ansi=",
  "--parallel=", "--workdir=", "--insecure-registry=", "-c,--context=", "-H,--host=", "--log-level=", "--tlscacert=",
  "--tlscert=", "--tlskey=",
  "--compatibility", "--all-resources", "--dry-run", "--no-ansi", "--verbose", "-v,--version", "-h,--help",
  "-D,--debug", "--tls", "--tlsverify", "--skip-hostname-check",
);

const COMMON = ["--dry-run", "-h,--help"];

/** Options of the subcommands the shim reads (cmd/compose/{up,create,build,run}.go; v1 docopt). */
export const SUBCOMMAND_FLAGS: Readonly<Record<string, FlagTable>> = {
  up: flagTable(
    ...COMMON, "-d,--detach", "--build", "--no-build", "--pull=", "--remove-orphans", "--scale=", "--no-color",
    "--no-log-prefix", "--force-recreate", "--no-recreate", "--no-start", "--abort-on-container-exit",
    "--abort-on-container-failure", "--exit-code-from=", "-t,--timeout=", "--timestamps", "--no-deps",
    "--always-recreate-deps", "-V,--renew-anon-volumes", "--quiet-pull", "--quiet-build", "--attach=", "--no-attach=",
    "--attach-dependencies", "--wait", "--wait-timeout=", "-w,--watch", "--menu", "-y,--yes", "--y",
  ),
  create: flagTable(
    ...COMMON, "--build", "--no-build", "--pull=", "--quiet-pull", "--force-recreate", "--no-recreate",
    "--remove-orphans", "--scale=", "-y,--yes", "--y",
  ),
  build: flagTable(
    ...COMMON, "--push", "-q,--quiet", "--pull", "--build-arg=", "--ssh=", "--builder=", "--with-dependencies",
    "--provenance=", "--sbom=", "--parallel", "--compress", "--force-rm", "--no-cache", "--no-rm", "-m,--memory=",
    "--progress=", "--print", "--check",
  ),
  // `run` stops at the service name (SetInterspersed(false)); `--volumes`/`--labels` are normalised aliases.
  run: flagTable(
    ...COMMON, "-d,--detach", "-e,--env=", "--env-from-file=", "-l,--label=", "--labels=", "--rm", "-T,--no-tty",
    "--no-TTY", "--name=", "-u,--user=", "-w,--workdir=", "--entrypoint=", "--cap-add=", "--cap-drop=", "--no-deps",
    "-v,--volume=", "--volumes=", "-p,--publish=", "--use-aliases", "-P,--service-ports", "--pull=", "-q,--quiet",
    "--quiet-build", "--quiet-pull", "--build", "--remove-orphans", "-i,--interactive", "-t,--tty",
  ),
};

export interface ComposeGlobals {
  /** `-f` values in order, as written. */
  readonly files: readonly string[];
  readonly projectName?: string;
  readonly projectDirectory?: string;
  readonly envFiles: readonly string[];
  readonly profiles: readonly string[];
  /** `-h`/`--help` or `-v`/`--version` among the globals: compose prints something and runs nothing. */
  readonly informational: boolean;
}

export interface ComposeArgv {
  readonly tokens: readonly string[];
  /** Index of compose's first own argument: 0 standalone, after `[docker globals] compose` in plugin form. */
  readonly start: number;
  /** Index of the subcommand; where the shim inserts its own global options. tokens.length when there is none. */
  readonly subcommandIndex: number;
  readonly subcommand?: string;
  readonly globals: ComposeGlobals;
  /** The global option tokens as written (tokens[start..subcommandIndex)). */
  readonly globalTokens: readonly string[];
  /** A global flag the shim does not know: its arity is unknown, so the shim leaves the command alone. */
  readonly unknownGlobal?: string;
}

/**
 * Splits a compose invocation. `pluginForm` is true when the tokens are the Docker CLI's argv (docker globals, then
 * `compose`): the plugin protocol, and `docker … compose …` seen in docker mode. Returns undefined when a plugin-form
 * argv has no `compose` command word (then nothing is known about it).
 */
export function parseComposeArgv(tokens: readonly string[], pluginForm: boolean): ComposeArgv | undefined {
  let start = 0;
  if (pluginForm) {
    const docker = parseDockerArgv(tokens);
    if (docker.command !== "compose") return undefined;
    start = docker.commandIndex + 1;
  }
  const scan = scanOptions(tokens, COMPOSE_GLOBAL_FLAGS, start);
  const values = (name: string) => scan.options.filter((o) => o.name === name && o.value !== undefined).map((o) => o.value!);
  const last = (name: string) => values(name).at(-1);
  const subcommandIndex = scan.unknownFlag || scan.missingValue ? tokens.length : scan.terminator ?? scan.positional;
  const projectDirectory = last("project-directory") ?? last("workdir");
  const projectName = last("project-name");
  return {
    tokens,
    start,
    subcommandIndex,
    subcommand: scan.unknownFlag || scan.missingValue || scan.terminator !== undefined ? undefined : tokens[scan.positional],
    globals: {
      files: values("file"),
      ...(projectName !== undefined ? { projectName } : {}),
      ...(projectDirectory !== undefined ? { projectDirectory } : {}),
      envFiles: values("env-file"),
      profiles: values("profile"),
      informational: scan.options.some((o) => o.name === "help" || o.name === "version"),
    },
    globalTokens: tokens.slice(start, subcommandIndex),
    ...(scan.unknownFlag ? { unknownGlobal: scan.unknownFlag } : scan.missingValue ? { unknownGlobal: scan.missingValue } : {}),
  };
}

/** pflag's ParseBool for `--build=…`. */
function boolValue(option: ScannedOption): boolean {
  if (option.value === undefined) return true;
  return ["1", "t", "T", "true", "TRUE", "True"].includes(option.value);
}

export interface SubcommandOptions {
  /** The subcommand builds images: `build`, or `up`/`create`/`run` with a real `--build` option. */
  readonly builds: boolean;
  /** `--builder` of `compose build`. */
  readonly builder?: string;
  /** `build --with-dependencies`. */
  readonly withDependencies: boolean;
  /** `build --print` / `--check`: nothing is built. */
  readonly noBuildOutput: boolean;
  readonly help: boolean;
  /** Services named on the command line (`run`: the one it runs). */
  readonly services: readonly string[];
  /** `run -v/--volume` options (bind sources the daemon must see). */
  readonly runVolumes: readonly ScannedOption[];
  /** Options the table does not know (assumed to be switches); reported under SHIM_DEBUG. */
  readonly unknownFlags: readonly string[];
}

/**
 * Reads the options of `up`/`create`/`build`/`run`. Options and service names mix freely (cobra's default) except
 * for `run`, whose options end at the service name; `--` ends options everywhere. So `--build` inside a service's
 * command (`run app make --build`) or after `--` is never taken for the option.
 */
export function parseSubcommand(argv: ComposeArgv): SubcommandOptions | undefined {
  const name = argv.subcommand;
  const table = name === undefined ? undefined : SUBCOMMAND_FLAGS[name];
  if (!table) return undefined;
  const options: ScannedOption[] = [];
  const unknownFlags: string[] = [];
  const services: string[] = [];
  let at = argv.subcommandIndex + 1;
  const tokens = argv.tokens;
  while (at < tokens.length) {
    const scan = scanOptions(tokens, table, at);
    options.push(...scan.options);
    if (scan.terminator !== undefined) {
      if (name !== "run") services.push(...tokens.slice(scan.positional));
      else if (scan.positional < tokens.length) services.push(tokens[scan.positional]!);
      break;
    }
    if (scan.missingValue) break;
    if (scan.unknownFlag) {
      unknownFlags.push(scan.unknownFlag);
      at = scan.positional + 1;
      continue;
    }
    if (scan.positional >= tokens.length) break;
    services.push(tokens[scan.positional]!);
    if (name === "run") break;
    at = scan.positional + 1;
  }
  const has = (n: string) => options.some((o) => o.name === n && boolValue(o));
  const builder = options.filter((o) => o.name === "builder" && o.value !== undefined).at(-1)?.value;
  const lastBuild = options.filter((o) => o.name === "build").at(-1);
  return {
    builds: name === "build" || (lastBuild !== undefined && boolValue(lastBuild)),
    ...(builder !== undefined ? { builder } : {}),
    withDependencies: has("with-dependencies"),
    noBuildOutput: name === "build" && (has("print") || has("check")),
    help: has("help"),
    services,
    runVolumes: name === "run" ? options.filter((o) => o.name === "volume" || o.name === "volumes") : [],
    unknownFlags,
  };
}
