// The compose planner: argv + facts → the real compose's argv and the override document. Pure. Facts come in two
// rounds: the cheap ones for every command (version, where the project is and what it is called), then — only for
// commands that create containers or build — what compose resolved (`config`), the path mapping and the cache
// entries (cache-plan.ts).
import { rewriteValues, type ScannedOption } from "../shim/argv.ts";
import type { ComposeArgv, SubcommandOptions } from "./argv.ts";
import type { CachePlan } from "./cache-plan.ts";
import type { ProjectModel } from "./model.ts";
import { buildOverride, type TranslatePath } from "./override.ts";
import { sessionProjectName, type ProjectLocation, type SessionId } from "./project.ts";

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
