// Placeholder until the shared-cache planner lands (issue 3): build commands pass through unchanged.
import type { DockerInvocation } from "../shim/context.ts";
import type { ExecPlan } from "../shim/plan.ts";

export async function planDockerBuild(inv: DockerInvocation, debug: string[]): Promise<ExecPlan | undefined> {
  return { binary: "docker", args: inv.args, env: inv.envChanges, debug };
}
