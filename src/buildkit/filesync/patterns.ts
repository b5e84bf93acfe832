// .dockerignore-style path patterns with the semantics of moby/patternmatcher, which the daemon expects the
// client to apply to `include-patterns`, `exclude-patterns` and resolved `followpaths`:
// - patterns are trimmed and cleaned like Go's filepath.Clean; empty ones are dropped;
// - a leading `!` makes an exception that re-includes what earlier patterns matched;
// - `*` and `?` never cross `/`; `**` matches any number of path segments (also none);
// - a bare pattern is anchored at the root (`foo` matches `foo` and, through its parent, `foo/x`, but never
//   `a/foo` — unlike gitignore);
// - a path also matches when one of its parent directories matches.

import { cleanPath } from "./paths.ts";

export class PatternError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PatternError";
  }
}

type MatchType = "exact" | "prefix" | "suffix" | "regexp";

export class Pattern {
  readonly matchType: MatchType;
  private readonly regexp: RegExp | undefined;

  constructor(
    /** The cleaned pattern without its leading `!`. */
    readonly text: string,
    /** True for `!` exceptions. */
    readonly exclusion: boolean,
  ) {
    const compiled = compile(text);
    this.matchType = compiled.matchType;
    this.regexp = compiled.regexp;
  }

  matches(path: string): boolean {
    switch (this.matchType) {
      case "exact":
        return path === this.text;
      case "prefix":
        return path.startsWith(this.text.slice(0, -2));
      case "suffix": {
        const suffix = this.text.slice(2);
        if (path.endsWith(suffix)) return true;
        // `**/foo` also matches `foo` itself.
        return suffix.startsWith("/") && path === suffix.slice(1);
      }
      case "regexp":
        return this.regexp!.test(path);
    }
  }

  toString(): string {
    return this.exclusion ? `!${this.text}` : this.text;
  }
}

/** Per-pattern results for a directory, handed down to its children (patternmatcher's MatchInfo). */
export type MatchInfo = readonly boolean[];

export class PatternMatcher {
  readonly patterns: readonly Pattern[];
  /** True when any pattern is a `!` exception. */
  readonly hasExceptions: boolean;

  constructor(patterns: readonly string[]) {
    const parsed: Pattern[] = [];
    for (const raw of patterns) {
      let p = raw.trim();
      if (p === "") continue;
      p = cleanPath(p);
      let exclusion = false;
      if (p.startsWith("!")) {
        if (p.length === 1) throw new PatternError('illegal exclusion pattern: "!"');
        exclusion = true;
        p = p.slice(1);
      }
      validateGlobSyntax(p);
      parsed.push(new Pattern(p, exclusion));
    }
    this.patterns = parsed;
    this.hasExceptions = parsed.some((p) => p.exclusion);
  }

  /** True when `path` (or one of its parent directories) matches and no later exception re-includes it. */
  matchesOrParentMatches(path: string): boolean {
    const parents = parentPrefixes(path);
    let matched = false;
    for (const pattern of this.patterns) {
      // Only an exception can change a match, and only a plain pattern can create one.
      if (pattern.exclusion !== matched) continue;
      const match = pattern.matches(path) || parents.some((parent) => pattern.matches(parent));
      if (match) matched = !pattern.exclusion;
    }
    return matched;
  }

  /**
   * Like matchesOrParentMatches, but reuses the parent directory's per-pattern results (undefined for top-level
   * paths or when unknown) instead of re-matching every ancestor. Returns this path's results for its children.
   */
  matchesUsingParentResults(path: string, parent: MatchInfo | undefined): { matched: boolean; info: MatchInfo } {
    const info: boolean[] = new Array(this.patterns.length).fill(false);
    let matched = false;
    this.patterns.forEach((pattern, i) => {
      let match = parent !== undefined && parent[i] === true;
      if (!match) {
        if (pattern.exclusion !== matched) return;
        match = pattern.matches(path);
        if (!match && parent === undefined) match = parentPrefixes(path).some((p) => pattern.matches(p));
      }
      info[i] = match;
      if (match) matched = !pattern.exclusion;
    });
    return { matched, info };
  }
}

/** "a/b/c" → ["a", "a/b"]. */
function parentPrefixes(path: string): string[] {
  const parts = path.split("/");
  const out: string[] = [];
  for (let i = 1; i < parts.length; i++) out.push(parts.slice(0, i).join("/"));
  return out;
}

/** True when `name` (one path segment) matches the glob `pattern`, as Go's filepath.Match. */
export function globMatchName(pattern: string, name: string): boolean {
  validateGlobSyntax(pattern);
  return new Pattern(pattern, false).matches(name);
}

/** True when a name contains glob metacharacters (`\` escapes the next character). */
export function containsWildcards(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const ch = name[i];
    if (ch === "\\") i++;
    else if (ch === "*" || ch === "?" || ch === "[") return true;
  }
  return false;
}

// Characters that are literal in a path glob but special in a regular expression.
const REGEXP_SPECIAL_OUTSIDE_CLASS = new Set([..."^$\\.*+?()[]{}|/"]);
const REGEXP_SPECIAL_INSIDE_CLASS = new Set([..."\\]^[.+(){}$|/*?"]);

/**
 * patternmatcher's compile: exact/prefix/suffix fast paths, otherwise a regular expression anchored at both
 * ends. Inside a character class `*` and `?` are literal (filepath.Match's meaning).
 */
function compile(pattern: string): { matchType: MatchType; regexp: RegExp | undefined } {
  let re = "^";
  let type: MatchType = "exact";
  let inClass = false;
  const chars = [...pattern]; // code points, so `?` consumes a whole character
  for (let i = 0, step = 0; i < chars.length; i++, step++) {
    const ch = chars[i]!;
    if (inClass) {
      if (ch === "]") {
        re += "]";
        inClass = false;
      } else if (ch === "\\" && i + 1 < chars.length) {
        re += escapeInClass(chars[++i]!, true);
      } else {
        re += ch === "^" && chars[i - 1] === "[" ? "^" : escapeInClass(ch, false);
      }
      continue;
    }
    if (ch === "*") {
      if (chars[i + 1] === "*") {
        i++;
        if (chars[i + 1] === "/") i++; // `**/` behaves as `**`
        if (i + 1 >= chars.length) {
          if (type === "exact") type = "prefix";
          else {
            re += ".*";
            type = "regexp";
          }
        } else {
          re += "(.*/)?";
          type = "regexp";
        }
        if (step === 0) type = "suffix";
      } else {
        re += "[^/]*";
        type = "regexp";
      }
    } else if (ch === "?") {
      re += "[^/]";
      type = "regexp";
    } else if (ch === "\\") {
      if (i + 1 < chars.length) {
        re += escapeOutsideClass(chars[++i]!);
        type = "regexp";
      } else {
        re += "\\\\";
      }
    } else if (ch === "[") {
      re += "[";
      inClass = true;
      type = "regexp";
    } else {
      re += escapeOutsideClass(ch);
    }
  }
  if (type !== "regexp") return { matchType: type, regexp: undefined };
  try {
    return { matchType: type, regexp: new RegExp(re + "$", "u") };
  } catch {
    throw new PatternError(`syntax error in pattern: ${pattern}`);
  }
}

function escapeOutsideClass(ch: string): string {
  return REGEXP_SPECIAL_OUTSIDE_CLASS.has(ch) ? "\\" + ch : ch;
}

/** An unescaped `-` inside a class makes a range; an escaped one is a literal dash. */
function escapeInClass(ch: string, escaped: boolean): string {
  if (ch === "-") return escaped ? "\\-" : "-";
  return REGEXP_SPECIAL_INSIDE_CLASS.has(ch) ? "\\" + ch : ch;
}

/**
 * Rejects patterns Go's filepath.Match reports as ErrBadPattern: an unterminated or empty character class,
 * a range with a missing end, or a trailing backslash.
 */
function validateGlobSyntax(pattern: string): void {
  const bad = () => new PatternError(`syntax error in pattern: ${pattern}`);
  const chars = [...pattern];
  let i = 0;
  // Reads one (possibly escaped) class member; Go rejects `-` and `]` here and needs something after it.
  const classChar = () => {
    const c = chars[i];
    if (c === undefined || c === "-" || c === "]") throw bad();
    i++;
    if (c === "\\") {
      if (chars[i] === undefined) throw bad();
      i++;
    }
    if (i >= chars.length) throw bad();
  };
  while (i < chars.length) {
    const c = chars[i]!;
    if (c === "\\") {
      if (i + 1 >= chars.length) throw bad();
      i += 2;
    } else if (c === "[") {
      i++;
      if (chars[i] === "^") i++;
      let ranges = 0;
      for (;;) {
        if (chars[i] === "]" && ranges > 0) {
          i++;
          break;
        }
        classChar();
        if (chars[i] === "-") {
          i++;
          classChar();
        }
        ranges++;
      }
    } else {
      i++;
    }
  }
}
