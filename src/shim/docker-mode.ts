// docker mode: invisible except for the documented rewrites (socket routing, bind-mount paths, build cache, compose).
import { realpathSync } from "node:fs";
import { choseDaemon, parseDockerArgv } from "./argv.ts";
import type { Settings } from "./config.ts";
import type { DockerInvocation } from "./context.ts";
import type { ExecPlan } from "./plan.ts";
import { pathRules } from "../translate/rules.ts";
import { mayNeedMapping, mountForm, planTranslation, scanMountOptions } from "../translate/plan.ts";
import type { HostView } from "../translate/source.ts";

/** Environment changes for the child: route to SHIM_DOCKER_HOST unless the user chose a daemon (pure). */
export function socketRouting(invocationArgs: readonly string[], env: NodeJS.ProcessEnv, settings: Settings): Record<string, string> {
  if (!settings.dockerHost) return {};
  return choseDaemon(parseDockerArgv(invocationArgs), env) ? {} : { DOCKER_HOST: settings.dockerHost };
}

export function hostView(cwd: string, env: NodeJS.ProcessEnv): HostView {
  return {
    cwd,
    home: env.HOME,
    realpath(path) {
      try {
        return realpathSync(path);
      } catch {
        return undefined;
      }
    },
  };
}

/** The daemon the command will talk to, as a DOCKER_HOST-style string (undefined = the default socket). */
function effectiveHost(inv: DockerInvocation): string | undefined {
  const host = inv.parsed.global.host;
  if (typeof host === "string") return host;
  return inv.envChanges.DOCKER_HOST ?? inv.env.DOCKER_HOST ?? undefined;
}

/** First words of every build form (`build`, `image build`, `builder build`, `buildx build|b`); cheap pre-filter. */
const BUILD_COMMAND_WORDS = new Set(["build", "image", "builder", "buildx"]);

export async function planDocker(inv: DockerInvocation): Promise<ExecPlan> {
  const debug: string[] = [];
  const env = inv.envChanges;
  if (env.DOCKER_HOST) debug.push(`DOCKER_HOST=${env.DOCKER_HOST} (SHIM_DOCKER_HOST; no daemon chosen)`);

  const form = mountForm(inv.parsed);
  if (form) {
    const scan = scanMountOptions(inv.args, form);
    const notices: string[] = [];
    if (scan.unknownFlag) {
      debug.push(`unknown option ${scan.unknownFlag} for docker ${form.label}: the options after it are passed through untranslated`);
    }
    if (!mayNeedMapping(scan.options)) return { binary: "docker", args: inv.args, env, debug, notices };
    const rules = await pathRules(inv.settings, effectiveHost(inv), inv.env, debug);
    const plan = planTranslation(inv.args, scan.options, hostView(inv.cwd, inv.env), rules);
    for (const change of plan.changes) debug.push(`${change.flag} ${change.from} → ${change.to} (${change.why})`);
    return { binary: "docker", args: plan.args, env, debug, notices };
  }

  if (inv.parsed.command === "compose") {
    const { planDockerCompose } = await import("../compose/docker-mode.ts");
    return planDockerCompose(inv, debug);
  }

  if (BUILD_COMMAND_WORDS.has(inv.parsed.command ?? "")) {
    const { planDockerBuild } = await import("../cache/docker-build.ts");
    const plan = await planDockerBuild(inv, debug);
    if (plan) return plan;
  }

  return { binary: "docker", args: inv.args, env, debug };
}
