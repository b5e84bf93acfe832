// Which files compose will load, from which project directory, and what it will call the project — decided the
// way compose itself decides (compose-cli.md §3; compose-go cli/options.go for v2/v5, compose/cli/command.py and
// config/config.py for v1), without running compose. Pure: the file system comes in as a small view.
import { posix } from "node:path";
import type { ComposeGlobals } from "./argv.ts";
import { DotenvError, parseDotenv } from "./dotenv.ts";

export interface ProjectFs {
  isFile(path: string): boolean;
  /** File content, or undefined when it cannot be read. */
  readText(path: string): string | undefined;
}

export const V2_FILE_NAMES = ["compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"];
export const V2_OVERRIDE_NAMES = ["compose.override.yml", "compose.override.yaml", "docker-compose.override.yml", "docker-compose.override.yaml"];
export const V1_FILE_NAMES = ["docker-compose.yml", "docker-compose.yaml", "compose.yml", "compose.yaml"];
export const V1_OVERRIDE_NAMES = ["docker-compose.override.yml", "docker-compose.override.yaml", "compose.override.yml", "compose.override.yaml"];

export type Env = Readonly<Record<string, string | undefined>>;

export interface ProjectInput {
  readonly globals: ComposeGlobals;
  /** The process environment compose runs with. */
  readonly env: Env;
  readonly cwd: string;
  readonly v1: boolean;
  /** Whether this compose reads a top-level `name:` (v2.3.0+). */
  readonly readsName: boolean;
}

export type FileSource = "-f" | "COMPOSE_FILE" | "discovered";

export interface ProjectLocation {
  /** The files compose would load, in order, absolute. Empty when compose would find none. */
  readonly files: readonly string[];
  readonly fileSource?: FileSource;
  readonly projectDir: string;
  /** The environment compose sees: env files under the process environment (which wins). */
  readonly env: Env;
  /** Set when the name was chosen (then the shim leaves it alone). */
  readonly nameChosenBy?: "-p" | "COMPOSE_PROJECT_NAME" | "name:";
  /** The name compose derives from the project directory (when nothing chose one). */
  readonly defaultName: string;
}

/** Why the shim cannot know what compose will load; the caller then leaves the command alone. */
export class Undecidable extends Error {}

/** compose-go loader.NormalizeProjectName. */
export function normalizeV2(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9_-]/g, "").replace(/^[_-]+/, "");
}

/** compose v1 get_project_name (no trimming). */
export function normalizeV1(name: string): string {
  return name.toLowerCase().replace(/[^-_a-z0-9]/g, "");
}

function parseBool(value: string | undefined): boolean {
  return value !== undefined && ["1", "t", "T", "true", "TRUE", "True"].includes(value);
}

function isRemote(path: string): boolean {
  return /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(path) || path.startsWith("git@");
}

/** Reads env files in order (later ones override earlier ones), the process environment winning throughout. */
function readEnvFiles(files: readonly string[], env: Env, fs: ProjectFs, required: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const file of files) {
    const text = fs.readText(file);
    if (text === undefined) {
      if (required) throw new Undecidable(`env file ${file} cannot be read`);
      continue;
    }
    try {
      Object.assign(out, parseDotenv(text, (name) => env[name] ?? out[name]));
    } catch (err) {
      if (err instanceof DotenvError) throw new Undecidable(`env file ${file}: ${err.message}`);
      throw err;
    }
  }
  return out;
}

function merged(base: Env, files: Record<string, string>): Env {
  const out: Record<string, string | undefined> = { ...files };
  for (const [k, v] of Object.entries(base)) if (v !== undefined) out[k] = v;
  return out;
}

function discover(startDir: string, names: readonly string[], overrides: readonly string[], fs: ProjectFs, v1: boolean): string[] {
  let dir = startDir;
  for (;;) {
    const found = names.map((n) => posix.join(dir, n)).filter((p) => fs.isFile(p));
    if (found.length > 0) {
      const override = overrides.map((n) => posix.join(dir, n)).filter((p) => fs.isFile(p));
      // v1 refuses two override files; compose must say so itself.
      if (v1 && override.length > 1) throw new Undecidable(`several override files in ${dir}`);
      return [found[0]!, ...override.slice(0, 1)];
    }
    const parent = posix.dirname(dir);
    if (parent === dir) return [];
    dir = parent;
  }
}

/**
 * True when the YAML text sets a non-empty top-level `name`. Block-style top-level keys start in column 0;
 * a file written as one JSON object is read as JSON. Anything else is undecidable.
 */
export function setsTopLevelName(text: string): boolean {
  const body = text.replace(/^\uFEFF/, "");
  const firstContent = body.split("\n").find((line) => line.trim() !== "" && !line.trimStart().startsWith("#"));
  if (firstContent?.trimStart().startsWith("{")) {
    try {
      const doc = JSON.parse(body) as Record<string, unknown>;
      return typeof doc.name === "string" && doc.name !== "";
    } catch {
      throw new Undecidable("a flow-style compose file");
    }
  }
  const m = /^(?:name|"name"|'name')[ \t]*:(?:[ \t]+(.*))?$/m.exec(body);
  if (!m) return false;
  const value = (m[1] ?? "").replace(/\s+#.*$/, "").trim();
  return value !== "" && value !== '""' && value !== "''" && value !== "~" && value !== "null";
}

/** Where compose's project lives and what it is called. Throws Undecidable when the shim cannot know. */
export function locateProject(input: ProjectInput, fs: ProjectFs): ProjectLocation {
  const { globals, env, cwd, v1 } = input;
  const abs = (p: string) => posix.resolve(cwd, p);
  if (globals.files.some((f) => f === "-")) throw new Undecidable("the compose file comes from stdin");
  if (globals.files.some(isRemote)) throw new Undecidable("a remote compose file");
  const projectDirFlag = globals.projectDirectory !== undefined && globals.projectDirectory !== "" ? abs(globals.projectDirectory) : undefined;

  // Env files first: they may set COMPOSE_FILE, COMPOSE_PATH_SEPARATOR and COMPOSE_PROJECT_NAME.
  const composeEnvFiles = !v1 && env.COMPOSE_ENV_FILES ? env.COMPOSE_ENV_FILES.split(",").filter(Boolean) : [];
  const explicitEnvFiles = (globals.envFiles.length > 0 ? globals.envFiles : composeEnvFiles).map(abs);
  const defaultEnvDisabled = !v1 && parseBool(env.COMPOSE_DISABLE_ENV_FILE);
  // v1 also takes the directory of the first COMPOSE_FILE entry of the process environment.
  const firstFile = globals.files[0] ?? (v1 ? env.COMPOSE_FILE?.split(env.COMPOSE_PATH_SEPARATOR || ":")[0] || undefined : undefined);
  const firstDir = projectDirFlag ?? (firstFile !== undefined ? posix.dirname(abs(firstFile)) : cwd);
  const envFilesFor = (dir: string) => (explicitEnvFiles.length > 0 ? explicitEnvFiles : defaultEnvDisabled ? [] : [posix.join(dir, ".env")]);
  let fileEnv = readEnvFiles(envFilesFor(firstDir), env, fs, explicitEnvFiles.length > 0);
  let composeEnv = merged(env, fileEnv);

  let files: string[];
  let fileSource: FileSource | undefined;
  if (globals.files.length > 0) {
    files = globals.files.map(abs);
    fileSource = "-f";
  } else if (composeEnv.COMPOSE_FILE) {
    const separator = composeEnv.COMPOSE_PATH_SEPARATOR || ":";
    const entries = composeEnv.COMPOSE_FILE.split(separator);
    if (entries.some((e) => e === "-" || isRemote(e))) throw new Undecidable("COMPOSE_FILE names stdin or a remote file");
    files = entries.map(abs);
    fileSource = "COMPOSE_FILE";
  } else {
    const names = v1 ? V1_FILE_NAMES : V2_FILE_NAMES;
    const overrides = v1 ? V1_OVERRIDE_NAMES : V2_OVERRIDE_NAMES;
    // v2 searches from the project directory; v1 from the working dir first, then the project directory.
    files = discover(v1 ? cwd : projectDirFlag ?? cwd, names, overrides, fs, v1);
    if (files.length === 0 && v1 && projectDirFlag) files = discover(projectDirFlag, names, overrides, fs, v1);
    if (files.length > 0) fileSource = "discovered";
  }

  const projectDir = projectDirFlag ?? (files[0] !== undefined ? posix.dirname(files[0]) : cwd);
  // v2 reads the project directory's .env as well when it differs (its values do not replace earlier ones).
  if (!v1 && projectDir !== firstDir && explicitEnvFiles.length === 0 && !defaultEnvDisabled) {
    const later = readEnvFiles(envFilesFor(projectDir), env, fs, false);
    fileEnv = { ...later, ...fileEnv };
    composeEnv = merged(env, fileEnv);
  }

  const base = posix.basename(projectDir);
  const defaultName = v1 ? normalizeV1(base) || "default" : normalizeV2(base);
  const location = { files, ...(fileSource ? { fileSource } : {}), projectDir, env: composeEnv, defaultName };
  if (globals.projectName) return { ...location, nameChosenBy: "-p" };
  if (composeEnv.COMPOSE_PROJECT_NAME) return { ...location, nameChosenBy: "COMPOSE_PROJECT_NAME" };
  if (input.readsName) {
    for (const file of files) {
      const text = fs.readText(file);
      if (text !== undefined && setsTopLevelName(text)) return { ...location, nameChosenBy: "name:" };
    }
  }
  return location;
}

export interface SessionId {
  readonly id: string;
  readonly from: string;
}

/** The session the shim runs in: SHIM_SESSION_ID (setting), else the Helix presets. */
export function sessionIdFrom(settingsSessionId: string | undefined, env: Env): SessionId | undefined {
  if (settingsSessionId) return { id: settingsSessionId, from: "SHIM_SESSION_ID" };
  if (env.HELIX_TASK_NUMBER) return { id: env.HELIX_TASK_NUMBER, from: "HELIX_TASK_NUMBER" };
  if (env.HELIX_SESSION_ID) return { id: env.HELIX_SESSION_ID, from: "HELIX_SESSION_ID" };
  return undefined;
}

/** `<default name>-<session>`, normalised; undefined when either part normalises to nothing. */
export function sessionProjectName(defaultName: string, session: SessionId, v1: boolean): string | undefined {
  const suffix = normalizeV2(session.id);
  if (!defaultName || !suffix) return undefined;
  const name = `${defaultName}-${suffix}`;
  return v1 ? normalizeV1(name) : normalizeV2(name);
}
