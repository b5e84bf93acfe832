// Placeholder until compose handling lands (issue 4): compose commands pass through unchanged.
import type { ComposeInvocation } from "../shim/compose-mode.ts";
import type { ExecPlan } from "../shim/plan.ts";

export async function planComposeCommand(inv: ComposeInvocation): Promise<ExecPlan> {
  return { binary: "compose", args: inv.args, env: inv.envChanges, debug: [] };
}
