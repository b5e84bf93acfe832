// Container path → daemon path, by prefix rules matched on whole path segments.
import { posix } from "node:path";
import { ShimError } from "../shim/errors.ts";

export interface PathRule {
  /** Absolute, normalised container-side prefix. */
  readonly from: string;
  /** Absolute, normalised daemon-side prefix. */
  readonly to: string;
}

export const DEFAULT_WORKSPACE_PATH = "/home/retro/work";

function normalise(path: string): string {
  const n = posix.normalize(path);
  return n.length > 1 && n.endsWith("/") ? n.slice(0, -1) : n;
}

/** Parses "/container/prefix=/daemon/prefix,…" (SHIM_PATH_MAP). "off" is handled by the caller. */
export function parsePathMap(text: string, source = "SHIM_PATH_MAP"): PathRule[] {
  const rules: PathRule[] = [];
  for (const entry of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const eq = entry.indexOf("=");
    const from = eq === -1 ? "" : entry.slice(0, eq).trim();
    const to = eq === -1 ? "" : entry.slice(eq + 1).trim();
    if (!from.startsWith("/") || !to.startsWith("/")) {
      throw new ShimError(`${source}: "${entry}" must be /container/prefix=/daemon/prefix (both absolute)`);
    }
    rules.push({ from: normalise(from), to: normalise(to) });
  }
  return rules;
}

/** True when `path` is `prefix` or lies below it (segment-wise: /a/work does not contain /a/workspace). */
export function isUnder(path: string, prefix: string): boolean {
  return prefix === "/" || path === prefix || path.startsWith(`${prefix}/`);
}

/** Maps an absolute, normalised path with the longest matching rule; undefined when none matches. */
export function mapPath(path: string, rules: readonly PathRule[]): string | undefined {
  let best: PathRule | undefined;
  for (const rule of rules) {
    if (isUnder(path, rule.from) && (!best || rule.from.length > best.from.length)) best = rule;
  }
  if (!best) return undefined;
  if (path === best.from) return best.to;
  const rest = best.from === "/" ? path : path.slice(best.from.length);
  return best.to === "/" ? rest : best.to + rest;
}

export type MappingSource =
  | { kind: "off" }
  | { kind: "explicit"; rules: PathRule[] }
  | { kind: "workspace"; rules: PathRule[] }
  | { kind: "auto" };

/** Which mapping applies, from settings alone (auto-detection needs the daemon and happens later). */
export function mappingSource(settings: { pathMap?: string; workspaceDir?: string; workspacePath?: string }): MappingSource {
  if (settings.pathMap !== undefined) {
    if (settings.pathMap.trim().toLowerCase() === "off") return { kind: "off" };
    return { kind: "explicit", rules: parsePathMap(settings.pathMap) };
  }
  if (settings.workspaceDir) {
    const from = settings.workspacePath ?? DEFAULT_WORKSPACE_PATH;
    if (!from.startsWith("/") || !settings.workspaceDir.startsWith("/")) {
      throw new ShimError("WORKSPACE_DIR and SHIM_WORKSPACE_PATH must be absolute paths");
    }
    return { kind: "workspace", rules: [{ from: normalise(from), to: normalise(settings.workspaceDir) }] };
  }
  return { kind: "auto" };
}
