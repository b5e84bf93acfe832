// The path rules in force for one invocation: explicit map, WORKSPACE_DIR, or auto-detected from the daemon.
import type { Settings } from "../shim/config.ts";
import { mappingSource, type PathRule } from "./pathmap.ts";

/** Auto-detection (which asks the daemon) is loaded and run only when no configured mapping applies. */
export async function pathRules(settings: Settings, dockerHost: string | undefined, env: NodeJS.ProcessEnv, debug: string[]): Promise<PathRule[]> {
  const source = mappingSource(settings);
  switch (source.kind) {
    case "off":
      debug.push("path translation off (SHIM_PATH_MAP=off)");
      return [];
    case "explicit":
    case "workspace":
      debug.push(`path map (${source.kind === "explicit" ? "SHIM_PATH_MAP" : "WORKSPACE_DIR"}): ${source.rules.map((r) => `${r.from}=${r.to}`).join(",")}`);
      return source.rules;
    case "auto": {
      const { autoDetectRules } = await import("./automap.ts");
      const detected = await autoDetectRules(dockerHost, env);
      debug.push(detected.why);
      return detected.rules;
    }
  }
}
