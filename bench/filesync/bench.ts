// See run.sh. Each build uses a fresh session shared key, so the daemon receives the whole context every time.
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectToBuildkit } from "../../src/buildkit/transport/connect.ts";
import { solve } from "../../src/buildkit/solve/solve.ts";
import { toSolveRequest } from "../../src/buildkit/solve/request.ts";
import { fileSyncAttachable } from "../../src/buildkit/filesync/sender.ts";

const SMALL_FILES = 4950;
const SMALL_BYTES = 4096;
const LARGE_FILES = 50;
const LARGE_BYTES = 3_600_000;

async function makeContext(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "shim-bench-filesync-"));
  await writeFile(join(dir, "Dockerfile"), "FROM scratch\nCOPY . /ctx\n");
  const large = randomBytes(LARGE_BYTES);
  for (let d = 0; d < 50; d++) {
    const sub = join(dir, `dir${d}`);
    await mkdir(sub);
    await Promise.all(Array.from({ length: SMALL_FILES / 50 }, (_, i) => writeFile(join(sub, `f${i}.txt`), randomBytes(SMALL_BYTES))));
    if (d < LARGE_FILES) await writeFile(join(sub, "large.bin"), Buffer.concat([large.subarray(0, LARGE_BYTES - 8), randomBytes(8)]));
  }
  return dir;
}

async function upload(address: string, context: string, chunkBytes: number): Promise<{ ms: number; bytes: number; peakRss: number; startRss: number }> {
  const connection = await connectToBuildkit({ address, timeoutMs: 20_000 });
  let bytes = 0;
  const startRss = process.memoryUsage().rss;
  let peakRss = startRss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);
  const start = performance.now();
  try {
    await solve(connection, toSolveRequest({}), {
      attachables: [fileSyncAttachable({ context, dockerfile: context }, { chunkBytes, onFileData: (e) => (bytes += e.bytes) })],
      sharedKey: `bench-${randomBytes(6).toString("hex")}`,
    });
    return { ms: performance.now() - start, bytes, peakRss, startRss };
  } finally {
    clearInterval(sampler);
    connection.close();
  }
}

const context = await makeContext();
try {
  const targets = [
    ["buildkitd", process.env.BUILDKIT_HOST!],
    ["dockerd", `docker+${process.env.DOCKER_HOST!}`],
  ] as const;
  const sizes = (process.argv[2] ?? "32,64,128,256").split(",").map((k) => Number(k) * 1024);
  for (const [name, address] of targets) {
    for (const chunk of sizes) {
      const runs = [];
      for (let i = 0; i < 3; i++) runs.push(await upload(address, context, chunk));
      const ms = runs.map((r) => r.ms).sort((a, b) => a - b);
      console.log(
        `${name.padEnd(9)} chunk ${String(chunk / 1024).padStart(3)} KiB: ${(runs[0]!.bytes / 1e6).toFixed(0)} MB in ` +
          `${ms.map((m) => m.toFixed(0)).join(" / ")} ms (median ${(runs[0]!.bytes / 1e6 / (ms[1]! / 1000)).toFixed(0)} MB/s), ` +
          `RSS ${(runs[0]!.startRss / 1e6).toFixed(0)} MB before, peak ${(Math.max(...runs.map((r) => r.peakRss)) / 1e6).toFixed(0)} MB`,
      );
    }
  }
} finally {
  await rm(context, { recursive: true, force: true });
}
