// Recognises the build forms of the docker CLI and reads the options the cache planner needs. Pure.
//   build | image build | builder build | buildx [--builder X] build | buildx … b
// Only the words right after the docker global flags count, so `run -t` or `compose build` never match.
import { flagTable, scanOptions, type DockerArgv, type ScannedOption } from "../shim/argv.ts";

export type BuildForm = "build" | "image build" | "builder build" | "buildx build";

/** `docker buildx` root flags (persistent, before the subcommand). */
const BUILDX_ROOT_FLAGS = flagTable("--builder=", "-D,--debug", "-h,--help");

/**
 * `buildx build` options, the union over buildx v0.8 → current plus the classic `docker build` ones
 * (compose-cli.md §5.3). Only arity matters here: it decides which token is the context.
 * `--check` takes a value only as `--check=…` (NoOptDefVal), so it is listed as boolean.
 */
export const BUILD_FLAGS = flagTable(
  "--add-host=", "--allow=", "--annotation=", "--attest=", "--build-arg=", "--build-context=",
  "--cache-from=", "--cache-to=", "--call=", "--cgroup-parent=", "-f,--file=", "--iidfile=", "--label=",
  "--metadata-file=", "--network=", "--no-cache-filter=", "-o,--output=", "--platform=", "--policy=", "--progress=",
  "--provenance=", "--resource=", "--sbom=", "--secret=", "--shm-size=", "--ssh=", "-t,--tag=", "--target=",
  "--ulimit=", "-m,--memory=", "--memory-swap=", "-c,--cpu-shares=", "--cpu-period=", "--cpu-quota=",
  "--cpuset-cpus=", "--cpuset-mems=", "--isolation=", "--security-opt=", "--print=", "--invoke=", "--root=",
  "--server-config=", "--builder=",
  "--load", "--push", "-q,--quiet", "--no-cache", "--pull", "--check", "--compress", "--squash", "--rm",
  "--force-rm", "--detach", "--disable-content-trust", "--stream", "-D,--debug", "-h,--help",
);

export interface BuildCommand {
  readonly form: BuildForm;
  /** The whole argv (globals included), as the user typed it. */
  readonly argv: readonly string[];
  /** Index of the first token of the form (`build`, `image`, `builder` or `buildx`). */
  readonly formIndex: number;
  /** Index of the build subcommand token (`build` or `b`); options start after it. */
  readonly subcommandIndex: number;
  /** The first `-t`/`--tag` value. */
  readonly tag?: string;
  /** The context positional (PATH | URL | -). */
  readonly context?: string;
  readonly userCacheFrom: boolean;
  readonly userCacheTo: boolean;
  /** The last `--builder` (buildx root flag or build option; pflag: last wins). */
  readonly builderFlag?: string;
  /** `--load`, `--push`, `-o` or `--output` given: the result already goes somewhere. */
  readonly hasOutput: boolean;
  readonly help: boolean;
  /** `--config DIR` global flag (buildx reads its state and plugins relative to it). */
  readonly configDir?: string;
  /** Options the table does not know (assumed boolean); reported under SHIM_DEBUG. */
  readonly unknownFlags: readonly string[];
}

/** Matches a build form after the docker global flags; undefined for anything else. */
export function matchBuildCommand(parsed: DockerArgv): BuildCommand | undefined {
  const { argv, commandIndex } = parsed;
  const command = argv[commandIndex];
  let form: BuildForm;
  let subcommandIndex: number;
  let buildxBuilder: string | undefined;
  if (command === "build") {
    form = "build";
    subcommandIndex = commandIndex;
  } else if ((command === "image" || command === "builder") && argv[commandIndex + 1] === "build") {
    form = command === "image" ? "image build" : "builder build";
    subcommandIndex = commandIndex + 1;
  } else if (command === "buildx") {
    const root = scanOptions(argv, BUILDX_ROOT_FLAGS, commandIndex + 1);
    const sub = argv[root.positional];
    if (root.unknownFlag || root.terminator !== undefined || (sub !== "build" && sub !== "b")) return undefined;
    if (root.options.some((o) => o.name === "help")) return undefined;
    form = "buildx build";
    subcommandIndex = root.positional;
    buildxBuilder = lastValue(root.options, "builder");
  } else {
    return undefined;
  }

  const scan = scanInterspersed(argv, subcommandIndex + 1);
  const has = (name: string) => scan.options.some((o) => o.name === name);
  const builderFlag = lastValue(scan.options, "builder") ?? buildxBuilder;
  const configDir = parsed.global.config;
  return {
    form,
    argv,
    formIndex: commandIndex,
    subcommandIndex,
    tag: scan.options.find((o) => o.name === "tag")?.value,
    context: scan.positionals[0],
    userCacheFrom: has("cache-from"),
    userCacheTo: has("cache-to"),
    builderFlag,
    hasOutput: has("load") || has("push") || has("output"),
    help: has("help"),
    configDir: typeof configDir === "string" ? configDir : undefined,
    unknownFlags: scan.unknownFlags,
  };
}

function lastValue(options: readonly ScannedOption[], name: string): string | undefined {
  let value: string | undefined;
  for (const o of options) if (o.name === name && o.value !== undefined) value = o.value;
  return value;
}

/** cobra's default: options and positionals may be mixed; `--` ends the options. */
function scanInterspersed(tokens: readonly string[], start: number) {
  const options: ScannedOption[] = [];
  const positionals: string[] = [];
  const unknownFlags: string[] = [];
  let i = start;
  while (i < tokens.length) {
    const scan = scanOptions(tokens, BUILD_FLAGS, i);
    options.push(...scan.options);
    if (scan.terminator !== undefined) {
      positionals.push(...tokens.slice(scan.positional));
      break;
    }
    if (scan.missingValue || scan.positional >= tokens.length) break;
    if (scan.unknownFlag) unknownFlags.push(scan.unknownFlag);
    else positionals.push(tokens[scan.positional]!);
    i = scan.positional + 1;
  }
  return { options, positionals, unknownFlags };
}
