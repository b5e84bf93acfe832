// The session's shared key: BuildKit keeps the last upload of each (shared key, local name) and on the next
// build asks only for files whose metadata changed. The key must be stable for one directory on one machine and
// differ between machines (two dev containers with the same path must not diff against each other's uploads),
// so it combines a per-machine id stored under the user's cache dir with the directory's name and path hash.
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { basename, join } from "node:path";

type Env = Readonly<Record<string, string | undefined>>;

/** Pure: `<machine>-<dir name>-<8 hex of the path>` (the daemon splits session ids on ':'; keys avoid it too). */
export function sharedKeyFor(contextDir: string, machineId: string): string {
  const name = basename(contextDir).replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 48) || "root";
  const hash = createHash("sha256").update(contextDir).digest("hex").slice(0, 8);
  return `${machineId}-${name}-${hash}`;
}

export function machineIdPath(env: Env): string {
  const cacheHome = env.XDG_CACHE_HOME || join(env.HOME || "/tmp", ".cache");
  return join(cacheHome, "shim", "machine-id");
}

/**
 * The id stored at machineIdPath (created on first use: 16 random hex digits). When it cannot be stored, a
 * hash of the host name stands in: still stable, just less unique.
 */
export async function machineId(env: Env): Promise<string> {
  const path = machineIdPath(env);
  try {
    const stored = (await readFile(path, "utf8")).trim();
    if (/^[0-9a-f]{16}$/.test(stored)) return stored;
  } catch {
    // absent or unreadable: create it below
  }
  const id = randomBytes(8).toString("hex");
  const tmp = `${path}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    await mkdir(join(path, ".."), { recursive: true });
    await writeFile(tmp, `${id}\n`, { flag: "wx" });
    await rename(tmp, path);
    return id;
  } catch {
    await rm(tmp, { force: true }).catch(() => undefined);
    return createHash("sha256").update(hostname()).digest("hex").slice(0, 16);
  }
}
