// Issue #5, the session file services against real daemons from the test bed: the build context served by our
// FileSync sender (with .dockerignore applied from the frontend's patterns, a non-ASCII name, links, modes), the
// result received by our local-exporter receiver, and a type=local cache exported through the shared store and
// imported into a fresh buildkitd.
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, link, lstat, mkdir, mkdtemp, readFile, readlink, readdir, rm, stat, symlink, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectToBuildkit, type BuildkitConnection } from "../../src/buildkit/transport/connect.ts";
import { solve } from "../../src/buildkit/solve/solve.ts";
import { toSolveRequest, type BuildRequestOptions } from "../../src/buildkit/solve/request.ts";
import type { Attachable } from "../../src/buildkit/session/attachable.ts";
import type { StatusResponse } from "../../src/buildkit/proto/gen/buildkit/control_pb.ts";
import { fileSyncAttachable } from "../../src/buildkit/filesync/sender.ts";
import { fileSendAttachable, type ExportTarget } from "../../src/buildkit/filesync/filesend.ts";
import { LocalCacheSession, resolveCacheImport } from "../../src/buildkit/content/cache-session.ts";
import { loadTestbed } from "./testbed.ts";

const tb = loadTestbed();
const BIG_IGNORED_BYTES = 100 * 1024 * 1024;
const cleanups: (() => Promise<unknown>)[] = [];

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

interface BuildOutcome {
  exporterResponse: Record<string, string>;
  /** Bytes of file contents served, by local name and path. */
  served: Map<string, number>;
  vertexes: Map<string, { name: string; cached: boolean; error: string }>;
}

async function build(
  address: string,
  dirs: Record<string, string>,
  request: BuildRequestOptions,
  extra: { attachables?: Attachable[]; exportTargets?: Map<number, ExportTarget> } = {},
): Promise<BuildOutcome> {
  const served = new Map<string, number>();
  const vertexes = new Map<string, { name: string; cached: boolean; error: string }>();
  const connection: BuildkitConnection = await connectToBuildkit({ address, timeoutMs: 20_000 });
  try {
    const attachables: Attachable[] = [
      fileSyncAttachable(dirs, {
        onFileData: ({ dirName, path, bytes }) => served.set(`${dirName}:${path}`, (served.get(`${dirName}:${path}`) ?? 0) + bytes),
      }),
      ...(extra.exportTargets ? [fileSendAttachable(extra.exportTargets)] : []),
      ...(extra.attachables ?? []),
    ];
    const result = await solve(connection, toSolveRequest(request), {
      attachables,
      sharedKey: `shim-e2e-${randomBytes(6).toString("hex")}`, // fresh: the whole context is uploaded
      onStatus: (status: StatusResponse) => {
        for (const v of status.vertexes) vertexes.set(v.digest, { name: v.name, cached: v.cached, error: v.error });
      },
    });
    return { exporterResponse: result.exporterResponse, served, vertexes };
  } finally {
    connection.close();
  }
}

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

describe.each([
  { daemon: "standalone buildkitd", address: tb.BUILDKIT_HOST },
  { daemon: "dockerd 20.10 (embedded BuildKit v0.8)", address: `docker+${tb.DOCKER_HOST}` },
])("build context and local export via $daemon", ({ address }) => {
  let context: string;
  let data: Buffer;

  beforeAll(async () => {
    context = await tempDir("shim-e2e-ctx-");
    data = randomBytes(3 * 1024 * 1024);
    await writeFile(
      join(context, "Dockerfile"),
      [
        `FROM ${tb.TESTBED_BASE_IMAGE} AS check`,
        "COPY . /ctx",
        // Fail the build itself when the ignored files arrived or the non-ASCII file did not.
        `RUN test ! -e /ctx/big.bin && test ! -e /ctx/logs/drop.log && test -e /ctx/logs/keep.log && test "$(cat '/ctx/ö-ü.txt')" = umlaut`,
        "FROM scratch",
        "COPY --from=check /ctx /ctx",
        "",
      ].join("\n"),
    );
    await writeFile(join(context, ".dockerignore"), "big.bin\nlogs\n!logs/keep.log\n");
    await truncate(await writeFile(join(context, "big.bin"), "").then(() => join(context, "big.bin")), BIG_IGNORED_BYTES);
    await writeFile(join(context, "data.bin"), data);
    await writeFile(join(context, "ö-ü.txt"), "umlaut");
    await writeFile(join(context, "run.sh"), "#!/bin/sh\necho hi\n");
    await chmod(join(context, "run.sh"), 0o755);
    await symlink("ö-ü.txt", join(context, "link"));
    await mkdir(join(context, "empty"));
    await mkdir(join(context, "logs"));
    await writeFile(join(context, "logs", "drop.log"), "dropped");
    await writeFile(join(context, "logs", "keep.log"), "kept");
    await writeFile(join(context, "hard1"), "same inode");
    await link(join(context, "hard1"), join(context, "hard2"));
  });

  it("sends the context without .dockerignore'd files and receives the local export intact", async () => {
    const out = join(await tempDir("shim-e2e-out-"), "result");
    const exportTargets = new Map<number, ExportTarget>([[0, { kind: "directory", dest: out }]]);
    const outcome = await build(
      address,
      { context, dockerfile: context },
      { exports: [{ type: "local", attrs: {} }] },
      { exportTargets },
    );

    const run = [...outcome.vertexes.values()].find((v) => v.name.includes("test ! -e /ctx/big.bin"));
    expect(run, "the RUN step that checks the context").toBeDefined();
    expect([run!.cached, run!.error]).toEqual([false, ""]);

    // Never read, let alone sent: the 100 MB ignored file. The total is what the build needed.
    expect(outcome.served.get("context:big.bin")).toBeUndefined();
    const total = [...outcome.served.values()].reduce((a, b) => a + b, 0);
    expect(total).toBeLessThan(data.length + 64 * 1024);
    expect(outcome.served.get("context:data.bin")).toBe(data.length);
    expect(outcome.served.get("context:ö-ü.txt")).toBe(6);
    expect(outcome.served.has("dockerfile:Dockerfile")).toBe(true);

    const ctx = join(out, "ctx");
    expect(sha256(await readFile(join(ctx, "data.bin")))).toBe(sha256(data));
    expect(await readFile(join(ctx, "ö-ü.txt"), "utf8")).toBe("umlaut");
    expect((await stat(join(ctx, "run.sh"))).mode & 0o777).toBe(0o755);
    expect(await readlink(join(ctx, "link"))).toBe("ö-ü.txt");
    expect((await stat(join(ctx, "empty"))).isDirectory()).toBe(true);
    expect(await readdir(join(ctx, "logs"))).toEqual(["keep.log"]);
    expect(existsSync(join(ctx, "big.bin"))).toBe(false);
    expect(await readFile(join(ctx, "hard2"), "utf8")).toBe("same inode");
    expect((await lstat(join(ctx, "hard1"))).ino).toBe((await lstat(join(ctx, "hard2"))).ino);
    // nothing left beside the destination
    expect(await readdir(join(out, ".."))).toEqual(["result"]);
  });
});

/** A buildkitd of our own with an empty state dir, so nothing can be cached from earlier builds. */
async function startFreshBuildkitd(): Promise<{ address: string; stop: () => Promise<void> }> {
  const root = await tempDir("shim-e2e-bkroot-");
  const address = `unix://${join(root, "buildkitd.sock")}`;
  await writeFile(
    join(root, "buildkitd.toml"),
    [
      `root = "${join(root, "state")}"`,
      "[grpc]",
      `  address = ["${address}"]`,
      "[worker.oci]",
      "  enabled = true",
      '  snapshotter = "native"',
      "[worker.containerd]",
      "  enabled = false",
      `[registry."${tb.TESTBED_REGISTRY}"]`,
      "  http = true",
      "  insecure = true",
      "",
    ].join("\n"),
  );
  const child: ChildProcess = spawn(tb.TESTBED_BUILDKITD, ["--config", join(root, "buildkitd.toml")], { stdio: "ignore" });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode === null) child.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (child.exitCode === null) child.kill("SIGKILL");
  };
  cleanups.push(stop);
  for (let i = 0; i < 100; i++) {
    if (existsSync(join(root, "buildkitd.sock"))) {
      try {
        (await connectToBuildkit({ address, timeoutMs: 2000 })).close();
        return { address, stop };
      } catch {
        // not answering yet
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await stop();
  throw new Error("the fresh buildkitd did not come up");
}

describe("type=local cache through the shared store (standalone buildkitd)", () => {
  it("exports into the cache dir only via staging, and a fresh daemon importing it reports CACHED", async () => {
    const context = await tempDir("shim-e2e-cachectx-");
    const nonce = randomBytes(8).toString("hex"); // no daemon can have this step cached already
    await writeFile(
      join(context, "Dockerfile"),
      [`FROM ${tb.TESTBED_BASE_IMAGE}`, `RUN echo ${nonce} > /nonce && head -c 200000 /dev/urandom > /blob`, ""].join("\n"),
    );
    const cacheDir = join(await tempDir("shim-e2e-cache-"), "cache");
    const dirs = { context, dockerfile: context };

    const exportSession = new LocalCacheSession({ imports: [], exports: [{ dest: cacheDir }] });
    const first = await build(
      tb.BUILDKIT_HOST,
      dirs,
      { cacheExports: [{ type: "local", attrs: { dest: cacheDir, mode: "max" } }] },
      { attachables: [exportSession.attachable()] },
    ).catch(async (err) => {
      await exportSession.discard();
      throw err;
    });
    const outcomes = await exportSession.finishCacheExports(first.exporterResponse);
    expect(outcomes.map((o) => o.result.published)).toEqual([["latest"]]);
    expect(outcomes[0]!.result.blobsAdded).toBeGreaterThan(2);
    expect(await readdir(join(cacheDir, ".staging"))).toEqual([]);
    const manifest = JSON.parse(first.exporterResponse["cache.manifest"]!) as { digest: string };
    const digest = await resolveCacheImport(cacheDir);
    expect(digest).toBe(manifest.digest);

    const fresh = await startFreshBuildkitd();
    try {
      const importSession = new LocalCacheSession({ imports: [cacheDir], exports: [] });
      const second = await build(
        fresh.address,
        dirs,
        { cacheImports: [{ type: "local", attrs: { src: cacheDir, digest: digest! } }] },
        { attachables: [importSession.attachable()] },
      );
      const run = [...second.vertexes.values()].find((v) => v.name.includes(`echo ${nonce}`));
      expect(run, "the RUN step's vertex").toBeDefined();
      expect(run!.cached).toBe(true);
      expect(run!.error).toBe("");
    } finally {
      await fresh.stop();
    }
  });
});
