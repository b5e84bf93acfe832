// Placeholder until compose handling lands (issue 4): `docker compose …` passes through unchanged.
import type { DockerInvocation } from "../shim/context.ts";
import type { ExecPlan } from "../shim/plan.ts";

export async function planDockerCompose(inv: DockerInvocation, debug: string[]): Promise<ExecPlan> {
  return { binary: "docker", args: inv.args, env: inv.envChanges, debug };
}
