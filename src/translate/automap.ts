// Auto-detected mapping: ask the daemon for this container's own mounts and map each destination to its source.
// The answer never changes for a running container, so it is cached per container id.
import { mkdirSync, readFileSync, realpathSync, renameSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join, posix } from "node:path";
import { engineJson } from "../engine/client.ts";
import { DEFAULT_DOCKER_HOST, parseDockerHost } from "../engine/host.ts";
import type { PathRule } from "./pathmap.ts";

const CONTAINER_ID = /[0-9a-f]{64}/;

/** This container's id from /proc (mountinfo names /var/lib/docker/containers/<id>/…; cgroup v1 names docker/<id>). */
export function detectContainerId(read: (path: string) => string | undefined): string | undefined {
  const mountinfo = read("/proc/self/mountinfo") ?? "";
  for (const line of mountinfo.split("\n")) {
    const m = /\/containers\/([0-9a-f]{64})\//.exec(line);
    if (m) return m[1];
  }
  const cgroup = read("/proc/self/cgroup") ?? "";
  for (const line of cgroup.split("\n")) {
    const m = /(?:docker[-/])([0-9a-f]{64})/.exec(line);
    if (m) return m[1];
  }
  return undefined;
}

export interface DaemonMount {
  readonly Type?: string;
  readonly Source?: string;
  readonly Destination?: string;
}

/** Rules from the daemon's view of our mounts (pure, given how container paths resolve). */
export function rulesFromMounts(mounts: readonly DaemonMount[], canonical: (path: string) => string | undefined): PathRule[] {
  const rules: PathRule[] = [];
  for (const mount of mounts) {
    if (mount.Type !== "bind" && mount.Type !== "volume") continue;
    if (!mount.Source?.startsWith("/") || !mount.Destination?.startsWith("/")) continue;
    const destination = posix.normalize(mount.Destination);
    rules.push({ from: destination, to: posix.normalize(mount.Source) });
    // The kernel follows symlinks in the destination when mounting, so the mount also answers to the real path.
    const real = canonical(destination);
    if (real && real !== destination) rules.push({ from: real, to: posix.normalize(mount.Source) });
  }
  return rules;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

function canonical(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}

export interface AutoMapResult {
  readonly rules: PathRule[];
  readonly why: string;
}

/** Looks up (or recalls) this container's mounts; never throws — no rules when anything is missing. */
export async function autoDetectRules(dockerHost: string | undefined, env: NodeJS.ProcessEnv): Promise<AutoMapResult> {
  let host;
  try {
    host = parseDockerHost(dockerHost || DEFAULT_DOCKER_HOST, env);
  } catch (err) {
    return { rules: [], why: `auto-detect skipped: ${(err as Error).message}` };
  }
  const id = detectContainerId(readText);
  const lookup = id ?? hostname();
  const uid = process.getuid?.() ?? 0;
  const cacheFile = id ? join(tmpdir(), `shim-${uid}`, `mounts-${id}.json`) : undefined;
  if (cacheFile) {
    const cached = readText(cacheFile);
    if (cached) {
      try {
        return { rules: rulesFromMounts(JSON.parse(cached) as DaemonMount[], canonical), why: `auto-detected mounts of ${id!.slice(0, 12)} (cached)` };
      } catch {
        // a damaged cache entry is simply refreshed
      }
    }
  }
  let info: { Id?: string; Mounts?: DaemonMount[] };
  try {
    info = await engineJson<typeof info>(host, { method: "GET", path: `/containers/${encodeURIComponent(lookup)}/json`, signal: AbortSignal.timeout(3000) });
  } catch (err) {
    return { rules: [], why: `auto-detect found no container ${lookup.slice(0, 12)}: ${(err as Error).message}` };
  }
  // Without a container id from /proc, the hostname must really name this container, not a look-alike.
  if (!id && !(info.Id ?? "").startsWith(lookup)) return { rules: [], why: "auto-detect: not inside a container of this daemon" };
  const mounts = info.Mounts ?? [];
  const realId = id ?? info.Id;
  if (realId && CONTAINER_ID.test(realId)) {
    const file = join(tmpdir(), `shim-${uid}`, `mounts-${realId}.json`);
    try {
      mkdirSync(join(tmpdir(), `shim-${uid}`), { recursive: true, mode: 0o700 });
      const temp = `${file}.${process.pid}.tmp`;
      writeFileSync(temp, JSON.stringify(mounts));
      renameSync(temp, file);
    } catch {
      // caching is an optimisation only
    }
  }
  return { rules: rulesFromMounts(mounts, canonical), why: `auto-detected ${mounts.length} mounts of ${lookup.slice(0, 12)}` };
}
