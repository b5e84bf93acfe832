// I/O for the compose planner: the real compose's version (cached per binary), the file system view for project
// discovery, what compose resolved (`config`), the compose plugin the Docker CLI would run, and the buildx
// version. Everything slow is cached or only done for the commands that need it; child_process and crypto are
// loaded only then (each costs milliseconds at startup in the compiled binary, which every `compose ps` would pay).
import { mkdirSync, readFileSync, realpathSync, renameSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { nodeProbe, pluginDirs } from "../shim/real.ts";
import type { ComposeArgv } from "./argv.ts";
import { modelFromConfig, type ProjectModel } from "./model.ts";
import type { Env, ProjectFs } from "./project.ts";
import { parseComposeVersion, type ComposeVersion } from "./version.ts";

const MAX_FACTS = 32;

/** Variables that make a compose binary behave as a Docker CLI plugin; facts are asked of it standalone. */
const PLUGIN_VARS = ["DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND", "DOCKER_CLI_PLUGIN_SOCKET"];

export const nodeProjectFs: ProjectFs = {
  isFile(path) {
    try {
      return statSync(path).isFile();
    } catch {
      return false;
    }
  },
  readText(path) {
    try {
      return readFileSync(path, "utf8");
    } catch {
      return undefined;
    }
  },
};

/**
 * The working directory as compose sees it: Go's os.Getwd returns $PWD when it names the current directory (so a
 * symlinked path keeps its name, and with it the project name); Python's os.getcwd (compose v1) never does.
 */
export function composeCwd(cwd: string, env: Env, v1: boolean): string {
  const pwd = env.PWD;
  if (v1 || !pwd || !pwd.startsWith("/") || pwd === cwd) return cwd;
  try {
    const a = statSync(pwd);
    const b = statSync(cwd);
    return a.dev === b.dev && a.ino === b.ino ? pwd : cwd;
  } catch {
    return cwd;
  }
}

/** A key for facts about one binary: the file it resolves to (device, inode), size and mtime. Undefined when it cannot be stat'ed. */
export function binaryKey(kind: string, file: string): string | undefined {
  try {
    const s = statSync(file);
    return JSON.stringify([kind, s.dev, s.ino, s.size, Math.trunc(s.mtimeMs)]);
  } catch {
    return undefined;
  }
}

/** The environment a fact query runs with: the user's, but never in plugin mode. */
export function standaloneEnv(env: Env): Env {
  const out: Record<string, string | undefined> = { ...env };
  for (const name of PLUGIN_VARS) delete out[name];
  return out;
}

interface FactEntry {
  at: number;
  value: unknown;
}

/**
 * Answers about binaries (`$XDG_CACHE_HOME/shim/compose-facts.json`), keyed by binaryKey so they never go stale.
 * Any damage just means a miss; a home that cannot be written only costs the next command the question again.
 */
export class BinaryFacts {
  private entries: Record<string, FactEntry> | undefined;

  constructor(readonly file: string) {}

  static forEnv(env: Env): BinaryFacts {
    const base = env.XDG_CACHE_HOME || join(env.HOME || homedir(), ".cache");
    return new BinaryFacts(join(base, "shim", "compose-facts.json"));
  }

  private load(): Record<string, FactEntry> {
    if (!this.entries) {
      try {
        const parsed: unknown = JSON.parse(readFileSync(this.file, "utf8"));
        this.entries = typeof parsed === "object" && parsed !== null ? (parsed as Record<string, FactEntry>) : {};
      } catch {
        this.entries = {};
      }
    }
    return this.entries;
  }

  get<T>(key: string): T | undefined {
    return this.load()[key]?.value as T | undefined;
  }

  set(key: string, value: unknown): void {
    const entries = this.load();
    entries[key] = { at: Date.now(), value };
    const kept = Object.entries(entries).sort((a, b) => b[1].at - a[1].at).slice(0, MAX_FACTS);
    try {
      mkdirSync(join(this.file, ".."), { recursive: true });
      const tmp = `${this.file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(Object.fromEntries(kept)));
      renameSync(tmp, this.file);
    } catch {
      // not fatal
    }
  }
}

/** Runs a binary and collects its output (child_process is loaded on first use). */
async function run(file: string, args: readonly string[], env: Env, timeoutMs: number) {
  const { runCommand } = await import("../cache/facts.ts");
  return runCommand(file, args, env, timeoutMs);
}

/** `version --short` of the real compose, cached per binary so ordinary commands only read a small file. */
export async function composeVersion(binary: string, env: Env, facts: BinaryFacts): Promise<{ version?: ComposeVersion; cached: boolean; error?: string }> {
  const key = binaryKey("compose-version", binary);
  if (key) {
    const cached = facts.get<ComposeVersion>(key);
    if (cached && typeof cached.major === "number") return { version: cached, cached: true };
  }
  const result = await run(binary, ["version", "--short"], standaloneEnv(env), 20_000);
  if (result.code !== 0) return { cached: false, error: lastLineOf(result.stderr) || `exit status ${result.code}` };
  const { coerce } = await import("semver");
  const version = parseComposeVersion(result.stdout, (text) => coerce(text));
  if (!version) return { cached: false, error: `unrecognised version ${JSON.stringify(result.stdout.trim().slice(0, 60))}` };
  if (key) facts.set(key, version);
  return { version, cached: false };
}

/** Whether a one-time notice about this binary was already shown (and records that it now is). */
export function firstTimeFor(binary: string, topic: string, facts: BinaryFacts): boolean {
  const key = binaryKey(`compose-notice:${topic}`, binary);
  if (!key) return true;
  if (facts.get<boolean>(key)) return false;
  facts.set(key, true);
  return true;
}

/** `docker-buildx version` → `v0.36.1`, cached per binary. */
export async function buildxVersion(plugin: string, facts: BinaryFacts): Promise<string | undefined> {
  const key = binaryKey("buildx-version", plugin);
  if (key) {
    const cached = facts.get<string>(key);
    if (cached) return cached;
  }
  const result = await run(plugin, ["version"], { PATH: process.env.PATH, HOME: process.env.HOME }, 10_000);
  const version = / (v?\d+\.\d+\.\d+\S*)/.exec(result.stdout)?.[1];
  if (version && key) facts.set(key, version);
  return version;
}

export type ConfigOutcome = { model: ProjectModel } | { error: string };

function lastLineOf(text: string): string {
  const lines = text.trim().split("\n").filter((l) => l.trim() !== "");
  return (lines.at(-1) ?? "").trim();
}

/**
 * What compose resolves for the user's own global options (and the project name the shim gives it, which
 * interpolation may use). v2/v5 print JSON; every profile is enabled so that services `run` starts on their own
 * are known too (retried with the user's profiles if that fails). v1 prints YAML.
 */
export async function resolvedModel(binary: string, argv: ComposeArgv, projectName: string | undefined, v1: boolean, env: Env): Promise<ConfigOutcome> {
  const globals = [...argv.globalTokens, ...(projectName ? ["-p", projectName] : [])];
  const queryEnv = standaloneEnv(env);
  const attempts = v1 ? [[...globals, "config"]] : [[...globals, "--profile", "*", "config", "--format", "json"], [...globals, "config", "--format", "json"]];
  let error = "";
  for (const args of attempts) {
    const result = await run(binary, args, queryEnv, 60_000);
    if (result.code !== 0) {
      error = lastLineOf(result.stderr) || `exit status ${result.code}`;
      continue;
    }
    try {
      const doc: unknown = v1 ? (await import("yaml")).parse(result.stdout) : JSON.parse(result.stdout);
      return { model: modelFromConfig(doc) };
    } catch (err) {
      error = `cannot read its output: ${(err as Error).message.split("\n")[0]}`;
    }
  }
  return { error };
}

/** The `docker-compose` CLI plugin the Docker CLI would run (first executable one in its plugin dirs). */
export function findComposePlugin(dockerConfig: string, env: Env): string | undefined {
  for (const dir of pluginDirs({ ...env, DOCKER_CONFIG: dockerConfig } as NodeJS.ProcessEnv)) {
    const path = join(dir, "docker-compose");
    if (nodeProbe.isExecutable(path)) return path;
  }
  return undefined;
}

/** The Docker CLI's config dir: `--config`, DOCKER_CONFIG, else ~/.docker. */
export function dockerConfigDirOf(configFlag: string | undefined, env: Env): string {
  return configFlag ?? env.DOCKER_CONFIG ?? join(env.HOME || homedir(), ".docker");
}

export function realPathOf(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}
