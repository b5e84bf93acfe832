// Settings: environment variables, optionally backed by a YAML file ($SHIM_CONFIG or /etc/shim/config.yaml).
// The environment always wins. The YAML parser is loaded only when a config file exists.
import { existsSync, readFileSync } from "node:fs";
import { ShimError } from "./errors.ts";
import { parsePathMap } from "../translate/pathmap.ts";

export const DEFAULT_CONFIG_FILE = "/etc/shim/config.yaml";

/** Every setting: its environment variable, the config-file key, and what a valid value looks like. */
export const SETTINGS = {
  pathMap: { env: "SHIM_PATH_MAP", key: "path_map", kind: "pathmap" },
  workspaceDir: { env: "WORKSPACE_DIR", key: "workspace_dir", kind: "absolute" },
  workspacePath: { env: "SHIM_WORKSPACE_PATH", key: "workspace_path", kind: "absolute" },
  dockerHost: { env: "SHIM_DOCKER_HOST", key: "docker_host", kind: "string" },
  realDocker: { env: "SHIM_REAL_DOCKER", key: "real_docker", kind: "string" },
  realCompose: { env: "SHIM_REAL_COMPOSE", key: "real_compose", kind: "string" },
  debug: { env: "SHIM_DEBUG", key: "debug", kind: "boolean" },
  disable: { env: "SHIM_DISABLE", key: "disable", kind: "boolean" },
  cacheDir: { env: "SHIM_CACHE_DIR", key: "cache_dir", kind: "absolute" },
  builder: { env: "SHIM_BUILDER", key: "builder", kind: "string" },
  buildkitHost: { env: "BUILDKIT_HOST", key: "buildkit_host", kind: "string" },
  sessionId: { env: "SHIM_SESSION_ID", key: "session_id", kind: "string" },
} as const;

export type SettingName = keyof typeof SETTINGS;
export type Settings = { [K in SettingName]?: string };

const EXPECTED: Record<string, string> = {
  string: "a string",
  absolute: "an absolute path",
  boolean: "true or false",
  pathmap: 'a "/container/prefix=/daemon/prefix,…" string, a mapping of container prefix to daemon prefix, or "off"',
};

export function configFilePath(env: NodeJS.ProcessEnv): string {
  return env.SHIM_CONFIG || DEFAULT_CONFIG_FILE;
}

/**
 * Reads the config file if there is one; returns its settings as environment-style strings.
 * A missing default file is fine; a missing $SHIM_CONFIG, an unreadable file or a bad value is an error.
 */
export async function loadConfigFile(env: NodeJS.ProcessEnv): Promise<{ file?: string; values: Settings }> {
  const file = configFilePath(env);
  if (!env.SHIM_CONFIG && !existsSync(file)) return { values: {} };
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ShimError(`config ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  const { parse } = await import("yaml");
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new ShimError(`config ${file}: not valid YAML: ${(err as Error).message.split("\n")[0]}`);
  }
  return { file, values: settingsFromDocument(doc, file) };
}

/** Validates a parsed config document (pure). */
export function settingsFromDocument(doc: unknown, file: string): Settings {
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) throw new ShimError(`config ${file}: expected a mapping of settings at the top level`);
  const byKey = new Map<string, SettingName>();
  for (const [name, def] of Object.entries(SETTINGS) as [SettingName, (typeof SETTINGS)[SettingName]][]) {
    byKey.set(def.key, name);
    byKey.set(def.env, name);
  }
  const out: Settings = {};
  for (const [key, raw] of Object.entries(doc as Record<string, unknown>)) {
    const name = byKey.get(key);
    if (!name) throw new ShimError(`config ${file}: unknown key "${key}" (known: ${Object.values(SETTINGS).map((s) => s.key).join(", ")})`);
    const def = SETTINGS[name];
    const bad = () => new ShimError(`config ${file}: key "${key}" must be ${EXPECTED[def.kind]}`);
    switch (def.kind) {
      case "boolean":
        if (typeof raw !== "boolean") throw bad();
        out[name] = raw ? "1" : "0";
        break;
      case "pathmap": {
        let text: string;
        if (typeof raw === "string") text = raw;
        else if (raw && typeof raw === "object" && !Array.isArray(raw)) {
          const pairs = Object.entries(raw as Record<string, unknown>);
          if (pairs.some(([, v]) => typeof v !== "string")) throw bad();
          text = pairs.map(([from, to]) => `${from}=${to as string}`).join(",");
        } else throw bad();
        // Checked here so that a bad entry is reported against the file and key it came from.
        if (text.trim().toLowerCase() !== "off") parsePathMap(text, `config ${file}: key "${key}"`);
        out[name] = text;
        break;
      }
      case "absolute":
        if (typeof raw !== "string" || !raw.startsWith("/")) throw bad();
        out[name] = raw;
        break;
      default:
        if (typeof raw !== "string" && typeof raw !== "number") throw bad();
        out[name] = String(raw);
    }
  }
  return out;
}

/** Environment over file (pure). An empty environment variable counts as unset. */
export function resolveSettings(env: NodeJS.ProcessEnv, file: Settings): Settings {
  const out: Settings = {};
  for (const [name, def] of Object.entries(SETTINGS) as [SettingName, (typeof SETTINGS)[SettingName]][]) {
    const fromEnv = env[def.env];
    const value = fromEnv !== undefined && fromEnv !== "" ? fromEnv : file[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

export function isTrue(value: string | undefined): boolean {
  return value !== undefined && /^(1|true|yes|on)$/i.test(value);
}
