// Shared pieces of the compose end-to-end tests: the shim put in front of a real compose (standalone, CLI plugin,
// or through `docker compose` in docker mode), sessions, fingerprints of the user's files, the temp-dir check, a
// second buildkitd with fresh state, and reading CACHED steps from plain progress.
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { loadTestbed, shimBinary, startFreshBuildkitd } from "./testbed.ts";

export const tb = loadTestbed();
export const runId = `${process.pid}${Date.now().toString(36)}`;
const cleanups: (() => void)[] = [];

export function cleanupAll(): void {
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      fn();
    } catch {
      // best effort
    }
  }
}

export function tempDir(prefix: string, mode = 0o755): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, mode);
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export type Entry = "standalone" | "plugin" | "docker";

export interface ComposeBed {
  /** `docker`, `docker-compose` → the shim; DOCKER_CONFIG/cli-plugins/docker-compose → the shim. */
  readonly bin: string;
  readonly dockerConfig: string;
  /** TMPDIR of the shim (where its private override dirs go). */
  readonly tmp: string;
  readonly env: NodeJS.ProcessEnv;
}

/**
 * A session as a dev container would have it: its own HOME, DOCKER_CONFIG (buildx state), TMPDIR and session id,
 * the shim in front of docker, docker-compose and the compose plugin, all talking to the test bed's daemon.
 */
export function composeBed(compose: string, session: string, extraEnv: NodeJS.ProcessEnv = {}): ComposeBed {
  const home = tempDir(`shim-e2e-compose-${session}-`);
  const bin = join(home, "bin");
  const dockerConfig = join(home, ".docker");
  const tmp = join(home, "tmp");
  for (const d of [bin, join(dockerConfig, "cli-plugins"), tmp]) mkdirSync(d, { recursive: true });
  symlinkSync(shimBinary, join(bin, "docker"));
  symlinkSync(shimBinary, join(bin, "docker-compose"));
  symlinkSync(shimBinary, join(dockerConfig, "cli-plugins", "docker-compose"));
  const env: NodeJS.ProcessEnv = {
    PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}`,
    HOME: home,
    DOCKER_CONFIG: dockerConfig,
    XDG_CACHE_HOME: join(home, ".cache"),
    TMPDIR: tmp,
    DOCKER_HOST: tb.DOCKER_HOST,
    SHIM_REAL_DOCKER: tb.TESTBED_DOCKER,
    SHIM_REAL_COMPOSE: compose,
    SHIM_SESSION_ID: session,
    ...extraEnv,
  };
  return { bin, dockerConfig, tmp, env };
}

export interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** argv for a compose command through the given entry point. */
export function composeArgv(bed: ComposeBed, entry: Entry, args: string[]): [string, string[]] {
  if (entry === "standalone") return [join(bed.bin, "docker-compose"), args];
  if (entry === "docker") return [join(bed.bin, "docker"), ["compose", ...args]];
  // The Docker CLI itself (unshimmed) running the shim as its compose plugin.
  return [tb.TESTBED_DOCKER, ["compose", ...args]];
}

export function compose(bed: ComposeBed, entry: Entry, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Result {
  const [file, argv] = composeArgv(bed, entry, args);
  const r = spawnSync(file, argv, { cwd, env: { ...bed.env, ...env }, encoding: "utf8", timeout: 300_000 });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Starts a compose command; `detached` gives it its own process group (to signal it like a terminal would). */
export function composeAsync(bed: ComposeBed, entry: Entry, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}, detached = false) {
  const [file, argv] = composeArgv(bed, entry, args);
  const child = spawn(file, argv, { cwd, env: { ...bed.env, ...env }, stdio: ["ignore", "pipe", "pipe"], detached });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Result>((resolve) => child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, done, stderr: () => stderr, stdout: () => stdout };
}

/** sha256 of every file under dir (relative path → hash), to prove the user's files are byte-identical. */
export function fingerprint(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const s = statSync(p);
      if (s.isDirectory()) walk(p);
      else out[relative(dir, p)] = `${s.mode.toString(8)}:${createHash("sha256").update(readFileSync(p)).digest("hex")}`;
    }
  };
  walk(dir);
  return out;
}

/** The shim's override dirs left in the session's TMPDIR (must be none after every command). */
export function leftovers(bed: ComposeBed): string[] {
  const parent = join(bed.tmp, `shim-${process.getuid?.() ?? 0}`);
  if (!existsSync(parent)) return [];
  return readdirSync(parent).filter((n) => n.startsWith("compose-"));
}

export function docker(args: string[]): Result {
  const r = spawnSync(tb.TESTBED_DOCKER, args, { env: { ...process.env, DOCKER_HOST: tb.DOCKER_HOST }, encoding: "utf8", timeout: 120_000 });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Removes everything of a compose project from the daemon (containers, networks, volumes, its images). */
export function removeProject(project: string): void {
  const ids = docker(["ps", "-aq", "--filter", `label=com.docker.compose.project=${project}`]).stdout.split("\n").filter(Boolean);
  if (ids.length) docker(["rm", "-f", "-v", ...ids]);
  const nets = docker(["network", "ls", "-q", "--filter", `label=com.docker.compose.project=${project}`]).stdout.split("\n").filter(Boolean);
  if (nets.length) docker(["network", "rm", ...nets]);
  const vols = docker(["volume", "ls", "-q", "--filter", `label=com.docker.compose.project=${project}`]).stdout.split("\n").filter(Boolean);
  if (vols.length) docker(["volume", "rm", "-f", ...vols]);
  const images = docker(["images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", `reference=${project}*`]).stdout.split("\n").filter(Boolean);
  if (images.length) docker(["rmi", "-f", ...images]);
}

/** A second buildkitd with fresh state, stopped by `cleanupAll`. */
export function startBuildkitd(): { host: string; stop(): void } {
  const daemon = startFreshBuildkitd();
  cleanups.push(daemon.stop);
  return daemon;
}

/** Direct children of a process (from /proc). */
export function childrenOf(pid: number): number[] {
  const r = spawnSync("pgrep", ["-P", String(pid)], { encoding: "utf8" });
  return r.stdout.split("\n").filter(Boolean).map(Number);
}

