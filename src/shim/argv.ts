// A pflag-compatible argv model: enough of the Docker CLI's grammar to find the options the shim rewrites
// while keeping every other token exactly as the user typed it.

export interface FlagDef {
  /** Canonical name, e.g. "volume". */
  readonly name: string;
  readonly takesValue: boolean;
}

/** Flag table: each spelling ("-v", "--volume") → its definition. */
export type FlagTable = ReadonlyMap<string, FlagDef>;

/**
 * Builds a flag table from compact specs: "-v,--volume=" takes a value (trailing "="), "-t,--tty" does not.
 * The canonical name is the long spelling without dashes (or the short one when there is no long one).
 */
export function flagTable(...specs: string[]): FlagTable {
  const table = new Map<string, FlagDef>();
  for (const spec of specs) {
    const takesValue = spec.endsWith("=");
    const spellings = (takesValue ? spec.slice(0, -1) : spec).split(",");
    const long = spellings.find((s) => s.startsWith("--")) ?? spellings[0]!;
    const def: FlagDef = { name: long.replace(/^-+/, ""), takesValue };
    for (const spelling of spellings) table.set(spelling, def);
  }
  return table;
}

export interface ScannedOption {
  readonly name: string;
  /** As written: "-v", "--volume". */
  readonly flag: string;
  readonly value?: string;
  /** Index of the token that starts this option. */
  readonly index: number;
  /** Index of the token holding the value (index, or index + 1 for the separate form). */
  readonly valueIndex?: number;
  /** Text before the value inside tokens[valueIndex] ("--volume=", "-itv", or "" for the separate form). */
  readonly valuePrefix?: string;
}

export interface ScanResult {
  readonly options: ScannedOption[];
  /** Index of the first positional argument (tokens.length when there is none). */
  readonly positional: number;
  /** Index of a "--" terminator that ended the options, if any. */
  readonly terminator?: number;
  /** The first flag not in the table; scanning stops there because its arity is unknown. */
  readonly unknownFlag?: string;
  /** A value-taking flag at the very end with no value. */
  readonly missingValue?: string;
}

/**
 * Scans options from `start` until the first positional argument (pflag with interspersed=false, which is how
 * docker parses global flags and `run`/`create` options: everything after the image belongs to the container).
 */
export function scanOptions(tokens: readonly string[], table: FlagTable, start = 0): ScanResult {
  const options: ScannedOption[] = [];
  let i = start;
  while (i < tokens.length) {
    const token = tokens[i]!;
    if (token === "--") return { options, positional: i + 1, terminator: i };
    if (!token.startsWith("-") || token === "-") return { options, positional: i };

    if (token.startsWith("--")) {
      const eq = token.indexOf("=");
      const flag = eq === -1 ? token : token.slice(0, eq);
      const def = table.get(flag);
      if (!def) return { options, positional: i, unknownFlag: flag };
      if (eq !== -1) {
        options.push({ name: def.name, flag, value: token.slice(eq + 1), index: i, valueIndex: i, valuePrefix: token.slice(0, eq + 1) });
        i += 1;
      } else if (def.takesValue) {
        if (i + 1 >= tokens.length) return { options, positional: tokens.length, missingValue: flag };
        options.push({ name: def.name, flag, value: tokens[i + 1]!, index: i, valueIndex: i + 1, valuePrefix: "" });
        i += 2;
      } else {
        options.push({ name: def.name, flag, index: i });
        i += 1;
      }
      continue;
    }

    // Shorthand cluster: "-it", "-v/a:/b", "-v=/a:/b", "-itv" + next token.
    let consumedNext = false;
    for (let k = 1; k < token.length; k++) {
      const flag = `-${token[k]}`;
      const def = table.get(flag);
      if (!def) return { options, positional: i, unknownFlag: flag };
      if (!def.takesValue) {
        if (token[k + 1] === "=") {
          // "-d=false": pflag's boolean shorthand with an explicit value.
          options.push({ name: def.name, flag, value: token.slice(k + 2), index: i, valueIndex: i, valuePrefix: token.slice(0, k + 2) });
          break;
        }
        options.push({ name: def.name, flag, index: i });
        continue;
      }
      const rest = token.slice(k + 1);
      if (rest.length > 0) {
        const prefixLength = rest.startsWith("=") ? k + 2 : k + 1;
        options.push({ name: def.name, flag, value: token.slice(prefixLength), index: i, valueIndex: i, valuePrefix: token.slice(0, prefixLength) });
      } else {
        if (i + 1 >= tokens.length) return { options, positional: tokens.length, missingValue: flag };
        options.push({ name: def.name, flag, value: tokens[i + 1]!, index: i, valueIndex: i + 1, valuePrefix: "" });
        consumedNext = true;
      }
      break;
    }
    i += consumedNext ? 2 : 1;
  }
  return { options, positional: tokens.length };
}

/** Replaces option values in a copy of tokens; each rewrite keeps the option's original spelling. */
export function rewriteValues(tokens: readonly string[], rewrites: ReadonlyArray<{ option: ScannedOption; value: string }>): string[] {
  const out = [...tokens];
  for (const { option, value } of rewrites) {
    if (option.valueIndex === undefined) continue;
    out[option.valueIndex] = (option.valuePrefix ?? "") + value;
  }
  return out;
}

/** Docker CLI global flags (cli/flags/options.go); they may only appear before the command. */
export const DOCKER_GLOBAL_FLAGS = flagTable(
  "--config=",
  "-c,--context=",
  "-H,--host=",
  "-l,--log-level=",
  "--tlscacert=",
  "--tlscert=",
  "--tlskey=",
  "-D,--debug",
  "--tls",
  "--tlsverify",
  "-v,--version",
  "-h,--help",
);

export interface DockerArgv {
  readonly argv: readonly string[];
  readonly globals: ScanResult;
  /** Index of the command word ("run", "buildx", "compose"…), or argv.length when there is none. */
  readonly commandIndex: number;
  readonly command?: string;
  /** The last value given for each global option (docker allows one -H; last wins for the others). */
  readonly global: Readonly<Record<string, string | true>>;
}

export function parseDockerArgv(argv: readonly string[]): DockerArgv {
  const globals = scanOptions(argv, DOCKER_GLOBAL_FLAGS);
  const global: Record<string, string | true> = {};
  for (const option of globals.options) global[option.name] = option.value ?? true;
  const commandIndex = globals.unknownFlag ? argv.length : globals.positional;
  return { argv, globals, commandIndex, command: argv[commandIndex], global };
}

/** True when the user picked a daemon explicitly (so the shim must not route the socket). */
export function choseDaemon(parsed: DockerArgv, env: Readonly<Record<string, string | undefined>>): boolean {
  return (
    parsed.global.host !== undefined ||
    parsed.global.context !== undefined ||
    Boolean(env.DOCKER_HOST) ||
    Boolean(env.DOCKER_CONTEXT)
  );
}
