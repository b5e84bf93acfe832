// Compose through the shim (issue #4 item 7).
//  1. Overhead: median wall time of `compose ps` and `compose config` through the shim versus the real compose,
//     interleaved so both see the same load — standalone (`docker-compose` → shim → compose v2) and as the CLI
//     plugin in docker mode (`docker compose` → shim → docker CLI → shim plugin → compose v2) against the real
//     docker CLI running the real plugin. The session has a session id, so the shim really computes the project
//     name (and passes -p). Target ≤ 1.3.
//  2. Cache: `compose build` of a project whose cold time is dominated by RUN steps, cold in session A (empty
//     shared cache), then warm in session B: a second buildkitd with an empty --root, its own HOME/DOCKER_CONFIG/
//     builder, sharing only the cache root. Target warm/cold ≤ 0.1.
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const tb = process.env as Record<string, string>;
const shimBinary = fileURLToPath(new URL("../../dist/shim", import.meta.url));
const compose: string = tb.TESTBED_COMPOSE_V2 || tb.TESTBED_COMPOSE_V5 || "";
if (!compose) throw new Error("no compose v2/v5 in the test bed (testbed.env)");
const runs = Number(process.env.BENCH_RUNS ?? 30);
const work = mkdtempSync(join(tmpdir(), "shim-bench-compose-"));
let failed = false;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function timeOnce(file: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): number {
  const start = process.hrtime.bigint();
  const result = spawnSync(file, args, { env, cwd, stdio: ["ignore", "ignore", "pipe"] });
  if (result.status !== 0) throw new Error(`${file} ${args.join(" ")} exited ${result.status}: ${result.stderr}`);
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function overhead(): void {
  const proj = join(work, "proj");
  mkdirSync(proj);
  writeFileSync(join(proj, "compose.yaml"), `services:\n  app:\n    image: ${tb.TESTBED_BASE_IMAGE}\n    volumes: [./data:/data]\n  db:\n    image: ${tb.TESTBED_BASE_IMAGE}\n`);
  const bin = join(work, "bin");
  const shimConfig = join(work, "shim-config");
  const realConfig = join(work, "real-config");
  for (const d of [bin, join(shimConfig, "cli-plugins"), join(realConfig, "cli-plugins"), join(work, "tmp")]) mkdirSync(d, { recursive: true });
  symlinkSync(shimBinary, join(bin, "docker"));
  symlinkSync(shimBinary, join(bin, "docker-compose"));
  symlinkSync(shimBinary, join(shimConfig, "cli-plugins", "docker-compose"));
  symlinkSync(compose, join(realConfig, "cli-plugins", "docker-compose"));
  const base: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: work,
    XDG_CACHE_HOME: join(work, ".cache"),
    TMPDIR: join(work, "tmp"),
    DOCKER_HOST: tb.DOCKER_HOST,
    SHIM_REAL_DOCKER: tb.TESTBED_DOCKER,
    SHIM_REAL_COMPOSE: compose,
    SHIM_SESSION_ID: "bench",
  };
  const cases: { label: string; real: [string, string[], NodeJS.ProcessEnv]; shim: [string, string[], NodeJS.ProcessEnv] }[] = [];
  for (const cmd of [["ps"], ["config"]]) {
    cases.push({
      label: `docker-compose ${cmd.join(" ")}`,
      real: [compose, cmd, base],
      shim: [join(bin, "docker-compose"), cmd, base],
    });
    cases.push({
      label: `docker compose ${cmd.join(" ")}`,
      real: [tb.TESTBED_DOCKER!, ["compose", ...cmd], { ...base, DOCKER_CONFIG: realConfig }],
      shim: [join(bin, "docker"), ["compose", ...cmd], { ...base, DOCKER_CONFIG: shimConfig }],
    });
  }
  for (const c of cases) {
    const real: number[] = [];
    const shim: number[] = [];
    for (let i = 0; i < 3; i++) {
      timeOnce(...c.real, proj);
      timeOnce(...c.shim, proj);
    }
    for (let i = 0; i < runs; i++) {
      real.push(timeOnce(...c.real, proj));
      shim.push(timeOnce(...c.shim, proj));
    }
    const ratio = median(shim) / median(real);
    if (ratio > 1.3) failed = true;
    console.log(`compose overhead ${c.label}: real ${median(real).toFixed(1)} ms, shim ${median(shim).toFixed(1)} ms, ratio ${ratio.toFixed(2)} (target <= 1.3, ${runs} runs)`);
  }
}

function startBuildkitd(dir: string): { host: string; stop(): void } {
  mkdirSync(dir, { recursive: true });
  const sock = join(dir, "bk.sock");
  writeFileSync(
    join(dir, "buildkitd.toml"),
    `root = "${dir}/root"\n[grpc]\n  address = ["unix://${sock}"]\n[worker.oci]\n  enabled = true\n[worker.containerd]\n  enabled = false\n` +
      `[registry."${tb.TESTBED_REGISTRY}"]\n  http = true\n  insecure = true\n`,
  );
  const daemon = spawn(tb.TESTBED_BUILDKITD!, ["--config", join(dir, "buildkitd.toml")], { stdio: "ignore", detached: true });
  for (let i = 0; i < 100; i++) {
    if (spawnSync(tb.TESTBED_BUILDCTL!, ["--addr", `unix://${sock}`, "debug", "workers"]).status === 0) break;
    spawnSync("sleep", ["0.2"]);
  }
  return {
    host: `unix://${sock}`,
    stop() {
      daemon.kill("SIGTERM");
      spawnSync("sh", ["-c", `for i in $(seq 50); do kill -0 ${daemon.pid} 2>/dev/null || exit 0; sleep 0.1; done; kill -9 ${daemon.pid}`]);
      const mounts = readFileSync("/proc/self/mounts", "utf8").split("\n").map((l) => l.split(" ")[1] ?? "").filter((m) => m.startsWith(dir));
      for (const m of mounts.reverse()) spawnSync("umount", ["-l", m]);
    },
  };
}

function cachedRuns(log: string): number {
  const steps = new Set<string>();
  let hits = 0;
  for (const line of log.split("\n")) {
    const step = /^(#\d+) \[.*\] RUN /.exec(line);
    if (step) steps.add(step[1]!);
    const hit = /^(#\d+) CACHED$/.exec(line);
    if (hit && steps.has(hit[1]!)) hits++;
  }
  return hits;
}

function cache(): void {
  const nonce = `${Date.now()}-${process.pid}`;
  const proj = join(work, "build", "benchproj");
  mkdirSync(join(proj, "app"), { recursive: true });
  writeFileSync(join(proj, "compose.yaml"), "services:\n  app:\n    build: ./app\n");
  writeFileSync(
    join(proj, "app", "Dockerfile"),
    [
      `FROM ${tb.TESTBED_BASE_IMAGE}`,
      `RUN echo "nonce ${nonce}" > /nonce && mkdir /out && head -c 8000000 /dev/urandom > /out/one && sha256sum /out/one && sleep 6`,
      "RUN head -c 8000000 /dev/urandom > /out/two && sha256sum /out/one /out/two > /out/sums && sleep 6",
      "RUN for i in $(seq 1 200); do echo \"unit $i\" > /out/unit-$i.txt; done && tar -czf /out/units.tgz /out/unit-* && sleep 6",
    ].join("\n") + "\n",
  );
  const cacheRoot = join(work, "cache");
  mkdirSync(cacheRoot, { mode: 0o777 });
  const bin = join(work, "bin");
  const session = (name: string, buildkitHost: string): NodeJS.ProcessEnv => ({
    PATH: `${bin}:${process.env.PATH}`,
    HOME: join(work, name),
    DOCKER_CONFIG: join(work, name, ".docker"),
    XDG_CACHE_HOME: join(work, name, ".cache"),
    TMPDIR: join(work, "tmp"),
    DOCKER_HOST: tb.DOCKER_HOST,
    BUILDKIT_HOST: buildkitHost,
    SHIM_REAL_DOCKER: tb.TESTBED_DOCKER,
    SHIM_REAL_COMPOSE: compose,
    SHIM_CACHE_DIR: cacheRoot,
    SHIM_SESSION_ID: name,
    SHIM_BUILDER: `shim-bench-${name}-${process.pid}`,
  });
  const build = (env: NodeJS.ProcessEnv) => {
    const start = process.hrtime.bigint();
    const r = spawnSync(join(bin, "docker-compose"), ["--progress", "plain", "build"], { cwd: proj, env, encoding: "utf8" });
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    if (r.status !== 0) throw new Error(`compose build failed:\n${r.stdout}${r.stderr}`);
    return { seconds, cached: cachedRuns(r.stdout + r.stderr) };
  };
  const fresh = startBuildkitd(join(work, "bk"));
  try {
    const cold = build(session("a", tb.BUILDKIT_HOST!));
    const warm = build(session("b", fresh.host));
    const ratio = warm.seconds / cold.seconds;
    if (ratio > 0.1 || warm.cached !== 3 || cold.cached !== 0) failed = true;
    console.log(
      `compose cache: cold ${cold.seconds.toFixed(1)} s (RUN steps cached: ${cold.cached} of 3), warm ${warm.seconds.toFixed(1)} s in a fresh buildkitd (RUN steps cached: ${warm.cached} of 3), warm/cold ${ratio.toFixed(3)} (target <= 0.1)`,
    );
  } finally {
    fresh.stop();
    spawnSync(tb.TESTBED_DOCKER!, ["rmi", "-f", "benchproj-a-app", "benchproj-b-app"], { env: { ...process.env, DOCKER_HOST: tb.DOCKER_HOST }, stdio: "ignore" });
  }
}

try {
  overhead();
  cache();
} finally {
  rmSync(work, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
