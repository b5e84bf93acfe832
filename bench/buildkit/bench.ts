// See run.sh. `shim build` (dist/shim) against `buildctl build` on one dedicated buildkitd (fresh state, so
// pruning between cold runs disturbs nobody), same Dockerfile, same context, equivalent outputs:
//   cold  — cache pruned and a new session shared key: the whole context is uploaded and every step runs;
//   warm  — one file changed since the last build: one file is uploaded, COPY and RUN run again;
//   warm+tar — as warm, and the result filesystem (~200 MB) comes back as a tarball (FileSend).
// Runs alternate between the tools. Prints per-scenario medians, the wall-time ratio (target ≤ 1.0), the
// context upload rate BuildKit reports, and each client's peak RSS (GNU time).
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const shim = join(root, "dist", "shim");
const env = process.env;
const RUNS = Number(env.BENCH_RUNS ?? 3);
const FILES = 5000;
const BYTES = 200_000_000;

function makeContext(dir: string): void {
  writeFileSync(join(dir, "Dockerfile"), `FROM ${env.TESTBED_BASE_IMAGE}\nCOPY . /ctx\nRUN find /ctx -type f | wc -l && du -s /ctx\n`);
  const perFile = Math.floor(BYTES / FILES);
  for (let d = 0; d < 50; d++) {
    const sub = join(dir, `dir${d}`);
    mkdirSync(sub);
    // Sizes vary around the mean (1 KB … 79 KB) so both small-file and large-file paths are exercised.
    for (let i = 0; i < FILES / 50; i++) writeFileSync(join(sub, `f${i}.bin`), randomBytes(1000 + ((i * 7919) % (2 * perFile - 2000))));
  }
}

interface Sample {
  wallMs: number;
  peakRssKb: number;
  uploadMBps?: number;
  /** Why the run did not succeed (then it is left out of the medians and counted). */
  failure?: string;
}

/** A run that takes longer than this is stopped and counted as failed. */
const RUN_TIMEOUT_MS = Number(env.BENCH_RUN_TIMEOUT_MS ?? 180_000);

function measure(argv: string[], extraEnv: NodeJS.ProcessEnv, timeFile: string): Promise<Sample> {
  return new Promise((resolve) => {
    const start = performance.now();
    // Its own process group, so a stuck run can be interrupted as a whole (GNU time ignores SIGINT itself).
    const child = spawn("/usr/bin/time", ["-f", "%M", "-o", timeFile, ...argv], { env: { ...env, ...extraEnv }, stdio: ["ignore", "ignore", "pipe"], detached: true });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => process.kill(-child.pid!, "SIGINT"), RUN_TIMEOUT_MS);
    child.on("exit", (code) => {
      clearTimeout(timer);
      const wallMs = performance.now() - start;
      if (code !== 0) {
        const reason = stderr.trimEnd().split("\n").pop() ?? `exit ${code}`;
        console.log(`  ${argv[0]!.split("/").pop()} failed after ${(wallMs / 1000).toFixed(1)}s: ${reason}`);
        return resolve({ wallMs, peakRssKb: 0, failure: reason });
      }
      const peakRssKb = Number(readFileSync(timeFile, "utf8").trim().split("\n").pop());
      const upload = /transferring context: ([\d.]+)(B|kB|MB|GB) ([\d.]+)s done/.exec(stderr);
      const units: Record<string, number> = { B: 1e-6, kB: 1e-3, MB: 1, GB: 1e3 };
      const uploadMBps = upload && Number(upload[3]) > 0 ? (Number(upload[1]) * units[upload[2]!]!) / Number(upload[3]) : undefined;
      resolve({ wallMs, peakRssKb, ...(uploadMBps !== undefined ? { uploadMBps } : {}) });
    });
  });
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

const work = mkdtempSync(join(tmpdir(), "shim-bench-buildkit-"));
const context = join(work, "context");
mkdirSync(context);
let daemonPid: number | undefined;
/** Stops the dedicated buildkitd, detaches what it left mounted and removes everything (also on Ctrl-C). */
const cleanup = () => {
  if (daemonPid) {
    try {
      process.kill(daemonPid, "SIGTERM");
    } catch {
      // gone already
    }
    spawnSync("sleep", ["1.5"]); // let it unmount its snapshots
  }
  for (const line of readFileSync("/proc/self/mounts", "utf8").split("\n")) {
    const point = line.split(" ")[1];
    if (point?.startsWith(`${work}/`)) spawnSync("umount", ["-l", point]);
  }
  rmSync(work, { recursive: true, force: true });
};
process.on("SIGINT", () => {
  cleanup();
  process.exit(130);
});

try {
  process.stdout.write(`generating ${FILES} files / ${BYTES / 1e6} MB in ${context} … `);
  makeContext(context);
  console.log("done");

  // A dedicated buildkitd (its own root), configured for the test bed's http registry.
  const socket = join(work, "buildkitd.sock");
  writeFileSync(
    join(work, "buildkitd.toml"),
    `root = "${join(work, "bk-root")}"\n[grpc]\n  address = ["unix://${socket}"]\n[worker.oci]\n  enabled = true\n[worker.containerd]\n  enabled = false\n` +
      `[registry."${env.TESTBED_REGISTRY}"]\n  http = true\n  insecure = true\n`,
  );
  const daemon = spawn(env.TESTBED_BUILDKITD!, ["--config", join(work, "buildkitd.toml")], { stdio: "ignore", detached: true });
  daemonPid = daemon.pid;
  daemon.unref();
  const addr = `unix://${socket}`;
  const buildctl = (...args: string[]) => spawnSync(env.TESTBED_BUILDCTL!, ["--addr", addr, ...args], { encoding: "utf8" });
  for (let i = 0; i < 100 && buildctl("debug", "workers").status !== 0; i++) await new Promise((r) => setTimeout(r, 200));

  const out = join(work, "out.tar");
  const commands = {
    shim: (tar: boolean) => [shim, "build", "--buildkit", addr, "--progress=plain", ...(tar ? ["-o", `type=tar,dest=${out}`] : []), context],
    buildctl: (tar: boolean) => [
      env.TESTBED_BUILDCTL!, "--addr", addr, "build", "--progress=plain", "--frontend", "dockerfile.v0",
      "--local", `context=${context}`, "--local", `dockerfile=${context}`, ...(tar ? ["--output", `type=tar,dest=${out}`] : []),
    ],
  } as const;
  const tools = ["shim", "buildctl"] as const;
  type Tool = (typeof tools)[number];
  const results: Record<string, Record<Tool, Sample[]>> = {};
  const record = (scenario: string, tool: Tool, sample: Sample) => {
    results[scenario] ??= { shim: [], buildctl: [] };
    results[scenario]![tool].push(sample);
  };
  const timeFile = join(work, "time.txt");
  const touch = () => appendFileSync(join(context, "dir7", "f3.bin"), randomBytes(16));

  for (let i = 0; i < RUNS; i++) {
    const order = i % 2 === 0 ? tools : ([...tools].reverse() as Tool[]);
    for (const tool of order) {
      buildctl("prune", "--all");
      // A new XDG_CACHE_HOME gives shim a new machine id, hence a new session shared key: nothing to diff against.
      const fresh = join(work, `xdg-${tool}-${i}`);
      record("cold", tool, await measure(commands[tool](false), { XDG_CACHE_HOME: fresh }, timeFile));
    }
  }
  const xdg = { XDG_CACHE_HOME: join(work, "xdg-warm") };
  for (const tool of tools) await measure(commands[tool](false), xdg, timeFile); // prime both
  for (const [scenario, tar] of [["warm", false], ["warm+tar", true]] as const) {
    for (let i = 0; i < RUNS; i++) {
      const order = i % 2 === 0 ? tools : ([...tools].reverse() as Tool[]);
      for (const tool of order) {
        touch();
        record(scenario, tool, await measure(commands[tool](tar), xdg, timeFile));
        rmSync(out, { force: true });
      }
    }
  }

  console.log(`\n${RUNS} runs per tool and scenario, medians; BuildKit ${buildctl("debug", "info").stdout.match(/v[\d.]+/)?.[0] ?? ""} (${addr})`);
  console.log("scenario   shim wall   buildctl wall   ratio   shim upload   buildctl upload   shim peak RSS   buildctl peak RSS   failed runs");
  for (const [scenario, byTool] of Object.entries(results)) {
    const ok = (t: Tool) => byTool[t].filter((s) => s.failure === undefined);
    const wall = (t: Tool) => (ok(t).length > 0 ? median(ok(t).map((s) => s.wallMs)) : Number.NaN);
    const upload = (t: Tool) => {
      const rates = ok(t).map((s) => s.uploadMBps).filter((r): r is number => r !== undefined);
      return rates.length > 0 ? `${median(rates).toFixed(0)} MB/s` : "n/a";
    };
    const rss = (t: Tool) => (ok(t).length > 0 ? `${(Math.max(...ok(t).map((s) => s.peakRssKb)) / 1024).toFixed(0)} MB` : "n/a");
    const secs = (ms: number) => (Number.isNaN(ms) ? "n/a" : `${(ms / 1000).toFixed(2)}s`);
    const ratio = wall("shim") / wall("buildctl");
    console.log(
      `${scenario.padEnd(9)}  ${secs(wall("shim")).padStart(9)}  ${secs(wall("buildctl")).padStart(14)}  ` +
        `${(Number.isNaN(ratio) ? "n/a" : ratio.toFixed(2)).padStart(6)}  ${upload("shim").padStart(12)}  ${upload("buildctl").padStart(16)}  ` +
        `${rss("shim").padStart(14)}  ${rss("buildctl").padStart(17)}   shim ${byTool.shim.length - ok("shim").length}/${byTool.shim.length}, ` +
        `buildctl ${byTool.buildctl.length - ok("buildctl").length}/${byTool.buildctl.length}`,
    );
  }
} finally {
  cleanup();
}
