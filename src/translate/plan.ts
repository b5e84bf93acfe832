// Which docker commands carry bind mounts, where their options end, and the rewritten argv.
import { flagTable, rewriteValues, scanOptions, type DockerArgv, type FlagTable, type ScannedOption } from "../shim/argv.ts";
import { translateMountSpec, translateVolumeSpec } from "./mounts.ts";
import { sourceKind, type HostView } from "./source.ts";
import type { PathRule } from "./pathmap.ts";

/** Builds a table on first use: most docker commands never need these, and startup time is the shim's budget. */
function lazyTable(build: () => FlagTable): () => FlagTable {
  let table: FlagTable | undefined;
  return () => (table ??= build());
}

/** `docker run` / `docker create` options (docker/cli cli/command/container/opts.go, run.go, create.go). */
export const runFlags = lazyTable(() => flagTable(
  "--add-host=", "--annotation=", "-a,--attach=", "--blkio-weight=", "--blkio-weight-device=", "--cap-add=", "--cap-drop=",
  "--cgroup-parent=", "--cgroupns=", "--cidfile=", "--cpu-count=", "--cpu-percent=", "--cpu-period=", "--cpu-quota=",
  "--cpu-rt-period=", "--cpu-rt-runtime=", "-c,--cpu-shares=", "--cpus=", "--cpuset-cpus=", "--cpuset-mems=",
  "--detach-keys=", "--device=", "--device-cgroup-rule=", "--device-read-bps=", "--device-read-iops=",
  "--device-write-bps=", "--device-write-iops=", "--dns=", "--dns-opt=", "--dns-option=", "--dns-search=",
  "--domainname=", "--entrypoint=", "-e,--env=", "--env-file=", "--expose=", "--gpus=", "--group-add=",
  "--health-cmd=", "--health-interval=", "--health-retries=", "--health-start-interval=", "--health-start-period=",
  "--health-timeout=", "-h,--hostname=", "--io-maxbandwidth=", "--io-maxiops=", "--ip=", "--ip6=", "--ipc=",
  "--isolation=", "--kernel-memory=", "-l,--label=", "--label-file=", "--link=", "--link-local-ip=", "--log-driver=",
  "--log-opt=", "--mac-address=", "-m,--memory=", "--memory-reservation=", "--memory-swap=", "--memory-swappiness=",
  "--mount=", "--name=", "--network=", "--net=", "--network-alias=", "--net-alias=", "--oom-score-adj=", "--pid=",
  "--pids-limit=", "--platform=", "-p,--publish=", "--pull=", "--restart=", "--runtime=", "--security-opt=",
  "--shm-size=", "--stop-signal=", "--stop-timeout=", "--storage-opt=", "--sysctl=", "--tmpfs=", "--ulimit=",
  "-u,--user=", "--userns=", "--uts=", "-v,--volume=", "--volume-driver=", "--volumes-from=", "-w,--workdir=",
  "-d,--detach", "-i,--interactive", "-t,--tty", "--init", "--no-healthcheck", "--oom-kill-disable", "--privileged",
  "-P,--publish-all", "--read-only", "--rm", "--sig-proxy", "-q,--quiet", "--disable-content-trust", "--help",
  "--use-api-socket",
));

const SERVICE_COMMON = [
  "--cap-add=", "--cap-drop=", "--credential-spec=", "--dns=", "--dns-option=", "--dns-search=", "--endpoint-mode=",
  "--entrypoint=", "--generic-resource=", "--health-cmd=", "--health-interval=", "--health-retries=",
  "--health-start-interval=", "--health-start-period=", "--health-timeout=", "--hostname=", "--isolation=",
  "--limit-cpu=", "--limit-memory=", "--limit-pids=", "--log-driver=", "--log-opt=", "--max-concurrent=",
  "--oom-score-adj=", "--reserve-cpu=", "--reserve-memory=", "--restart-condition=", "--restart-delay=",
  "--restart-max-attempts=", "--restart-window=", "--rollback-delay=", "--rollback-failure-action=",
  "--rollback-max-failure-ratio=", "--rollback-monitor=", "--rollback-order=", "--rollback-parallelism=",
  "--stop-grace-period=", "--stop-signal=", "--ulimit=", "--update-delay=", "--update-failure-action=",
  "--update-max-failure-ratio=", "--update-monitor=", "--update-order=", "--update-parallelism=", "-u,--user=",
  "-w,--workdir=", "--replicas=", "--replicas-max-per-node=", "-d,--detach", "--init", "--no-healthcheck",
  "--no-resolve-image", "-q,--quiet", "--read-only", "-t,--tty", "--with-registry-auth", "--help",
];

/** `docker service create` options (docker/cli cli/command/service/opts.go, create.go). */
export const serviceCreateFlags = lazyTable(() => flagTable(
  ...SERVICE_COMMON, "--config=", "--constraint=", "--container-label=", "-e,--env=", "--env-file=", "--group=", "--host=",
  "-l,--label=", "--mode=", "--mount=", "--name=", "--network=", "--placement-pref=", "-p,--publish=", "--secret=",
  "--sysctl=",
));

/** `docker service update` options (cli/command/service/update.go). */
export const serviceUpdateFlags = lazyTable(() => flagTable(
  ...SERVICE_COMMON, "--args=", "--config-add=", "--config-rm=", "--constraint-add=", "--constraint-rm=",
  "--container-label-add=", "--container-label-rm=", "--dns-add=", "--dns-rm=", "--dns-option-add=", "--dns-option-rm=",
  "--dns-search-add=", "--dns-search-rm=", "--env-add=", "--env-rm=", "--generic-resource-add=",
  "--generic-resource-rm=", "--group-add=", "--group-rm=", "--host-add=", "--host-rm=", "--image=", "--label-add=",
  "--label-rm=", "--mount-add=", "--mount-rm=", "--network-add=", "--network-rm=", "--placement-pref-add=",
  "--placement-pref-rm=", "--publish-add=", "--publish-rm=", "--secret-add=", "--secret-rm=", "--sysctl-add=",
  "--sysctl-rm=", "--ulimit-add=", "--ulimit-rm=", "--force", "--rollback",
  // `--mount` is not an update flag in docker; accepting it here only lets the shim translate it consistently.
  "--mount=",
));

export interface MountForm {
  /** Index of the first option token. */
  readonly start: number;
  readonly table: FlagTable;
  /** Options may follow positional arguments (cobra's default; `service update`). */
  readonly interspersed: boolean;
  readonly label: string;
}

/** Finds the command form that carries mounts, or undefined for every other command. */
export function mountForm(parsed: DockerArgv): MountForm | undefined {
  const { argv, commandIndex, command } = parsed;
  const next = argv[commandIndex + 1];
  if (command === "run" || command === "create") return { start: commandIndex + 1, table: runFlags(), interspersed: false, label: command };
  if (command === "container" && (next === "run" || next === "create")) {
    return { start: commandIndex + 2, table: runFlags(), interspersed: false, label: `container ${next}` };
  }
  if (command === "service" && next === "create") {
    return { start: commandIndex + 2, table: serviceCreateFlags(), interspersed: false, label: "service create" };
  }
  if (command === "service" && next === "update") {
    return { start: commandIndex + 2, table: serviceUpdateFlags(), interspersed: true, label: "service update" };
  }
  return undefined;
}

const VOLUME_OPTIONS = new Set(["volume"]);
const MOUNT_OPTIONS = new Set(["mount", "mount-add"]);

export interface MountScan {
  readonly options: ScannedOption[];
  /** A flag the shim does not know; the options after it cannot be told apart from the container's arguments. */
  readonly unknownFlag?: string;
}

/** The -v/--mount options in the option region only (never the container's own command or arguments). */
export function scanMountOptions(argv: readonly string[], form: MountForm): MountScan {
  const options: ScannedOption[] = [];
  let at = form.start;
  for (;;) {
    const scan = scanOptions(argv, form.table, at);
    options.push(...scan.options.filter((o) => VOLUME_OPTIONS.has(o.name) || MOUNT_OPTIONS.has(o.name)));
    if (scan.unknownFlag) return { options, unknownFlag: scan.unknownFlag };
    if (!form.interspersed || scan.terminator !== undefined || scan.positional >= argv.length) return { options };
    at = scan.positional + 1;
  }
}

/** True when some mount option could name a host path (so a path mapping is worth computing). */
export function mayNeedMapping(options: readonly ScannedOption[]): boolean {
  return options.some((o) => {
    const value = o.value ?? "";
    if (VOLUME_OPTIONS.has(o.name)) return value.includes(":") && sourceKind(value) !== "named" && sourceKind(value) !== "windows";
    return /(^|,)"?(type)=bind/i.test(value);
  });
}

export interface TranslationChange {
  readonly flag: string;
  readonly from: string;
  readonly to: string;
  readonly why: string;
}

export interface TranslationPlan {
  readonly args: string[];
  readonly changes: TranslationChange[];
}

/** Rewrites the mount options of argv (pure, given the host view and the rules). */
export function planTranslation(argv: readonly string[], options: readonly ScannedOption[], view: HostView, rules: readonly PathRule[]): TranslationPlan {
  const rewrites: { option: ScannedOption; value: string }[] = [];
  const changes: TranslationChange[] = [];
  for (const option of options) {
    const value = option.value ?? "";
    const translated = VOLUME_OPTIONS.has(option.name) ? translateVolumeSpec(value, view, rules) : translateMountSpec(value, view, rules);
    if (!translated || translated.value === value) continue;
    rewrites.push({ option, value: translated.value });
    changes.push({ flag: option.flag, from: value, to: translated.value, why: translated.why });
  }
  return { args: rewriteValues(argv, rewrites), changes };
}
