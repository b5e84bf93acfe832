// Compose mode: the shim invoked as `docker-compose`, standalone or as the Docker CLI plugin.
import { realpathSync } from "node:fs";
import { PLUGIN_ENV, type ComposeInvocation } from "../shim/compose-mode.ts";
import type { ExecPlan } from "../shim/plan.ts";
import { findRealBinary } from "../shim/real.ts";
import { planComposeTokens, PLANNED_VAR, plannedFingerprint } from "./invocation.ts";

export function selfPath(): string {
  try {
    return realpathSync(process.execPath);
  } catch {
    return process.execPath;
  }
}

export async function planComposeCommand(inv: ComposeInvocation): Promise<ExecPlan> {
  const pluginForm = Boolean(inv.env[PLUGIN_ENV]);
  const planned = inv.env[PLANNED_VAR];
  if (planned !== undefined) {
    // Docker mode already processed exactly this command (see PLANNED_VAR): never twice.
    const args = inv.args;
    const env = { ...inv.envChanges, [PLANNED_VAR]: null };
    if (pluginForm && planned === plannedFingerprint(args)) return { binary: "compose", args, env, debug: ["compose: processed by docker mode already; passed through"] };
    return planComposeTokens({ ...contextOf(inv, pluginForm), envChanges: env });
  }
  return planComposeTokens(contextOf(inv, pluginForm));
}

function contextOf(inv: ComposeInvocation, pluginForm: boolean) {
  return {
    tokens: inv.args,
    pluginForm,
    binary: "compose" as const,
    env: inv.env,
    settings: inv.settings,
    cwd: inv.cwd,
    realCompose: inv.realCompose,
    envChanges: inv.envChanges,
    realDocker: () => {
      try {
        return findRealBinary({ kind: "docker", invokedAs: "docker", self: selfPath(), env: { ...inv.env, SHIM_REAL_DOCKER: inv.settings.realDocker }, cwd: inv.cwd });
      } catch {
        return undefined;
      }
    },
  };
}
