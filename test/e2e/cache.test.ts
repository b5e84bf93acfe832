// Issue #3 end to end: the shared build cache through the compiled shim, with the real docker CLI 20.10, buildx,
// dockerd (docker driver, cannot export) and standalone buildkitd daemons from the test bed.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cachedSteps, loadTestbed, makeShimDir, startFreshBuildkitd, type ShimDir } from "./testbed.ts";

const tb = loadTestbed();
const cleanups: (() => void)[] = [];
let shim: ShimDir;
let cacheRoot: string;
const runId = `${process.pid}${Date.now().toString(36)}`;
const imagePrefix = `shim-e2e-cache-${runId}`;

function tempDir(prefix: string, mode = 0o755): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, mode);
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

interface Session {
  readonly env: NodeJS.ProcessEnv;
  readonly name: string;
}

/** A dev-container session: its own HOME / DOCKER_CONFIG (so its own buildx state) sharing one cache root. */
function session(name: string, opts: { buildkitHost?: string; uid?: number } = {}): Session {
  const home = tempDir(`shim-e2e-home-${name}-`);
  if (opts.uid !== undefined) spawnSync("chown", ["-R", `${opts.uid}:${opts.uid}`, home]);
  const env: NodeJS.ProcessEnv = {
    ...shim.env,
    HOME: home,
    DOCKER_CONFIG: join(home, ".docker"),
    XDG_CACHE_HOME: join(home, ".cache"),
    DOCKER_HOST: tb.DOCKER_HOST,
    SHIM_CACHE_DIR: cacheRoot,
    SHIM_BUILDER: `shim-e2e-${name}`,
  };
  delete env.BUILDKIT_HOST;
  delete env.BUILDX_BUILDER;
  delete env.SHIM_DEBUG;
  if (opts.buildkitHost) env.BUILDKIT_HOST = opts.buildkitHost;
  return { env, name };
}

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface Running {
  child: ChildProcess;
  done: Promise<Result>;
  /** stderr so far */
  stderr(): string;
}

function runShim(s: Session, args: string[], cwd: string, opts: { uid?: number; env?: NodeJS.ProcessEnv } = {}): Running {
  const env = { ...s.env, ...opts.env };
  const [file, argv] =
    opts.uid === undefined
      ? [join(shim.dir, "docker"), args]
      : ["setpriv", [`--reuid=${opts.uid}`, `--regid=${opts.uid}`, "--clear-groups", join(shim.dir, "docker"), ...args]];
  const child = spawn(file, argv, { cwd, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Result>((resolve) => child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, done, stderr: () => stderr };
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2400; i++) {
    if (condition()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function build(s: Session, cwd: string, args: string[], opts: { uid?: number; env?: NodeJS.ProcessEnv; mayFail?: boolean } = {}): Promise<Result> {
  const result = await runShim(s, ["build", "--progress=plain", ...args, "."], cwd, opts).done;
  if (result.code !== 0 && !opts.mayFail) console.error(`build in ${s.name} failed:\n${result.stderr}`);
  return result;
}

/** A build context whose RUN steps no daemon has seen before (a nonce), so only an import can make them CACHED. */
function context(lines: string[] = []): { dir: string; nonce: string } {
  const dir = tempDir("shim-e2e-ctx-");
  const nonce = `${runId}-${Math.random().toString(36).slice(2)}`;
  writeFileSync(
    join(dir, "Dockerfile"),
    [`FROM ${tb.TESTBED_BASE_IMAGE}`, `RUN echo "nonce ${nonce}" > /a && sleep 1`, ...lines].join("\n") + "\n",
  );
  return { dir, nonce };
}

/** Every entry of index.json reaches only blobs that exist with the right size. */
function assertStoreValid(keyDir: string): { tag: string; digest: string }[] {
  const index = JSON.parse(readFileSync(join(keyDir, "index.json"), "utf8")) as { manifests: { digest: string; size: number; mediaType: string; annotations?: Record<string, string> }[] };
  const visit = (d: { digest: string; size: number; mediaType: string }) => {
    const path = join(keyDir, "blobs", "sha256", d.digest.slice("sha256:".length));
    expect(existsSync(path), `blob ${d.digest} named by ${keyDir}/index.json`).toBe(true);
    expect(statSync(path).size).toBe(d.size);
    if (d.mediaType.endsWith("index.v1+json") || d.mediaType.endsWith("manifest.v1+json")) {
      const doc = JSON.parse(readFileSync(path, "utf8"));
      for (const child of [...(doc.manifests ?? []), ...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])]) visit(child);
    }
  };
  for (const entry of index.manifests) visit(entry);
  return index.manifests.map((m) => ({ tag: m.annotations?.["org.opencontainers.image.ref.name"] ?? "", digest: m.digest }));
}

/** A second buildkitd with fresh state, stopped when the file's tests end. */
function startBuildkitd(): { host: string; stop(): void } {
  const daemon = startFreshBuildkitd();
  cleanups.push(daemon.stop);
  return daemon;
}

function removeImages(): void {
  const list = spawnSync(tb.TESTBED_DOCKER, ["images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", `reference=${imagePrefix}*`], {
    env: { ...process.env, DOCKER_HOST: tb.DOCKER_HOST },
    encoding: "utf8",
  });
  const images = list.stdout.split("\n").filter(Boolean);
  if (images.length) spawnSync(tb.TESTBED_DOCKER, ["rmi", "-f", ...images], { env: { ...process.env, DOCKER_HOST: tb.DOCKER_HOST } });
}

beforeAll(() => {
  shim = makeShimDir({ docker: tb.TESTBED_DOCKER });
  cleanups.push(() => shim.cleanup());
  chmodSync(shim.dir, 0o755); // the uid tests run the shim as nobody
  cacheRoot = join(tempDir("shim-e2e-cache-"), "root");
  mkdirSync(cacheRoot, { mode: 0o755 });
  cleanups.push(removeImages);
});

afterAll(() => {
  for (const cleanup of cleanups.reverse()) {
    try {
      cleanup();
    } catch (err) {
      console.error(err);
    }
  }
});

describe("shared build cache across sessions", () => {
  let fresh: { host: string; stop(): void };
  beforeAll(() => {
    fresh = startBuildkitd();
  });

  it("session A builds; session B with fresh BuildKit state reports the RUN steps CACHED", async () => {
    const ctx = context([`RUN head -c 200000 /dev/urandom > /b && sleep 1`]);
    const tag = `${imagePrefix}-ab:1`;
    const a = await build(session("a", { buildkitHost: tb.BUILDKIT_HOST }), ctx.dir, ["-t", tag]);
    expect(a.code).toBe(0);
    expect(cachedSteps(a.stderr).filter((s) => s.includes("RUN"))).toEqual([]);
    const keyDir = join(cacheRoot, `${imagePrefix}-ab`);
    expect(assertStoreValid(keyDir).map((e) => e.tag)).toEqual(["latest"]);
    expect(readdirSync(join(keyDir, ".staging"))).toEqual([]);
    // The image was loaded into the docker daemon (the shim added --load for its remote builder).
    expect(spawnSync(tb.TESTBED_DOCKER, ["image", "inspect", tag], { env: { ...process.env, DOCKER_HOST: tb.DOCKER_HOST } }).status).toBe(0);

    const b = await build(session("b", { buildkitHost: fresh.host }), ctx.dir, ["-t", tag]);
    expect(b.code).toBe(0);
    const runSteps = cachedSteps(b.stderr).filter((s) => s.includes("RUN"));
    expect(runSteps).toHaveLength(2);
    expect(runSteps[0]).toContain(ctx.nonce);
  });

  it("8 concurrent builds into one key (and 8 concurrent first uses of the builder) all succeed; the next build hits", async () => {
    const ctx = context(["ARG I=0", `RUN echo "$I" > /i`]);
    const tag = `${imagePrefix}-many`;
    const s = session("many", { buildkitHost: tb.BUILDKIT_HOST });
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => build(s, ctx.dir, ["-t", tag, "--build-arg", `I=${i}`])));
    for (const r of results) expect(r.code).toBe(0);
    const keyDir = join(cacheRoot, tag);
    assertStoreValid(keyDir);
    expect(readdirSync(join(keyDir, ".staging"))).toEqual([]);
    expect(readdirSync(keyDir).filter((n) => n.includes("lock") || n.endsWith(".tmp"))).toEqual([]);

    const next = await build(session("many-next", { buildkitHost: fresh.host }), ctx.dir, ["-t", tag, "--build-arg", "I=0"]);
    expect(next.code).toBe(0);
    expect(cachedSteps(next.stderr).some((step) => step.includes(ctx.nonce))).toBe(true);
  }, 600_000);

  it("a build killed with SIGKILL mid-export leaves the store valid; the leftover staging is cleaned by age", async () => {
    const ctx = context();
    const tag = `${imagePrefix}-kill`;
    const keyDir = join(cacheRoot, tag);
    const s = session("kill", { buildkitHost: tb.BUILDKIT_HOST });
    // A first, complete export, so there is something to lose.
    const first = await build(s, ctx.dir, ["-t", tag]);
    expect(first.code).toBe(0);
    const before = assertStoreValid(keyDir);

    // A big new layer makes the export take long enough to be caught in the middle.
    writeFileSync(join(ctx.dir, "Dockerfile"), readFileSync(join(ctx.dir, "Dockerfile"), "utf8") + `RUN head -c 300000000 /dev/urandom > /big\n`);
    const run = runShim(s, ["build", "--progress=plain", "-t", tag, "."], ctx.dir);
    // Wait until the exporter is writing into the staging dir, then kill the whole process group.
    const ingesting = () =>
      readdirSync(join(keyDir, ".staging")).some((id) => {
        const ingest = join(keyDir, ".staging", id, "ingest");
        return existsSync(ingest) && readdirSync(ingest).length > 0;
      });
    await waitFor(ingesting, "the cache export to start writing");
    process.kill(-run.child.pid!, "SIGKILL");
    const killed = await run.done;
    expect(killed.signal).toBe("SIGKILL");

    expect(assertStoreValid(keyDir)).toEqual(before);
    const leftovers = readdirSync(join(keyDir, ".staging"));
    expect(leftovers.length).toBeGreaterThan(0);
    const old = new Date(Date.now() - 3600_000);
    for (const name of leftovers) {
      for (const p of ["", "ingest", "blobs/sha256"]) {
        if (existsSync(join(keyDir, ".staging", name, p))) utimesSync(join(keyDir, ".staging", name, p), old, old);
      }
    }
    const next = await build(s, ctx.dir, ["-t", tag]);
    expect(next.code).toBe(0);
    for (const name of leftovers) expect(existsSync(join(keyDir, ".staging", name))).toBe(false);
    assertStoreValid(keyDir);
  }, 600_000);

  it("Ctrl-C (SIGINT to the process group) mid-build: the build stops, its staging is removed, the store stays valid", async () => {
    const ctx = context();
    const tag = `${imagePrefix}-int`;
    const keyDir = join(cacheRoot, tag);
    const s = session("int", { buildkitHost: tb.BUILDKIT_HOST });
    expect((await build(s, ctx.dir, ["-t", tag])).code).toBe(0);
    const before = assertStoreValid(keyDir);
    writeFileSync(join(ctx.dir, "Dockerfile"), readFileSync(join(ctx.dir, "Dockerfile"), "utf8") + `RUN sleep 30\n`);
    const run = runShim(s, ["build", "--progress=plain", "-t", tag, "."], ctx.dir);
    await waitFor(() => /^#\d+ \[\d+\/\d+\] RUN sleep 30$/m.test(run.stderr()), "the RUN step to start");
    expect(readdirSync(join(keyDir, ".staging"))).toHaveLength(1);
    process.kill(-run.child.pid!, "SIGINT"); // what a terminal does on Ctrl-C
    const result = await run.done;
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/CANCELED|context canceled/);
    expect(readdirSync(join(keyDir, ".staging"))).toEqual([]);
    expect(assertStoreValid(keyDir)).toEqual(before);
  });

  it("with the plain docker driver (no BUILDKIT_HOST) the build succeeds, imports, and says the cache is read-only", async () => {
    // Docker 20.10's embedded BuildKit v0.8 runs its own, older Dockerfile frontend: its RUN steps get other
    // cache keys than a current buildkitd gives them, so only version-stable steps (COPY onto scratch) can hit.
    const dir = tempDir("shim-e2e-ctx-");
    writeFileSync(join(dir, "payload"), `${runId}-${Math.random()}`);
    writeFileSync(join(dir, "Dockerfile"), "FROM scratch\nCOPY payload /a\nCOPY payload /b\n");
    const tag = `${imagePrefix}-docker`;
    const writer = await build(session("docker-writer", { buildkitHost: tb.BUILDKIT_HOST }), dir, ["-t", tag]);
    expect(writer.code).toBe(0);
    const before = assertStoreValid(join(cacheRoot, tag));

    const r = await build(session("docker-only"), dir, ["-t", `${tag}:2`]);
    expect(r.code).toBe(0);
    const shimLines = r.stderr.split("\n").filter((l) => l.startsWith("shim: "));
    expect(shimLines).toEqual([
      'shim: build cache is read-only here (builder "default" (docker driver) cannot export cache); set BUILDKIT_HOST or use a docker-container builder to save it',
    ]);
    expect(r.stderr).toContain('building with "default" instance using docker driver');
    expect(r.stderr).toMatch(/^#\d+ importing cache manifest from local:/m);
    expect(cachedSteps(r.stderr).filter((s) => s.includes("COPY"))).toHaveLength(2);
    expect(assertStoreValid(join(cacheRoot, tag))).toEqual(before);
  });
});

describe("bad input never loses the cache or fails the build", () => {
  it("a broken index.json left by another tool: one clear line, a working build, the old blobs kept", async () => {
    const ctx = context();
    const tag = `${imagePrefix}-broken`;
    const keyDir = join(cacheRoot, tag);
    const s = session("broken", { buildkitHost: tb.BUILDKIT_HOST });
    expect((await build(s, ctx.dir, ["-t", tag])).code).toBe(0);
    const blobsBefore = readdirSync(join(keyDir, "blobs", "sha256"));
    writeFileSync(join(keyDir, "index.json"), '{"manifests": [ truncated');
    const r = await build(s, ctx.dir, ["-t", tag]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^shim: build cache: index\.json is not valid JSON; kept it as .*index\.json\.broken-\S+ and started a new index$/m);
    assertStoreValid(keyDir);
    for (const blob of blobsBefore) expect(existsSync(join(keyDir, "blobs", "sha256", blob))).toBe(true);
    expect(readdirSync(keyDir).some((n) => n.startsWith("index.json.broken-"))).toBe(true);
  });

  it("tags that would escape the root stay inside it", async () => {
    const ctx = context();
    const s = session("escape", { buildkitHost: tb.BUILDKIT_HOST });

    const r = await build(s, ctx.dir, ["-t", "../../etc", "-t", `${imagePrefix}-escape`], { env: { SHIM_DEBUG: "1" }, mayFail: true });
    // `../../etc` is not a valid image name, so docker refuses it; what matters is where the shim pointed the cache.
    expect(r.stderr).toMatch(new RegExp(`key "_etc" from tag "\\.\\./\\.\\./etc" → ${cacheRoot}/_etc`));
    expect(r.stderr).toContain(`"--cache-to" "type=local,dest=${cacheRoot}/_etc/.staging/`);
    expect(readdirSync(join(cacheRoot, ".."))).toEqual(["root"]); // nothing created beside the root
    const dots = await build(s, ctx.dir, ["-t", ".."], { env: { SHIM_DEBUG: "1" }, mayFail: true });
    expect(dots.stderr).toMatch(/key "ctx-shim-e2e-ctx-[a-z0-9]+-[0-9a-f]{8}" tag "\.\." gives no usable key; from context directory/);
  });

  it("a cache root this uid cannot write: one line, exact passthrough, a working build", async () => {
    const ctx = context();
    const nobody = 65534;
    const s = session("nobody", { buildkitHost: tb.BUILDKIT_HOST, uid: nobody });
    const rootOwned = tempDir("shim-e2e-ro-root-", 0o755);
    const r = await build(s, ctx.dir, ["-t", `${imagePrefix}-ro`], { uid: nobody, env: { SHIM_CACHE_DIR: rootOwned, SHIM_DEBUG: "1" } });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`shim: build cache off: cache root ${rootOwned} is not writable by uid ${nobody}\n`);
    expect(r.stderr).toContain(`shim: debug: exec "${tb.TESTBED_DOCKER}" "build" "--progress=plain" "-t" "${imagePrefix}-ro" "."\n`);
  });

  it("a key created by one uid is writable by another (0777 dirs, 0666 files, whatever the umask)", async () => {
    const ctx = context();
    const tag = `${imagePrefix}-uids`;
    const keyDir = join(cacheRoot, tag);
    chmodSync(cacheRoot, 0o777);
    const asRoot = await build(session("uid-root", { buildkitHost: tb.BUILDKIT_HOST }), ctx.dir, ["-t", tag]);
    expect(asRoot.code).toBe(0);
    for (const d of [keyDir, join(keyDir, "blobs"), join(keyDir, "blobs", "sha256"), join(keyDir, ".staging")]) expect(statSync(d).mode & 0o777).toBe(0o777);
    expect(statSync(join(keyDir, "index.json")).mode & 0o777).toBe(0o666);
    const before = assertStoreValid(keyDir);

    writeFileSync(join(ctx.dir, "Dockerfile"), readFileSync(join(ctx.dir, "Dockerfile"), "utf8") + `RUN echo more > /more\n`);
    const nobody = 65534;
    const r = await build(session("uid-nobody", { buildkitHost: tb.BUILDKIT_HOST, uid: nobody }), ctx.dir, ["-t", tag], {
      uid: nobody,
      env: { SHIM_DEBUG: "1" },
    });
    expect(r.code).toBe(0);
    expect(r.stderr).not.toMatch(/^shim: build cache (not saved|is read-only)/m);
    const after = assertStoreValid(keyDir);
    expect(after).not.toEqual(before);
  });
});

describe("shim doctor", () => {
  it("reports the cache root, the builder `docker build` uses, and whether the cache can be saved", () => {
    const s = session("doctor");
    const doctor = (env: NodeJS.ProcessEnv) => spawnSync(join(shim.dir, "shim"), ["doctor"], { env, encoding: "utf8", timeout: 60_000 }).stdout;
    const readOnly = doctor(s.env);
    expect(readOnly).toContain(`build cache root: ${cacheRoot} (writable)`);
    expect(readOnly).toContain('build cache: `docker build` uses builder "default" (docker driver), which cannot export cache');
    expect(readOnly).toContain("build cache: `docker build .` imports the shared cache but cannot save to it");
    expect(readOnly).toMatch(/^problem: build cache is read-only here .*set BUILDKIT_HOST/m);

    const withHost = doctor({ ...s.env, BUILDKIT_HOST: tb.BUILDKIT_HOST });
    expect(withHost).toContain("build cache: `docker build .` imports and saves the shared cache");
    expect(withHost).not.toMatch(/^problem: build cache/m);

    const off = doctor({ ...s.env, SHIM_CACHE_DIR: join(cacheRoot, "absent") });
    expect(off).toContain(`build cache off: cache root ${join(cacheRoot, "absent")} does not exist (SHIM_CACHE_DIR)`);
  });
});
