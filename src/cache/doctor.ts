// `shim doctor`'s build-cache section: the cache root, the keys in it, and what a plain `docker build` would get
// (read+write, read-only, or off) with the builder it would use — the same facts and planner a build uses.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { parseDockerArgv } from "../shim/argv.ts";
import type { Settings } from "../shim/config.ts";
import { socketRouting } from "../shim/docker-mode.ts";
import { matchBuildCommand } from "./build-argv.ts";
import { gatherBuildFacts } from "./docker-build.ts";
import { inspectBuilder, inspectKeyDir } from "./facts.ts";
import { DEFAULT_CACHE_ROOT, planBuildCache, type BuildCachePlan } from "./plan.ts";
import { readIndex, STAGING_DIR_NAME } from "./store.ts";

export interface CacheDiagnosis {
  readonly info: string[];
  readonly problems: string[];
}

function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

async function describeKeys(root: string, info: string[], problems: string[]): Promise<void> {
  let names: string[];
  try {
    names = readdirSync(root, { withFileTypes: true })
      .filter((e) => e.isDirectory() && !e.name.startsWith("."))
      .map((e) => e.name);
  } catch {
    return;
  }
  const { openCacheDir } = await import("./store.ts");
  let total = 0;
  let staging = 0;
  for (const name of names) {
    const dir = join(root, name);
    const meta = await openCacheDir(dir).readMeta();
    total += meta?.size ?? 0;
    try {
      staging += readdirSync(join(dir, STAGING_DIR_NAME)).length;
    } catch {
      // no staging dir
    }
    const index = await readIndex(dir);
    if (index.state === "broken") problems.push(`build cache key ${dir}: ${index.reason} (the next export keeps it aside and writes a new one)`);
    const state = inspectKeyDir(dir);
    if (state.problem) problems.push(`build cache key ${dir}: ${state.problem}; builds can import from it but not save to it`);
  }
  info.push(`build cache: ${names.length} key(s), ${formatBytes(total)} recorded${staging ? `, ${staging} export(s) in progress or left by killed builds` : ""}`);
}

function verdict(plan: BuildCachePlan): string {
  if (plan.cache?.stagingDir) return "imports and saves the shared cache";
  if (plan.cache?.importing) return "imports the shared cache but cannot save to it";
  if (plan.notices.length > 0) return "cannot save the shared cache";
  return plan.cache ? "uses the shared cache" : "passes through unchanged (cache off)";
}

/** What `docker build .` would do here, and anything that stops the cache from working. */
export async function diagnoseCache(ctx: { env: NodeJS.ProcessEnv; settings: Settings; realDocker: string }): Promise<CacheDiagnosis> {
  const info: string[] = [];
  const problems: string[] = [];
  const root = ctx.settings.cacheDir ?? DEFAULT_CACHE_ROOT;

  const args = ["build", "."];
  const parsed = parseDockerArgv(args);
  const cmd = matchBuildCommand(parsed)!;
  const inv = { args, parsed, env: ctx.env, settings: ctx.settings, cwd: process.cwd(), realDocker: ctx.realDocker, envChanges: socketRouting(args, ctx.env, ctx.settings) };
  const gathered = await gatherBuildFacts(inv, cmd);
  if (!("facts" in gathered)) {
    const reason = gathered.debug.find((l) => l.startsWith("build cache off")) ?? "build cache off";
    if (gathered.notices.length > 0) problems.push(reason);
    else info.push(reason);
    return { info, problems };
  }

  const { facts, cli, cache } = gathered;
  info.push(`build cache root: ${root} (writable)`);
  await describeKeys(root, info, problems);
  info.push(`build cache: buildx plugin ${cli.buildxPlugin}; docker CLI ${facts.cliVersion ?? "version unknown"}; context "${facts.dockerContext}"`);
  for (const line of gathered.debug) info.push(line);
  if (facts.builder) {
    info.push(`build cache: \`docker build\` uses builder "${facts.builder.name}" (${facts.builder.driver} driver), which ${facts.builder.canExport ? "can" : "cannot"} export cache`);
  }
  if (facts.buildkitHost) {
    const shim = await inspectBuilder(cli, facts.shimBuilderName, cache);
    const state = shim.info
      ? `exists (${shim.info.driver} → ${shim.info.endpoint ?? "?"})${shim.info.endpoint === facts.buildkitHost ? "" : "; it will be re-created for BUILDKIT_HOST"}`
      : "does not exist yet; the first build that needs it creates it";
    info.push(`build cache: BUILDKIT_HOST=${facts.buildkitHost}; builder "${facts.shimBuilderName}" ${state}`);
  } else {
    info.push("build cache: BUILDKIT_HOST not set");
  }
  await cache.save();

  const plan = planBuildCache(cmd, inv.env, { ...facts, keyDir: () => ({ hasIndex: true }) });
  info.push(`build cache: \`docker build .\` ${verdict(plan)}`);
  for (const notice of plan.notices) problems.push(notice.replace(/^shim: /, ""));
  return { info, problems };
}
