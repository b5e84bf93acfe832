// `shim install` / `shim uninstall`: put the shim in front of docker and the compose plugin (originals renamed to
// *.real), idempotently, and reverse it. Planning is pure; applying touches the filesystem.
import { chmodSync, copyFileSync, lstatSync, mkdirSync, renameSync, rmSync, symlinkSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";
import { ShimError } from "./errors.ts";
import { nodeProbe, pluginDirs } from "./real.ts";

export interface InstallTarget {
  /** Where docker / the plugin is found, e.g. /usr/bin/docker. */
  readonly path: string;
  readonly kind: "docker" | "compose-plugin" | "compose-standalone";
}

export interface FsView {
  exists(path: string): boolean;
  /** Real path, or undefined. */
  realpath(path: string): string | undefined;
}

export type InstallStep =
  | { op: "copy-self"; to: string }
  | { op: "rename"; from: string; to: string }
  | { op: "link"; path: string; target: string }
  | { op: "remove"; path: string }
  | { op: "skip"; path: string; why: string };

const present = (fs: FsView, path: string) => fs.exists(path) || fs.exists(`${path}.real`);

/**
 * Targets under a prefix (`--prefix DIR`: `DIR/bin/docker` or `DIR/docker`, compose plugins in
 * `DIR/{lib,libexec}/docker/cli-plugins` or `DIR/cli-plugins`, a standalone `docker-compose` beside docker)
 * or on this system (PATH and the Docker CLI's plugin dirs).
 */
export function installTargets(prefix: string | undefined, env: NodeJS.ProcessEnv, fs: FsView, self: string): InstallTarget[] {
  const targets: InstallTarget[] = [];
  const add = (path: string | undefined, kind: InstallTarget["kind"]) => {
    if (path && !targets.some((t) => t.path === path)) targets.push({ path, kind });
  };
  if (prefix) {
    const binDir = [join(prefix, "bin"), prefix].find((dir) => present(fs, join(dir, "docker"))) ?? join(prefix, "bin");
    add(join(binDir, "docker"), "docker");
    for (const dir of ["lib/docker/cli-plugins", "libexec/docker/cli-plugins", "cli-plugins"]) {
      const plugin = join(prefix, dir, "docker-compose");
      if (present(fs, plugin)) add(plugin, "compose-plugin");
    }
    const standalone = join(binDir, "docker-compose");
    if (present(fs, standalone)) add(standalone, "compose-standalone");
    return targets;
  }
  const onPath = (name: string) =>
    (env.PATH ?? "")
      .split(delimiter)
      .filter(Boolean)
      .map((dir) => join(dir, name))
      .find((p) => present(fs, p));
  add(onPath("docker"), "docker");
  for (const dir of pluginDirs(env)) {
    const plugin = join(dir, "docker-compose");
    if (present(fs, plugin)) add(plugin, "compose-plugin");
  }
  const standalone = onPath("docker-compose");
  if (standalone && fs.realpath(standalone) !== self) add(standalone, "compose-standalone");
  return targets;
}

/** Where the shim binary itself is installed: beside docker under a prefix, else /usr/local/bin. */
export function shimHome(prefix: string | undefined, targets: readonly InstallTarget[]): string {
  const docker = targets.find((t) => t.kind === "docker");
  return prefix && docker ? join(dirname(docker.path), "shim") : "/usr/local/bin/shim";
}

export function planInstall(targets: readonly InstallTarget[], shimPath: string, self: string, fs: FsView): InstallStep[] {
  const steps: InstallStep[] = [];
  if (fs.realpath(shimPath) !== self) steps.push({ op: "copy-self", to: shimPath });
  for (const { path } of targets) {
    const pointsAtShim = fs.exists(path) && (fs.realpath(path) === self || fs.realpath(path) === fs.realpath(shimPath));
    if (pointsAtShim && fs.exists(`${path}.real`)) {
      steps.push({ op: "skip", path, why: "already installed" });
      continue;
    }
    if (!fs.exists(path) && !fs.exists(`${path}.real`)) {
      steps.push({ op: "skip", path, why: "not found" });
      continue;
    }
    if (fs.exists(`${path}.real`)) {
      if (fs.exists(path)) throw new ShimError(`${path} and ${path}.real both exist and ${path} is not the shim; move one of them away`);
    } else {
      steps.push({ op: "rename", from: path, to: `${path}.real` });
    }
    steps.push({ op: "link", path, target: shimPath });
  }
  return steps;
}

export function planUninstall(targets: readonly InstallTarget[], shimPath: string, self: string, fs: FsView): InstallStep[] {
  const steps: InstallStep[] = [];
  for (const { path } of targets) {
    const real = fs.realpath(path);
    const isShim = real !== undefined && (real === self || real === fs.realpath(shimPath));
    if (!isShim || !fs.exists(`${path}.real`)) {
      steps.push({ op: "skip", path, why: "not installed" });
      continue;
    }
    steps.push({ op: "remove", path }, { op: "rename", from: `${path}.real`, to: path });
  }
  return steps;
}

export const nodeFsView: FsView = {
  exists(path) {
    try {
      lstatSync(path);
      return true;
    } catch {
      return false;
    }
  },
  realpath: nodeProbe.realpath,
};

export function applySteps(steps: readonly InstallStep[], self: string): string[] {
  const log: string[] = [];
  for (const step of steps) {
    switch (step.op) {
      case "copy-self": {
        // Copy to a temp name and rename, so a running shim at that path is never half-written.
        const temp = `${step.to}.tmp-${process.pid}`;
        mkdirSync(dirname(step.to), { recursive: true });
        copyFileSync(self, temp);
        chmodSync(temp, 0o755);
        renameSync(temp, step.to);
        log.push(`installed ${step.to}`);
        break;
      }
      case "rename":
        renameSync(step.from, step.to);
        log.push(`moved ${step.from} → ${step.to}`);
        break;
      case "link": {
        const temp = `${step.path}.tmp-${process.pid}`;
        symlinkSync(step.target, temp);
        renameSync(temp, step.path);
        log.push(`linked ${step.path} → ${step.target}`);
        break;
      }
      case "remove":
        rmSync(step.path, { force: true });
        break;
      case "skip":
        log.push(`${step.path}: ${step.why}`);
        break;
    }
  }
  return log;
}
