// Passthrough overhead: median wall time of `docker --version` and `docker ps` (real dockerd) through the
// shim versus the real CLI, measured in the same run, interleaved so both see the same machine load.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const realDocker = process.env.TESTBED_DOCKER ?? "/usr/bin/docker";
const shimBinary = fileURLToPath(new URL("../../dist/shim", import.meta.url));
const runs = Number(process.env.BENCH_RUNS ?? 40);

const dir = mkdtempSync(join(tmpdir(), "shim-bench-"));
symlinkSync(shimBinary, join(dir, "docker"));
const env = { ...process.env, SHIM_REAL_DOCKER: realDocker };

function timeOnce(file: string, args: string[]): number {
  const start = process.hrtime.bigint();
  const result = spawnSync(file, args, { env, stdio: "ignore" });
  if (result.status !== 0) throw new Error(`${file} ${args.join(" ")} exited ${result.status}`);
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

try {
  for (const args of [["--version"], ["ps"]]) {
    const real: number[] = [];
    const shim: number[] = [];
    for (let i = 0; i < 3; i++) {
      timeOnce(realDocker, args);
      timeOnce(join(dir, "docker"), args);
    }
    for (let i = 0; i < runs; i++) {
      real.push(timeOnce(realDocker, args));
      shim.push(timeOnce(join(dir, "docker"), args));
    }
    const ratio = median(shim) / median(real);
    console.log(
      `passthrough docker ${args.join(" ")}: real ${median(real).toFixed(1)} ms, shim ${median(shim).toFixed(1)} ms, ratio ${ratio.toFixed(2)} (target <= 1.5, ${runs} runs)`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
