// Context uploads under Bun (the runtime of dist/shim) through both daemons of the test bed. Bun's node:http2
// ignores grpc-go's mid-upload SETTINGS_INITIAL_WINDOW_SIZE raise (oven-sh/bun#41329): without
// src/buildkit/transport/h2-flow-fix.ts a quarter to a third of these uploads hung, and through buildkitd some
// arrived corrupted. Each run uploads ~30 MB in 2,000 files with a fresh shared key, and the build checks the
// md5 of every file, so lost or reordered bytes fail it as surely as a hang.
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadTestbed, repoRoot } from "./testbed.ts";

const tb = loadTestbed();
const bun = join(repoRoot, "node_modules", ".bin", "bun");
const runner = join(repoRoot, "test", "e2e", "bun-upload-runner.ts");
/** Before the fix a quarter to a third of runs failed: ten clean runs per daemon would then be a 2–6 % fluke. */
const RUNS = 10;
const DIRS = 40;
const FILES_PER_DIR = 50;

let context: string;
let expected: string;
let dataBytes = 0;

/** What `find . -type f -name '*.bin' | sort | xargs md5sum | md5sum` prints first, computed locally. */
function contextChecksum(files: { path: string; data: Buffer }[]): string {
  const lines = files
    .map(({ path, data }) => `${createHash("md5").update(data).digest("hex")}  ./${path}\n`)
    .sort((a, b) => (a.slice(34) < b.slice(34) ? -1 : 1));
  return createHash("md5").update(lines.join("")).digest("hex");
}

beforeAll(async () => {
  context = await mkdtemp(join(tmpdir(), "shim-e2e-bun-upload-"));
  const files: { path: string; data: Buffer }[] = [];
  for (let d = 0; d < DIRS; d++) {
    await mkdir(join(context, `d${d}`));
    for (let f = 0; f < FILES_PER_DIR; f++) {
      // Mostly small files, one in twenty up to 400 KB: ~30 MB in all.
      const size = f % 20 === 7 ? randomBytes(4).readUInt32BE() % 400_000 : randomBytes(2).readUInt16BE() % 12_000;
      const path = `d${d}/f${f}.bin`;
      const data = randomBytes(size);
      await writeFile(join(context, path), data);
      files.push({ path, data });
      dataBytes += size;
    }
  }
  expected = contextChecksum(files);
  await writeFile(
    join(context, "Dockerfile"),
    [
      `FROM ${tb.TESTBED_BASE_IMAGE}`,
      "COPY . /ctx",
      "ARG EXPECTED",
      `RUN cd /ctx && test "$(find . -type f -name '*.bin' | sort | xargs md5sum | md5sum | cut -d' ' -f1)" = "$EXPECTED"`,
      "",
    ].join("\n"),
  );
}, 120_000);

afterAll(async () => {
  if (context) await rm(context, { recursive: true, force: true });
});

interface RunOutcome {
  run: number;
  ok: boolean;
  uploadedBytes: number;
  ms: number;
  error?: string;
}

describe.each([
  { daemon: "standalone buildkitd", address: tb.BUILDKIT_HOST },
  { daemon: "dockerd 20.10 (embedded BuildKit v0.8)", address: `docker+${tb.DOCKER_HOST}` },
])("context upload under Bun via $daemon", ({ address }) => {
  it(`completes ${RUNS} full uploads of 2,000 files, each arriving intact`, async () => {
    const { stdout } = await promisify(execFile)(bun, ["run", runner, address, String(RUNS), context, expected], {
      cwd: repoRoot,
      maxBuffer: 1 << 20,
      timeout: RUNS * 60_000,
    });
    const outcomes = stdout
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as RunOutcome);
    expect(outcomes).toHaveLength(RUNS);
    expect(outcomes.filter((outcome) => !outcome.ok)).toEqual([]);
    // Every run sent every byte of the data files (and the Dockerfile, served to both locals).
    for (const outcome of outcomes) expect(outcome.uploadedBytes).toBeGreaterThan(dataBytes);
  });
});
