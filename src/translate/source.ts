// Turning a bind-mount source as the user wrote it into the path the daemon must see.
import { posix } from "node:path";
import { mapPath, type PathRule } from "./pathmap.ts";

/** What the translator may ask of the container's filesystem (injected, so planning stays testable). */
export interface HostView {
  readonly cwd: string;
  readonly home?: string;
  /** Canonical path of an existing path (symlinks resolved), undefined when it does not exist. */
  realpath(path: string): string | undefined;
}

export type SourceKind = "windows" | "named" | "absolute" | "home" | "relative";

export function sourceKind(source: string): SourceKind {
  if (/^[A-Za-z]:([\\/]|$)/.test(source) || source.startsWith("\\\\") || source.startsWith("//")) return "windows";
  if (source.startsWith("/")) return "absolute";
  if (source === "~" || source.startsWith("~/")) return "home";
  if (source.startsWith(".")) return "relative";
  return "named";
}

/** The canonical form of a path that may not exist: the longest existing prefix resolved, the rest appended. */
export function resolveExistingPrefix(path: string, view: HostView): string {
  let head = path;
  const tail: string[] = [];
  for (;;) {
    const real = view.realpath(head);
    if (real !== undefined) return tail.length ? posix.join(real, ...tail.reverse()) : real;
    if (head === "/") return path;
    tail.push(posix.basename(head));
    head = posix.dirname(head);
  }
}

export interface SourceTranslation {
  readonly value: string;
  readonly why: string;
}

/**
 * The daemon-side source for a bind source, or undefined when it must stay exactly as written
 * (named volumes, Windows paths, absolute paths outside every rule).
 */
export function translateSource(source: string, view: HostView, rules: readonly PathRule[]): SourceTranslation | undefined {
  const kind = sourceKind(source);
  let absolute: string;
  switch (kind) {
    case "windows":
    case "named":
      return undefined;
    case "home":
      if (!view.home) return undefined;
      absolute = posix.normalize(view.home + source.slice(1));
      break;
    case "relative":
      absolute = posix.resolve(view.cwd, source);
      break;
    case "absolute":
      absolute = posix.normalize(source);
      break;
  }
  if (absolute.length > 1 && absolute.endsWith("/")) absolute = absolute.slice(0, -1);
  const canonical = resolveExistingPrefix(absolute, view);
  const mapped = mapPath(canonical, rules) ?? mapPath(absolute, rules);
  if (mapped !== undefined) return { value: mapped, why: canonical === absolute ? "mapped" : `mapped via ${canonical}` };
  if (kind === "home" || kind === "relative") return { value: absolute, why: "made absolute (no mapping applies)" };
  return undefined;
}
