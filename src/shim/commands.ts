// The shim's own commands (invoked under any name other than docker / docker-compose).
import { realpathSync } from "node:fs";
import pkg from "../../package.json" with { type: "json" };
import { configFilePath, loadConfigFile, resolveSettings, SETTINGS, type SettingName, type Settings } from "./config.ts";
import { ShimError } from "./errors.ts";
import { applySteps, installTargets, nodeFsView, planInstall, planUninstall, shimHome } from "./install.ts";
import { findRealBinary } from "./real.ts";
import { engineJson } from "../engine/client.ts";
import { DEFAULT_DOCKER_HOST, parseDockerHost } from "../engine/host.ts";
import { mappingSource } from "../translate/pathmap.ts";

const USAGE = `Usage: shim COMMAND

A transparent front for the Docker CLI and Compose in dev containers.
Install it as \`docker\` / \`docker-compose\` (see \`shim install\`) and it stays invisible except for
bind-mount path translation, the shared BuildKit cache and session-unique compose projects.

Commands:
  build [OPTIONS] PATH   Build an image with the embedded BuildKit client
  doctor                 Check the configuration, real binaries, daemon and builders
  install [--prefix DIR] Put the shim in front of docker and the compose plugin
  uninstall [--prefix DIR]
  version                Print the shim's version
  docker ARGS…           Run as docker;  compose ARGS…  Run as docker-compose
`;

function selfPath(): string {
  try {
    return realpathSync(process.execPath);
  } catch {
    return process.execPath;
  }
}

function prefixOption(args: readonly string[]): string | undefined {
  let prefix: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--prefix") {
      prefix = args[++i];
      if (!prefix) throw new ShimError("--prefix needs a directory");
    } else if (arg.startsWith("--prefix=")) prefix = arg.slice("--prefix=".length);
    else throw new ShimError(`unknown option ${arg} (usage: shim install [--prefix DIR])`);
  }
  return prefix;
}

function install(args: readonly string[], uninstall: boolean): number {
  const prefix = prefixOption(args);
  const self = selfPath();
  const targets = installTargets(prefix, process.env, nodeFsView, self);
  const shimPath = shimHome(prefix, targets);
  if (!uninstall && !targets.some((t) => t.kind === "docker")) {
    throw new ShimError(prefix ? `no docker CLI at ${prefix}/bin/docker or ${prefix}/docker` : "no docker CLI found on PATH to put the shim in front of");
  }
  const steps = uninstall ? planUninstall(targets, shimPath, self, nodeFsView) : planInstall(targets, shimPath, self, nodeFsView);
  try {
    for (const line of applySteps(steps, self)) process.stdout.write(`${line}\n`);
  } catch (err) {
    throw new ShimError(`${uninstall ? "uninstall" : "install"} failed: ${(err as Error).message}`);
  }
  return 0;
}

async function daemonVersion(host: string | undefined, env: NodeJS.ProcessEnv): Promise<string> {
  const v = await engineJson<{ Version?: string; ApiVersion?: string }>(parseDockerHost(host ?? DEFAULT_DOCKER_HOST, env), {
    method: "GET",
    path: "/version",
    signal: AbortSignal.timeout(3000),
  });
  return `Docker Engine ${v.Version ?? "?"} (API ${v.ApiVersion ?? "?"})`;
}

function settingSource(name: SettingName, env: NodeJS.ProcessEnv, file: Settings): string {
  const envName = SETTINGS[name].env;
  if (env[envName]) return `env ${envName}`;
  if (file[name] !== undefined) return "config file";
  return "";
}

async function doctor(): Promise<number> {
  const env = process.env;
  const problems: string[] = [];
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const problem = (line: string) => {
    problems.push(line);
    process.stdout.write(`problem: ${line}\n`);
  };

  let file: Settings = {};
  try {
    const loaded = await loadConfigFile(env);
    file = loaded.values;
    say(`config: ${loaded.file ?? `${configFilePath(env)} (absent)`}`);
  } catch (err) {
    problem((err as Error).message);
  }
  const settings = resolveSettings(env, file);
  for (const name of Object.keys(settings) as SettingName[]) {
    say(`  ${SETTINGS[name].env}=${settings[name]} (${settingSource(name, env, file)})`);
  }

  const self = selfPath();
  const lookupEnv = { ...env, SHIM_REAL_DOCKER: settings.realDocker, SHIM_REAL_COMPOSE: settings.realCompose };
  let realDocker: string | undefined;
  try {
    realDocker = findRealBinary({ kind: "docker", invokedAs: "docker", self, env: lookupEnv, cwd: process.cwd() });
    say(`real docker: ${realDocker}`);
  } catch (err) {
    problem(`real docker: ${(err as Error).message}`);
  }
  try {
    say(`real compose: ${findRealBinary({ kind: "compose", invokedAs: "docker-compose", self, env: lookupEnv, cwd: process.cwd() })}`);
  } catch {
    say("real compose: not installed (compose mode unavailable)");
  }

  try {
    const source = mappingSource(settings);
    say(`path translation: ${source.kind === "explicit" || source.kind === "workspace" ? source.rules.map((r) => `${r.from}=${r.to}`).join(",") : source.kind}`);
  } catch (err) {
    problem(`path translation: ${(err as Error).message}`);
  }

  const host = settings.dockerHost && !env.DOCKER_HOST ? settings.dockerHost : env.DOCKER_HOST;
  try {
    say(`daemon ${host ?? DEFAULT_DOCKER_HOST}: ${await daemonVersion(host, env)}`);
  } catch (err) {
    problem(`daemon ${host ?? DEFAULT_DOCKER_HOST} is not reachable: ${(err as Error).message}`);
  }

  if (realDocker) {
    const { diagnoseCache } = await import("../cache/doctor.ts");
    const report = await diagnoseCache({ env, settings, realDocker });
    for (const line of report.info) say(line);
    for (const line of report.problems) problem(line);
  }

  say(problems.length ? `${problems.length} problem(s) found` : "no problems found");
  return problems.length ? 1 : 0;
}

export async function runShimCommand(args: readonly string[]): Promise<number> {
  const [command, ...rest] = args;
  switch (command) {
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(USAGE);
      return 0;
    case "version":
    case "--version":
      process.stdout.write(`shim ${pkg.version}\n`);
      return 0;
    case "doctor":
      return doctor();
    case "install":
      return install(rest, false);
    case "uninstall":
      return install(rest, true);
    case "build": {
      const { runBuildCommand } = await import("../buildkit/cli.ts");
      return runBuildCommand(rest);
    }
    default:
      throw new ShimError(`unknown command "${command}" (see \`shim help\`)`);
  }
}
