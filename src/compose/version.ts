// The real compose's version and what it implies (compose-cli.md §1.2–1.3, §2, §3). Pure: the `semver` parser is
// passed in by the caller, which loads it only when a version string must be parsed (not on cached answers).

export interface ComposeVersion {
  /** As printed by `version --short` (first line, trimmed). */
  readonly text: string;
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
}

type Coerce = (text: string) => { major: number; minor: number; patch: number } | null;

/**
 * `2.24.5`, `v2.2.3` (v2.0–2.2 printed the raw tag), `2.20.2-desktop.1` (vendor suffix: the release it is built
 * from), `1.29.2`, `5.5.0`. Undefined when there is no version number in the text.
 */
export function parseComposeVersion(output: string, coerce: Coerce): ComposeVersion | undefined {
  const text = output.trim().split("\n")[0]?.trim() ?? "";
  if (!/^v?\d+\.\d+/.test(text)) return undefined;
  const parsed = coerce(text);
  if (!parsed) return undefined;
  return { text, major: parsed.major, minor: parsed.minor, patch: parsed.patch };
}

function atLeast(v: ComposeVersion, major: number, minor: number, patch: number): boolean {
  if (v.major !== major) return v.major > major;
  if (v.minor !== minor) return v.minor > minor;
  return v.patch >= patch;
}

/** Compose v1 (Python): other discovery order, no `name:`, no cache_to, builds through `docker build` on PATH. */
export function isV1(v: ComposeVersion): boolean {
  return v.major < 2;
}

/** Top-level `name:` is read from v2.3.0 (compose-go v1.1.0). */
export function readsTopLevelName(v: ComposeVersion): boolean {
  return atLeast(v, 2, 3, 0);
}

/** strconv.ParseBool. */
function parseBool(value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  if (["1", "t", "T", "true", "TRUE", "True"].includes(value)) return true;
  if (["0", "f", "F", "false", "FALSE", "False"].includes(value)) return false;
  return undefined;
}

export interface BuildPath {
  /** BuildKit builds through compose (not v1's `docker build`, not the classic engine builder). */
  readonly buildkit: boolean;
  /** Builds go through `buildx bake` (a separate process that gets compose's environment). */
  readonly bake: boolean;
  readonly cacheFrom: boolean;
  readonly cacheTo: boolean;
  /** Why cache_to is not honoured, when it is not (for a notice or a debug line). */
  readonly whyNoCacheTo?: string;
}

/**
 * How a v2/v5 compose builds, from its version and the environment it runs with (`COMPOSE_BAKE`, `DOCKER_BUILDKIT`,
 * and `plugins.compose.build` of the docker config file, read by v2.31–v2.36).
 */
export function buildPath(v: ComposeVersion, env: Readonly<Record<string, string | undefined>>, configSaysBake = false): BuildPath {
  if (isV1(v)) return { buildkit: false, bake: false, cacheFrom: false, cacheTo: false, whyNoCacheTo: "compose v1 builds through `docker build`" };
  if (parseBool(env.DOCKER_BUILDKIT) === false) {
    return { buildkit: false, bake: false, cacheFrom: false, cacheTo: false, whyNoCacheTo: "DOCKER_BUILDKIT=0 selects the classic builder" };
  }
  const composeBake = parseBool(env.COMPOSE_BAKE);
  let bake: boolean;
  if (v.major >= 5) bake = true; // v5.0.0 removed the in-process builder
  else if (atLeast(v, 2, 37, 0)) bake = composeBake !== false;
  else if (atLeast(v, 2, 31, 0)) bake = composeBake === true || (composeBake === undefined && configSaysBake);
  else bake = false;

  // v2.0.0 lost cache_from to a copy bug (fixed in 2.0.1); cache_to arrived in 2.4.0.
  const cacheFrom = atLeast(v, 2, 0, 1);
  let whyNoCacheTo: string | undefined;
  if (!atLeast(v, 2, 4, 0)) whyNoCacheTo = `compose ${v.text} has no cache_to (added in 2.4.0)`;
  else if (bake && !atLeast(v, 2, 37, 3)) whyNoCacheTo = `compose ${v.text} drops cache_to when it builds with bake (fixed in 2.37.3)`;
  return { buildkit: true, bake, cacheFrom, cacheTo: whyNoCacheTo === undefined, ...(whyNoCacheTo ? { whyNoCacheTo } : {}) };
}

/**
 * buildx 0.20.x refuses (without asking, under compose's `--progress rawjson`) a bake whose local cache export
 * lies outside its working directory unless `BUILDX_BAKE_ENTITLEMENTS_FS=0`; 0.19 only warned and 0.21+ skips the
 * check for rawjson progress (docker/buildx commands/bake.go). Unknown versions get the variable: it is harmless.
 */
export function bakeNeedsFsEntitlementsOff(buildxVersion: string | undefined): boolean {
  const m = /^v?(\d+)\.(\d+)/.exec(buildxVersion ?? "");
  if (!m) return true;
  return Number(m[1]) === 0 && Number(m[2]) === 20;
}
