// Which entries of a directory tree the sender lists, given the daemon's include/exclude patterns (fsutil's
// filtered walk). Pure: the walker asks `visit` for each entry in walk order and hands the returned state to
// the entry's children.

import { PatternMatcher, type MatchInfo, type Pattern } from "./patterns.ts";

/** What to do with one entry. */
export type FilterAction =
  /** list it (and any parent directories not listed yet) */
  | "include"
  /** don't list it, but walk into it if it is a directory: something inside may still be included */
  | "exclude"
  /** don't list it and don't walk into it */
  | "skip";

/** Per-directory match results, passed from a directory to its entries. */
export interface DirFilterState {
  readonly include: MatchInfo | undefined;
  readonly exclude: MatchInfo | undefined;
}

const PATTERN_CHARS = /[*[\]?^\\]/;

export class PathFilter {
  private readonly include: PatternMatcher | undefined;
  private readonly exclude: PatternMatcher | undefined;
  /** No include pattern has a wildcard before its trailing glob, so a directory can be ruled out by prefix. */
  private readonly onlyPrefixIncludes: boolean;
  /** No exception has a wildcard, so an excluded directory can be skipped unless an exception lies inside. */
  private readonly onlyPrefixExcludeExceptions: boolean;

  /** `includePatterns` should already contain the resolved followpaths (see resolveFollowPaths). */
  constructor(includePatterns: readonly string[] | undefined, excludePatterns: readonly string[] | undefined) {
    this.include = includePatterns && includePatterns.length > 0 ? new PatternMatcher(includePatterns) : undefined;
    this.exclude = excludePatterns && excludePatterns.length > 0 ? new PatternMatcher(excludePatterns) : undefined;
    this.onlyPrefixIncludes = !this.include?.patterns.some(
      (p) => !p.exclusion && PATTERN_CHARS.test(withoutTrailingGlob(p)),
    );
    this.onlyPrefixExcludeExceptions = !this.exclude?.patterns.some(
      (p) => p.exclusion && PATTERN_CHARS.test(withoutTrailingGlob(p)),
    );
  }

  /** Decides about `path` ('/'-separated, relative to the root); `parent` is the state `visit` returned for its directory. */
  visit(path: string, isDir: boolean, parent: DirFilterState | undefined): { action: FilterAction; state: DirFilterState } {
    let excluded = false;
    let includeInfo: MatchInfo | undefined;
    let excludeInfo: MatchInfo | undefined;

    if (this.include) {
      const { matched, info } = this.include.matchesUsingParentResults(path, parent?.include);
      includeInfo = info;
      if (!matched) {
        if (isDir && this.onlyPrefixIncludes && !patternsBelow(this.include.patterns, path, false)) {
          return { action: "skip", state: { include: info, exclude: undefined } };
        }
        excluded = true;
      }
    }

    if (this.exclude) {
      const { matched, info } = this.exclude.matchesUsingParentResults(path, parent?.exclude);
      excludeInfo = info;
      if (matched) {
        if (isDir && this.onlyPrefixExcludeExceptions) {
          if (!this.exclude.hasExceptions || !patternsBelow(this.exclude.patterns, path, true)) {
            return { action: "skip", state: { include: includeInfo, exclude: info } };
          }
        }
        excluded = true;
      }
    }

    return { action: excluded ? "exclude" : "include", state: { include: includeInfo, exclude: excludeInfo } };
  }
}

/** Whether a pattern of the given kind (exception or not) names something inside directory `dir`. */
function patternsBelow(patterns: readonly Pattern[], dir: string, exceptions: boolean): boolean {
  const dirSlash = dir + "/";
  return patterns.some((p) => p.exclusion === exceptions && (withoutTrailingGlob(p) + "/").startsWith(dirSlash));
}

function withoutTrailingGlob(p: Pattern): string {
  let s = p.text;
  if (s.endsWith("/**")) s = s.slice(0, -3);
  if (s.endsWith("/*")) s = s.slice(0, -2);
  return s;
}

/**
 * fsutil's dedupePaths: drops paths inside an earlier path of the list (the list is expected sorted).
 * Returns undefined when the list contains "." — the whole tree is wanted, so there is no include filter.
 */
export function dedupePaths(paths: readonly string[]): string[] | undefined {
  const out: string[] = [];
  let last = "";
  for (const p of paths) {
    if (p === ".") return undefined;
    if (p.startsWith(last + "/")) continue;
    out.push(p);
    last = p;
  }
  return out;
}

/** Include patterns to filter with: the daemon's include patterns plus the resolved followpaths targets. */
export function combineIncludes(
  includePatterns: readonly string[],
  followTargets: readonly string[] | undefined,
): string[] | undefined {
  if (followTargets === undefined) return includePatterns.length > 0 ? [...includePatterns] : undefined;
  return dedupePaths([...includePatterns, ...followTargets]);
}
