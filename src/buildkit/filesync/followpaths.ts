// `followpaths` name files the daemon wants even when they are symlinks (the Dockerfile, .dockerignore, COPY
// sources): each path is resolved component by component, symlinks are followed inside the root (an absolute
// target is taken relative to the root, as the daemon sees the context), and every path visited — the links
// and their final targets — becomes an include pattern. Port of fsutil's FollowLinks.

import { containsWildcards, globMatchName } from "./patterns.ts";
import { basePath, cleanPath, compareUtf8, dirPath, joinPath } from "./paths.ts";
import { dedupePaths } from "./filter.ts";

/** Read-only access to the tree, by '/'-separated path relative to its root; undefined when absent. */
export interface TreeReader {
  /** lstat: whether the entry is a symlink, and its target. */
  lstat(path: string): Promise<{ symlink: boolean; linkname: string } | undefined>;
  /** Names in a directory. */
  readdir(path: string): Promise<string[] | undefined>;
}

/**
 * The include patterns that followpaths contribute, sorted and deduplicated; undefined when one of them is
 * the root itself (then they restrict nothing).
 */
export async function resolveFollowPaths(paths: readonly string[], tree: TreeReader): Promise<string[] | undefined> {
  const resolved = new Set<string>();

  const readSymlink = async (p: string, allowWildcard: boolean): Promise<string[] | undefined> => {
    const base = basePath(p);
    if (allowWildcard && containsWildcards(base)) {
      const names = await tree.readdir(dirPath(p));
      if (names === undefined) return undefined;
      let out: string[] | undefined;
      for (const name of names) {
        if (!safeGlobMatch(base, name)) continue;
        const targets = await readSymlink(joinPath(dirPath(p), name), false);
        if (targets) (out ??= []).push(...targets);
      }
      return out;
    }
    if (p === "." || p === "/") return undefined;
    const entry = await tree.lstat(p);
    if (!entry?.symlink) return undefined;
    const link = cleanPath(entry.linkname);
    if (link.startsWith("/")) return [link];
    return [joinPath("/", joinPath(dirPath(p), link))];
  };

  const append = async (input: string): Promise<void> => {
    let rest = joinPath(".", input); // relative and clean: a leading "/" means the root
    let current = ".";
    for (;;) {
      const slash = rest.indexOf("/");
      const head = slash < 0 ? rest : rest.slice(0, slash);
      rest = slash < 0 ? "" : rest.slice(slash + 1);
      current = joinPath(current, head);
      const targets = await readSymlink(current, true);
      if ((rest === "" || targets !== undefined) && resolved.has(current)) return;
      if (targets !== undefined) {
        resolved.add(current);
        for (const target of targets) await append(joinPath(target, rest));
        return;
      }
      if (rest === "") {
        resolved.add(current);
        return;
      }
    }
  };

  for (const p of paths) await append(p);
  return dedupePaths([...resolved].sort(compareUtf8));
}

function safeGlobMatch(pattern: string, name: string): boolean {
  try {
    return globMatchName(pattern, name);
  } catch {
    return false; // Go's filepath.Match error is ignored here as well
  }
}
