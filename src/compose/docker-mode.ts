// `docker [globals] compose …` seen in docker mode: processed here (so an unshimmed compose plugin gets the
// processed command too), and marked so that a shimmed plugin passes it through (invocation.ts PLANNED_VAR).
import { ShimError } from "../shim/errors.ts";
import type { DockerInvocation } from "../shim/context.ts";
import { childEnv } from "../shim/exec.ts";
import type { ExecPlan } from "../shim/plan.ts";
import { findRealBinary } from "../shim/real.ts";
import { selfPath } from "./compose-mode.ts";
import { dockerConfigDirOf, findComposePlugin, realPathOf } from "./facts.ts";
import { planComposeTokens } from "./invocation.ts";

/** The compose binary behind the plugin the Docker CLI would run (the real one when the plugin is the shim). */
export function composeBehindPlugin(inv: DockerInvocation): { path?: string; why: string } {
  const env = childEnv(inv.env, inv.envChanges);
  const configFlag = inv.parsed.global.config;
  const plugin = findComposePlugin(dockerConfigDirOf(typeof configFlag === "string" ? configFlag : undefined, env), env);
  if (!plugin) return { why: "no compose CLI plugin installed (docker reports it)" };
  const self = selfPath();
  if (realPathOf(plugin) !== self) return { path: plugin, why: `plugin ${plugin}` };
  try {
    // What the shim as that plugin would run.
    const real = findRealBinary({ kind: "compose", invokedAs: plugin, self, env: { ...env, SHIM_REAL_COMPOSE: inv.settings.realCompose }, cwd: inv.cwd });
    return { path: real, why: `plugin ${plugin} is the shim; real compose ${real}` };
  } catch (err) {
    if (err instanceof ShimError) return { why: `the shim as plugin ${plugin} finds no real compose (${err.message})` };
    throw err;
  }
}

export async function planDockerCompose(inv: DockerInvocation, debug: string[]): Promise<ExecPlan> {
  const compose = composeBehindPlugin(inv);
  if (!compose.path) return { binary: "docker", args: inv.args, env: inv.envChanges, debug: [...debug, `compose: ${compose.why}; passed through`] };
  return planComposeTokens(
    {
      tokens: inv.args,
      pluginForm: true,
      binary: "docker",
      env: inv.env,
      settings: inv.settings,
      cwd: inv.cwd,
      realCompose: compose.path,
      realDocker: () => inv.realDocker,
      envChanges: inv.envChanges,
    },
    [...debug, `compose: ${compose.why}`],
  );
}
