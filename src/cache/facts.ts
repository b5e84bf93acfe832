// Facts the build-cache planner needs, gathered by I/O: the cache root, the buildx plugin, the real CLI's version,
// the docker context, and what the effective builder can do. The expensive ones (CLI calls) are cached in a small
// JSON file keyed by everything that could change the answer, so a build does not pay for them each time.
import { execFile } from "node:child_process";
import { accessSync, constants, existsSync, readFileSync, statSync } from "node:fs";
import { createHash } from "node:crypto";
import { homedir } from "node:os";
import { mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { pluginDirs } from "../shim/real.ts";
import { writeFileAtomic } from "./shared-fs.ts";
import type { BuilderInfo, Env, KeyDirState, RootState } from "./plan.ts";
import { STAGING_DIR_NAME } from "./store.ts";

const SNAPSHOTTER_LABEL = "org.mobyproject.buildkit.worker.snapshotter";

function uid(): string {
  return typeof process.getuid === "function" ? String(process.getuid()) : "?";
}

function writable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK | constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The cache root exists, is a directory, and this process may create entries in it. */
export function inspectRoot(root: string): RootState {
  let isDir: boolean;
  try {
    isDir = statSync(root).isDirectory();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return { state: "missing" };
    return { state: "unusable", reason: `cannot stat cache root ${root} (${code ?? String(err)})` };
  }
  if (!isDir) return { state: "unusable", reason: `cache root ${root} is not a directory` };
  if (!writable(root)) return { state: "unusable", reason: `cache root ${root} is not writable by uid ${uid()}` };
  return { state: "ok" };
}

/** Whether a key directory has something to import, and whether this uid could merge an export into it. */
export function inspectKeyDir(dir: string): KeyDirState {
  if (!existsSync(dir)) return { hasIndex: false };
  const hasIndex = existsSync(join(dir, "index.json"));
  for (const path of [dir, join(dir, "blobs"), join(dir, "blobs", "sha256"), join(dir, STAGING_DIR_NAME)]) {
    if (existsSync(path) && !writable(path)) return { hasIndex, problem: `${path} is not writable by uid ${uid()}` };
  }
  return { hasIndex };
}

export function dockerConfigDir(configFlag: string | undefined, env: Env): string {
  return configFlag ?? env.DOCKER_CONFIG ?? join(env.HOME ?? homedir(), ".docker");
}

export function buildxStateDir(dockerConfig: string, env: Env): string {
  return env.BUILDX_CONFIG || join(dockerConfig, "buildx");
}

interface DockerConfigFile {
  aliases?: Record<string, string>;
  currentContext?: string;
}

export function readDockerConfig(dockerConfig: string): DockerConfigFile {
  try {
    const parsed: unknown = JSON.parse(readFileSync(join(dockerConfig, "config.json"), "utf8"));
    return typeof parsed === "object" && parsed !== null ? (parsed as DockerConfigFile) : {};
  } catch {
    return {};
  }
}

/** The docker context a command uses (docker/cli resolveContextName; compose-cli.md §5.1). */
export function dockerContextName(global: Readonly<Record<string, string | true>>, env: Env, config: DockerConfigFile): string {
  if (typeof global.context === "string") return global.context;
  if (global.host !== undefined || env.DOCKER_HOST) return "default";
  if (env.DOCKER_CONTEXT) return env.DOCKER_CONTEXT;
  return config.currentContext || "default";
}

/** The buildx plugin the docker CLI would run, searched like the CLI does. */
export function findBuildxPlugin(dockerConfig: string, env: Env): string | undefined {
  for (const dir of pluginDirs({ ...env, DOCKER_CONFIG: dockerConfig })) {
    const path = join(dir, "docker-buildx");
    try {
      if (statSync(path).isFile()) {
        accessSync(path, constants.X_OK);
        return path;
      }
    } catch {
      // not here
    }
  }
  return undefined;
}

/** `Docker version 20.10.24+dfsg1, build 297e128` → `20.10.24+dfsg1`. */
export function parseDockerVersion(output: string): string | undefined {
  return /version\s+v?([0-9][^\s,]*)/i.exec(output)?.[1];
}

/**
 * Reads `docker buildx inspect` output. A docker-driver builder can export cache only when its BuildKit worker
 * runs on the containerd snapshotter (buildx driver/docker/driver.go: the worker label below); every other
 * driver (docker-container, remote, kubernetes…) can. With --debug, buildx prints its own "Cache export" verdict.
 */
export function parseBuilderInspect(output: string): BuilderInfo | undefined {
  const field = (name: string) => new RegExp(`^${name}:[ \\t]*(.*)$`, "m").exec(output)?.[1]?.trim();
  const name = field("Name");
  const driver = field("Driver");
  if (!name || !driver) return undefined;
  const endpoint = field("Endpoint");
  const verdict = /^\s*Cache export:\s*(true|false)\s*$/m.exec(output)?.[1];
  const canExport = verdict !== undefined ? verdict === "true" : driver !== "docker" || output.includes(SNAPSHOTTER_LABEL);
  return { name, driver, canExport, ...(endpoint ? { endpoint } : {}) };
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCommand(file: string, args: readonly string[], env: Env, timeoutMs = 30_000): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(file, [...args], { env: env as NodeJS.ProcessEnv, timeout: timeoutMs, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr || (err && typeof err.code !== "number" ? err.message : "")) });
    });
  });
}

/** Age limits of cached answers: a docker-driver verdict depends on the daemon's store, which may be switched. */
const DOCKER_DRIVER_TTL_MS = 10 * 60_000;
const OTHER_TTL_MS = 24 * 60 * 60_000;
const MAX_ENTRIES = 64;

interface CacheEntry {
  at: number;
  value: unknown;
}

/** A small JSON file of past answers (`$XDG_CACHE_HOME/shim/build-facts.json`); any damage just means a miss. */
export class FactsCache {
  private entries: Record<string, CacheEntry> | undefined;
  private dirty = false;

  constructor(readonly file: string) {}

  static forEnv(env: Env): FactsCache {
    const base = env.XDG_CACHE_HOME || join(env.HOME ?? homedir(), ".cache");
    return new FactsCache(join(base, "shim", "build-facts.json"));
  }

  private load(): Record<string, CacheEntry> {
    if (!this.entries) {
      try {
        const parsed: unknown = JSON.parse(readFileSync(this.file, "utf8"));
        this.entries = typeof parsed === "object" && parsed !== null ? (parsed as Record<string, CacheEntry>) : {};
      } catch {
        this.entries = {};
      }
    }
    return this.entries;
  }

  get<T>(key: string, maxAgeMs: number): T | undefined {
    const entry = this.load()[key];
    if (!entry || typeof entry.at !== "number" || Date.now() - entry.at > maxAgeMs) return undefined;
    return entry.value as T;
  }

  set(key: string, value: unknown): void {
    this.load()[key] = { at: Date.now(), value };
    this.dirty = true;
  }

  /** Writes the file if anything changed (best effort: a read-only home only costs the next build a CLI call). */
  async save(): Promise<void> {
    if (!this.dirty) return;
    const kept = Object.entries(this.load())
      .sort((a, b) => b[1].at - a[1].at)
      .slice(0, MAX_ENTRIES);
    try {
      // Private to the user (not the shared cache): nobody else may plant answers here.
      await mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
      await writeFileAtomic(this.file, JSON.stringify(Object.fromEntries(kept)), 0o600);
      this.dirty = false;
    } catch {
      // not fatal
    }
  }
}

function mtimeOf(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

function contentOf(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

function cacheKey(parts: unknown[]): string {
  return createHash("sha256").update(JSON.stringify(parts)).digest("hex").slice(0, 32);
}

/** How to run the real CLI the way the user's command would (same globals, same environment). */
export interface CliAccess {
  readonly docker: string;
  /** The user's docker global flags (`--context X`, `-H …`, `--config D`), passed before `buildx`. */
  readonly globals: readonly string[];
  readonly env: Env;
  readonly dockerConfig: string;
  readonly buildxPlugin: string;
}

/** `docker --version`, cached per binary (path, size, mtime). */
export async function cliVersion(docker: string, cache: FactsCache): Promise<string | undefined> {
  let fingerprint: unknown[];
  try {
    const s = statSync(docker);
    fingerprint = ["cli-version", docker, s.size, s.mtimeMs];
  } catch {
    return undefined;
  }
  const key = cacheKey(fingerprint);
  const cached = cache.get<string>(key, OTHER_TTL_MS);
  if (cached) return cached;
  const result = await runCommand(docker, ["--version"], { PATH: process.env.PATH, HOME: process.env.HOME }, 10_000);
  const version = result.code === 0 ? parseDockerVersion(result.stdout) : undefined;
  if (version) cache.set(key, version);
  return version;
}

/** Everything that changes what `buildx inspect` says, short of the daemon's own configuration. */
function builderStateKey(cli: CliAccess, name: string | undefined): string {
  const buildxDir = buildxStateDir(cli.dockerConfig, cli.env);
  return cacheKey([
    "builder",
    name ?? null,
    cli.docker,
    cli.globals,
    cli.env.DOCKER_HOST ?? null,
    cli.env.DOCKER_CONTEXT ?? null,
    cli.dockerConfig,
    mtimeOf(join(buildxDir, "instances")),
    // buildx rewrites `current` on every run, so its content (the `buildx use` choice) is the key, not its mtime.
    contentOf(join(buildxDir, "current")),
    mtimeOf(join(cli.dockerConfig, "config.json")),
    cli.buildxPlugin,
    mtimeOf(cli.buildxPlugin),
  ]);
}

export interface InspectOutcome {
  info?: BuilderInfo;
  /** Why there is no info (the CLI's last error line). */
  error?: string;
  cached: boolean;
}

/** `docker buildx inspect [name]` (name undefined = buildx's current builder), cached unless `fresh`. */
export async function inspectBuilder(cli: CliAccess, name: string | undefined, cache: FactsCache, fresh = false): Promise<InspectOutcome> {
  const key = builderStateKey(cli, name);
  if (!fresh) {
    const cached = cache.get<BuilderInfo>(key, OTHER_TTL_MS);
    if (cached && (cached.driver !== "docker" || cache.get(key, DOCKER_DRIVER_TTL_MS))) return { info: cached, cached: true };
  }
  // With --debug buildx prints its own feature verdict ("Cache export: true|false"); buildx < 0.12 lacks the flag.
  const inspect = (debugFlag: string[]) => runCommand(cli.docker, [...cli.globals, "buildx", ...debugFlag, "inspect", ...(name ? [name] : [])], cli.env);
  let result = await inspect(["--debug"]);
  if (result.code !== 0 && /unknown (flag|shorthand)/.test(result.stderr)) result = await inspect([]);
  const info = result.code === 0 ? parseBuilderInspect(result.stdout) : undefined;
  if (!info) return { error: lastLine(result.stderr) || `docker buildx inspect exited with ${result.code}`, cached: false };
  cache.set(key, info);
  return { info, cached: false };
}

export function lastLine(text: string): string {
  const lines = text.trim().split("\n").filter((l) => l.trim() !== "");
  return (lines[lines.length - 1] ?? "").replace(/^ERROR:\s*/, "").trim();
}
