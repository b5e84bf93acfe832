// One compose command, from tokens to ExecPlan. Shared by both entry points: the shim as `docker-compose`
// (standalone or CLI plugin) and `docker … compose …` seen in docker mode. Every command gets the cheap round
// here (version from a small cache file, where the project is, its session name); commands that create
// containers or build also get round two (augment.ts, loaded only for them).
import { childEnv } from "../shim/exec.ts";
import type { Settings } from "../shim/config.ts";
import type { ExecPlan, RealBinaryKind } from "../shim/plan.ts";
import { parseComposeArgv, parseSubcommand } from "./argv.ts";
import { BinaryFacts, composeCwd, composeVersion, nodeProjectFs } from "./facts.ts";
import { assemble, decideName, needsOf } from "./plan.ts";
import { locateProject, sessionIdFrom, Undecidable, type ProjectLocation } from "./project.ts";
import { isV1, readsTopLevelName } from "./version.ts";

/**
 * Set by docker mode on the Docker CLI it runs, to the fingerprint of the argv it planned: the compose plugin (the
 * shim again, when it is installed in front of the plugin) receives exactly that argv, recognises it, and passes
 * it through. A command is thus processed once, by the first shim that sees it; an unshimmed plugin still gets the
 * processed command, and a stray inherited value never matches another command.
 */
export const PLANNED_VAR = "SHIM_COMPOSE_PLANNED";

/** Two FNV-1a passes (64 bits): enough to tell commands apart, with no crypto module to load. */
export function plannedFingerprint(args: readonly string[]): string {
  const text = args.join("\0");
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193) >>> 0;
    b = Math.imul(b ^ c, 0x5bd1e995) >>> 0;
  }
  return a.toString(16).padStart(8, "0") + b.toString(16).padStart(8, "0");
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
  const facts = BinaryFacts.forEnv(env);
  const { version, cached, error } = await composeVersion(ctx.realCompose, env, facts);
  if (!version) {
    return pass(`cannot tell the version of ${ctx.realCompose} (${error}); passed through`, [
      `shim: cannot tell the version of ${ctx.realCompose} (${error}); running it without the shim's compose handling`,
    ]);
  }
  debug.push(`compose ${version.text} (${ctx.realCompose}${cached ? ", version cached" : ""})`);
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

  const extra = needs.volumes || needs.cache ? await (await import("./augment.ts")).augment({ ctx, argv, sub, needs, version, location, name, env, facts }, debug) : undefined;
  const plan = assemble({
    argv,
    location,
    name,
    ...(extra?.model ? { model: extra.model } : {}),
    ...(extra?.translate ? { translate: extra.translate } : {}),
    runVolumes: extra?.runVolumes ?? [],
    ...(extra?.cache ? { cache: extra.cache } : {}),
    overrideFile: extra?.overrideFile ?? "",
  });
  const env2: Record<string, string | null> = { ...ctx.envChanges, ...extra?.env };
  if (ctx.binary === "docker") env2[PLANNED_VAR] = plannedFingerprint(plan.args);
  if (plan.override) debug.push(`override ${plan.override.file}`);
  return {
    binary: ctx.binary,
    args: plan.args,
    env: env2,
    debug: [...debug, ...plan.debug],
    notices: extra?.notices ?? [],
    effects: extra ? extra.effects(plan.override) : [],
  };
}
