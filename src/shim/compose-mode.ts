// compose mode: the shim invoked as `docker-compose` — standalone, or as the Docker CLI plugin.
import type { Settings } from "./config.ts";
import type { ExecPlan } from "./plan.ts";

export interface ComposeInvocation {
  /** argv[1..] as received. */
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly settings: Settings;
  readonly cwd: string;
  /** Path of the real compose binary. */
  readonly realCompose: string;
  readonly envChanges: Readonly<Record<string, string | null>>;
}

/** Set by the Docker CLI when it runs a plugin (docker/cli cli-plugins/manager). */
export const PLUGIN_ENV = "DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND";

/**
 * The arguments the real compose must receive to behave as if it had been invoked directly.
 * Launched by the Docker CLI, compose expects the CLI's argv (`[docker globals] compose …`); launched directly
 * (standalone) it must not get a leading `compose`, which a plugin binary would read as a service command.
 */
export function composeArgs(args: readonly string[], env: NodeJS.ProcessEnv): readonly string[] {
  if (args[0] === "docker-cli-plugin-metadata") return args;
  if (!env[PLUGIN_ENV] && args[0] === "compose") return args.slice(1);
  return args;
}

export async function planCompose(inv: ComposeInvocation): Promise<ExecPlan> {
  const args = composeArgs(inv.args, inv.env);
  if (args[0] === "docker-cli-plugin-metadata") return { binary: "compose", args, env: inv.envChanges, debug: ["plugin metadata: passed through"] };
  const { planComposeCommand } = await import("../compose/compose-mode.ts");
  return planComposeCommand({ ...inv, args });
}
