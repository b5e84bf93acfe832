// `shim build` end to end, through the compiled binary (dist/shim, so the Bun runtime is what runs), against the
// real daemons of the test bed: the standalone buildkitd v0.32 on its unix socket, an extra buildkitd on TCP
// with TLS (certificates generated here with openssl), a fresh buildkitd for the "second session" cache test,
// dockerd 20.10's embedded BuildKit v0.8, and the local registry. Every output is checked by another tool
// (docker run / load / pull, buildctl, the registry API), and every error case for one clear line, a non-zero
// exit and no stray files.
import { spawn, spawnSync, type SpawnSyncReturns } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadTestbed, shimBinary } from "./testbed.ts";
import { planDirectBuild, runDirectBuild } from "../../src/buildkit/build/direct.ts";

const tb = loadTestbed();
let work: string;
let home: string;
const run = `${process.pid}`;
const images: string[] = [];
const started: { pid: number; dir: string }[] = [];

/** The environment every shim run gets: the test bed's daemons, a private HOME, no inherited BuildKit choice. */
function env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: tb.DOCKER_HOST, HOME: home, NO_COLOR: "1" };
  delete base.BUILDKIT_HOST;
  delete base.BUILDKIT_PROGRESS;
  return { ...base, ...extra };
}

function shimBuild(args: string[], options: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string; uid?: number } = {}): SpawnSyncReturns<string> {
  const command = options.uid === undefined ? shimBinary : "setpriv";
  const argv = options.uid === undefined ? ["build", ...args] : [`--reuid=${options.uid}`, `--regid=${options.uid}`, "--clear-groups", shimBinary, "build", ...args];
  return spawnSync(command, argv, { env: options.env ?? env(), encoding: "utf8", input: options.input ?? "", cwd: options.cwd ?? work, timeout: 240_000 });
}

function docker(...args: string[]): SpawnSyncReturns<string> {
  return spawnSync(tb.TESTBED_DOCKER, args, { env: env(), encoding: "utf8", timeout: 120_000 });
}

/** A context whose RUN prints a marker unique to this call, so nothing is cached unless a test wants it. */
function context(name: string, extraDockerfile = "", files: Record<string, string> = {}): { dir: string; marker: string } {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  const marker = `${name}-${run}-${Math.random().toString(36).slice(2, 8)}`;
  writeFileSync(join(dir, "marker.txt"), marker);
  writeFileSync(join(dir, "Dockerfile"), `FROM ${tb.TESTBED_BASE_IMAGE}\nCOPY marker.txt /marker.txt\nRUN echo "built $(cat /marker.txt)"\n${extraDockerfile}`);
  for (const [file, content] of Object.entries(files)) writeFileSync(join(dir, file), content);
  return { dir, marker };
}

function image(name: string): string {
  const tag = `shim-e2e-build/${name}:${run}`;
  images.push(tag);
  return tag;
}

/** The one `shim:` error line (progress may precede it). */
function errorLine(result: SpawnSyncReturns<string>): string {
  const lines = result.stderr.trimEnd().split("\n");
  return lines[lines.length - 1]!;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

/**
 * Plain progress of a rebuild on a fresh buildkitd that imported the cache: the COPY and RUN steps completed
 * without running (the RUN's own output line never appears). BuildKit reports such a step as CACHED, or — when it
 * must pull the cached layers out of the imported cache first — as the pull followed by DONE.
 */
function expectServedFromCache(progress: string): void {
  for (const step of [/\[2\/3\] COPY marker\.txt \/marker\.txt/, /\[3\/3\] RUN echo "built \$\(cat \/marker\.txt\)"/]) {
    expect(progress).toMatch(new RegExp(`#(\\d+) ${step.source}\\n(#\\1 .*\\n)*#\\1 (CACHED|DONE)`));
  }
  expect(progress).toMatch(/importing cache manifest from local:/);
  expect(progress).not.toMatch(/#\d+ \d+\.\d{3} built /); // the RUN did not run
  expect(progress).toMatch(/cache hits [1-3]\/3 Dockerfile steps/);
}

/** Starts an extra buildkitd (fresh state) listening on `address`, with the test bed's registry settings. */
async function startBuildkitd(name: string, address: string, tls?: { cert: string; key: string; ca: string }): Promise<{ pid: number; dir: string }> {
  const dir = join(work, `buildkitd-${name}`);
  mkdirSync(dir, { recursive: true });
  const config = [
    `root = "${join(dir, "root")}"`,
    "[grpc]",
    `  address = ["${address}"]`,
    ...(tls ? ["  [grpc.tls]", `    cert = "${tls.cert}"`, `    key = "${tls.key}"`, `    ca = "${tls.ca}"`] : []),
    "[worker.oci]",
    "  enabled = true",
    "[worker.containerd]",
    "  enabled = false",
    `[registry."${tb.TESTBED_REGISTRY}"]`,
    "  http = true",
    "  insecure = true",
  ].join("\n");
  writeFileSync(join(dir, "buildkitd.toml"), `${config}\n`);
  const child = spawn(tb.TESTBED_BUILDKITD, ["--config", join(dir, "buildkitd.toml")], {
    stdio: ["ignore", "ignore", "ignore"],
    detached: true,
  });
  const daemon = { pid: child.pid!, dir };
  started.push(daemon);
  child.unref();
  const probe = tls
    ? [`--addr`, address, "--tlscacert", tls.ca, "--tlscert", join(work, "certs", "client.pem"), "--tlskey", join(work, "certs", "client-key.pem"), "--tlsservername", "localhost"]
    : ["--addr", address];
  for (let i = 0; i < 100; i++) {
    if (spawnSync(tb.TESTBED_BUILDCTL, [...probe, "debug", "workers"], { encoding: "utf8" }).status === 0) return daemon;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`buildkitd ${name} did not come up (${address})`);
}

function stopBuildkitd(daemon: { pid: number }): void {
  try {
    process.kill(daemon.pid, "SIGTERM");
  } catch {
    // already gone
  }
}

/** CA, server certificate for 127.0.0.1 and a client certificate, with openssl. */
function makeCertificates(dir: string): { ca: string; cert: string; key: string; clientCert: string; clientKey: string; otherCa: string } {
  mkdirSync(dir, { recursive: true });
  const ssl = (...args: string[]) => {
    const result = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
    if (result.status !== 0) throw new Error(`openssl ${args.join(" ")}: ${result.stderr}`);
  };
  writeFileSync(join(dir, "server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
  writeFileSync(join(dir, "client.ext"), "extendedKeyUsage=clientAuth\n");
  for (const ca of ["ca", "other-ca"]) {
    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", `/CN=shim e2e ${ca}`, "-keyout", `${ca}-key.pem`, "-out", `${ca}.pem`);
  }
  for (const [name, ext] of [["server", "server.ext"], ["client", "client.ext"]] as const) {
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=shim e2e ${name}`, "-keyout", `${name}-key.pem`, "-out", `${name}.csr`);
    ssl("x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", `${name}.pem`);
  }
  return {
    ca: join(dir, "ca.pem"),
    cert: join(dir, "server.pem"),
    key: join(dir, "server-key.pem"),
    clientCert: join(dir, "client.pem"),
    clientKey: join(dir, "client-key.pem"),
    otherCa: join(dir, "other-ca.pem"),
  };
}

beforeAll(() => {
  if (!existsSync(shimBinary)) throw new Error(`${shimBinary} missing: run \`make build\``);
  work = mkdtempSync(join(tmpdir(), "shim-e2e-build-"));
  chmodSync(work, 0o755); // the permission tests run the shim as nobody
  home = join(work, "home");
  mkdirSync(home);
});

afterAll(async () => {
  for (const daemon of started) stopBuildkitd(daemon);
  if (images.length > 0) docker("rmi", "-f", ...images);
  await new Promise((r) => setTimeout(r, 1000)); // let the stopped daemons unmount their snapshots
  // A buildkitd killed with SIGKILL leaves its mounts behind: detach whatever is still mounted under work.
  const mounts = readFileSync("/proc/self/mounts", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[1] ?? "")
    .filter((point) => point.startsWith(`${work}/`))
    .sort()
    .reverse();
  for (const point of mounts) spawnSync("umount", ["-l", point]);
  rmSync(work, { recursive: true, force: true });
});

describe("standalone buildkitd over its unix socket", () => {
  it("builds, loads into dockerd and runs; --iidfile and --metadata-file have buildx's keys", () => {
    const { dir, marker } = context("load");
    const tag = image("load");
    const result = shimBuild(["--buildkit", tb.BUILDKIT_HOST, "--progress=plain", "-t", tag, "--load", "--iidfile", "iid.txt", "--metadata-file", "meta.json", dir]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toMatch(new RegExp(`#\\d+ \\[3/3\\] RUN echo "built`));
    expect(result.stderr).toContain(`built ${marker}`);
    expect(result.stderr).toMatch(/^shim: built in \d+\.\ds: \d+ steps, \d+ cached; cache hits 1\/3 Dockerfile steps \(33%\); image sha256:[0-9a-f]{12} \([0-9.]+MB\)$/m);

    expect(docker("run", "--rm", tag, "cat", "/marker.txt").stdout).toBe(marker);
    const id = docker("image", "inspect", tag, "--format", "{{.Id}}").stdout.trim();
    expect(readFileSync(join(work, "iid.txt"), "utf8")).toBe(id);
    const meta = JSON.parse(readFileSync(join(work, "meta.json"), "utf8"));
    expect(meta["containerimage.config.digest"]).toBe(id);
    expect(meta["containerimage.digest"]).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(meta["containerimage.descriptor"]).toMatchObject({ mediaType: expect.stringContaining("manifest"), digest: meta["containerimage.digest"] });
    expect(meta["image.name"]).toContain(tag);
    expect(meta["buildx.build.ref"]).toMatch(/^shim\/buildkitd\/[0-9a-z]{25}$/);
  });

  it("-o type=oci: buildctl builds FROM the exported layout", () => {
    const { dir, marker } = context("oci");
    const out = join(work, "oci-out");
    mkdirSync(out);
    const result = shimBuild(["--buildkit", tb.BUILDKIT_HOST, "--progress=quiet", "-t", "oci-test:1", "-o", `type=oci,dest=${join(out, "image.tar")}`, dir]);
    expect(result.status, result.stderr).toBe(0);
    expect(readdirSync(out)).toEqual(["image.tar"]);
    const layout = join(work, "oci-layout");
    mkdirSync(layout);
    expect(spawnSync("tar", ["xf", join(out, "image.tar"), "-C", layout]).status).toBe(0);
    const manifest = JSON.parse(readFileSync(join(layout, "index.json"), "utf8")).manifests[0];
    const consumer = join(work, "oci-consumer");
    mkdirSync(consumer);
    writeFileSync(join(consumer, "Dockerfile"), "FROM base\nRUN cat /marker.txt\n");
    const buildctl = spawnSync(
      tb.TESTBED_BUILDCTL,
      ["--addr", tb.BUILDKIT_HOST, "build", "--progress=plain", "--frontend", "dockerfile.v0", "--local", `context=${consumer}`, "--local", `dockerfile=${consumer}`,
        "--oci-layout", `base=${layout}`, "--opt", `context:base=oci-layout://base@${manifest.digest}`, "--no-cache"],
      { encoding: "utf8" },
    );
    expect(buildctl.status, buildctl.stderr).toBe(0);
    expect(buildctl.stderr).toContain(marker);
  });

  it("-o type=docker,dest is accepted by docker load; -o type=tar and -o DIR give the filesystem", () => {
    const { dir, marker } = context("files");
    const tag = image("docker-tar");
    const result = shimBuild([
      "--buildkit", tb.BUILDKIT_HOST, "--progress=plain", "-t", tag,
      "-o", `type=docker,dest=${join(work, "docker.tar")}`, "-o", `type=tar,dest=${join(work, "fs.tar")}`, "-o", join(work, "fs-dir"),
      dir,
    ]);
    expect(result.status, result.stderr).toBe(0);
    expect(docker("load", "-i", join(work, "docker.tar")).status).toBe(0);
    expect(docker("run", "--rm", tag, "cat", "/marker.txt").stdout).toBe(marker);
    expect(spawnSync("tar", ["xOf", join(work, "fs.tar"), "marker.txt"], { encoding: "utf8" }).stdout).toBe(marker);
    expect(readFileSync(join(work, "fs-dir", "marker.txt"), "utf8")).toBe(marker);
    expect(readdirSync(work).filter((f) => f.includes(".shim-"))).toEqual([]);
  });

  it("--push to the local registry: dockerd pulls and runs it", () => {
    const { dir, marker } = context("push");
    const ref = `${tb.TESTBED_REGISTRY}/shim-e2e-build/push:${run}`;
    images.push(ref);
    const result = shimBuild(["--buildkit", tb.BUILDKIT_HOST, "--progress=plain", "-t", ref, "--push", dir]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/pushing manifest for/);
    expect(docker("pull", ref).status).toBe(0);
    expect(docker("run", "--rm", ref, "cat", "/marker.txt").stdout).toBe(marker);
  });

  it("--push to an http registry through -o type=image,registry.insecure=true", () => {
    const { dir } = context("push-insecure");
    const ref = `${tb.TESTBED_REGISTRY}/shim-e2e-build/insecure:${run}`;
    const result = shimBuild(["--buildkit", tb.BUILDKIT_HOST, "--progress=quiet", "-t", ref, "-o", "type=image,push=true,registry.insecure=true", dir]);
    expect(result.status, result.stderr).toBe(0);
    const tags = spawnSync("curl", ["-fsS", `http://${tb.TESTBED_REGISTRY}/v2/shim-e2e-build/insecure/tags/list`], { encoding: "utf8" }).stdout;
    expect(JSON.parse(tags).tags).toContain(run);
  });

  it("a local cache exported in one run is imported by a fresh buildkitd: the steps come from the cache", async () => {
    const { dir } = context("cache");
    const cacheDir = join(work, "cache-dir");
    const first = shimBuild(["--buildkit", tb.BUILDKIT_HOST, "--progress=plain", "--cache-to", `type=local,dest=${cacheDir},mode=max`, dir]);
    expect(first.status, first.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(cacheDir, "index.json"), "utf8")).manifests).toHaveLength(1);
    expect(readdirSync(join(cacheDir, ".staging"))).toEqual([]);

    const fresh = await startBuildkitd("fresh", `unix://${join(work, "fresh.sock")}`);
    try {
      const second = shimBuild(["--buildkit", `unix://${join(work, "fresh.sock")}`, "--progress=plain", "--cache-from", `type=local,src=${cacheDir}`, dir]);
      expect(second.status, second.stderr).toBe(0);
      expectServedFromCache(second.stderr);
    } finally {
      stopBuildkitd(fresh);
    }
  });

  it("secrets, named contexts and a Dockerfile on stdin", () => {
    const lib = join(work, "named-lib");
    mkdirSync(lib, { recursive: true });
    writeFileSync(join(lib, "lib.txt"), "from the named context");
    writeFileSync(join(work, "secret.txt"), "s3cr3t");
    const dockerfile = `FROM ${tb.TESTBED_BASE_IMAGE}\nCOPY --from=lib lib.txt /lib.txt\nRUN --mount=type=secret,id=token cat /run/secrets/token /lib.txt\n`;
    const result = shimBuild(
      ["--buildkit", tb.BUILDKIT_HOST, "--progress=plain", "--no-cache", "--secret", `id=token,src=${join(work, "secret.txt")}`, "--build-context", `lib=${lib}`, "-"],
      { input: dockerfile },
    );
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/s3cr3tfrom the named context/);
    expect(readdirSync(tmpdir()).filter((f) => f.startsWith("shim-build-"))).toEqual([]);
  });

  it("--progress=auto on a terminal is the live view: redrawn frames, FINISHED, cursor restored, summary", () => {
    const { dir } = context("tty", "RUN echo tail-line && sleep 1\n");
    const command = `stty cols 100 rows 40; ${shimBinary} build --buildkit ${tb.BUILDKIT_HOST} ${dir}`;
    const result = spawnSync("script", ["-qfec", command, "/dev/null"], { env: env({ NO_COLOR: "" }), encoding: "utf8", timeout: 120_000 });
    expect(result.status, result.stdout).toBe(0);
    const screen = result.stdout;
    expect(screen).toContain("\x1b[?25l");
    expect(screen).toMatch(/\x1b\[\d+F\[\+\] Building \d+\.\ds \(\d+\/\d+\)/); // a redraw over the previous frame
    expect(screen).toMatch(/\[\+\] Building \d+\.\ds \((\d+)\/\1\) FINISHED/);
    expect(screen).toMatch(/\x1b\[34m => \[4\/4\] RUN echo tail-line && sleep 1 +\d+\.\ds\x1b\[0m/);
    expect(screen.lastIndexOf("\x1b[?25h")).toBeGreaterThan(screen.lastIndexOf("FINISHED"));
    expect(screen).toMatch(/shim: built in \d+\.\ds: /);
    // Frame rows fit the terminal (notices are ordinary lines and may wrap).
    const rows = screen.split(/\r?\n/).map((l) => l.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "")).filter((l) => l.startsWith(" => ") || l.startsWith("[+]"));
    expect(rows.length).toBeGreaterThan(5);
    for (const row of rows) expect(row.length).toBeLessThan(100);
  });

  it("--progress=rawjson prints one SolveStatus per line; -q prints only the image id", () => {
    const { dir } = context("rawjson");
    const raw = shimBuild(["--buildkit", tb.BUILDKIT_HOST, "--progress=rawjson", dir]);
    expect(raw.status, raw.stderr).toBe(0);
    const lines = raw.stderr.trimEnd().split("\n").filter((l) => l.startsWith("{"));
    expect(lines.length).toBeGreaterThan(3);
    const names = lines.flatMap((l) => (JSON.parse(l).vertexes ?? []).map((v: { name: string }) => v.name));
    expect(names).toContain('[3/3] RUN echo "built $(cat /marker.txt)"');

    const tag = image("quiet");
    const quiet = shimBuild(["--buildkit", tb.BUILDKIT_HOST, "-q", "-t", tag, "--load", dir]);
    expect(quiet.status, quiet.stderr).toBe(0);
    expect(quiet.stdout).toBe(`${docker("image", "inspect", tag, "--format", "{{.Id}}").stdout.trim()}\n`);
    expect(quiet.stderr).toBe("");
  });
});

describe("buildkitd over TCP with TLS", () => {
  let certs: ReturnType<typeof makeCertificates>;
  let address: string;
  let daemon: { pid: number };

  beforeAll(async () => {
    certs = makeCertificates(join(work, "certs"));
    address = `tcp://127.0.0.1:${await freePort()}`;
    daemon = await startBuildkitd("tls", address, { cert: certs.cert, key: certs.key, ca: certs.ca });
  });
  afterAll(() => stopBuildkitd(daemon));

  const tlsFlags = () => ["--buildkit", address, "--tlsservername", "localhost", "--tlscert", certs.clientCert, "--tlskey", certs.clientKey];

  it("builds, loads and runs with client certificates", () => {
    const { dir, marker } = context("tls");
    const tag = image("tls");
    const result = shimBuild([...tlsFlags(), "--tlscacert", certs.ca, "--progress=plain", "-t", tag, "--load", dir]);
    expect(result.status, result.stderr).toBe(0);
    expect(docker("run", "--rm", tag, "cat", "/marker.txt").stdout).toBe(marker);
  });

  it("verifies the server against the address's IP when no server name is given", () => {
    const { dir } = context("tls-ip");
    const result = shimBuild(["--buildkit", address, "--tlscert", certs.clientCert, "--tlskey", certs.clientKey, "--tlscacert", certs.ca, dir]);
    expect(result.status, result.stderr).toBe(0);
  });

  it("a certificate from another CA: one clear line, non-zero exit", () => {
    const { dir } = context("tls-mismatch");
    const result = shimBuild([...tlsFlags(), "--tlscacert", certs.otherCa, dir]);
    expect(result.status).not.toBe(0);
    expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(result.stderr).toMatch(new RegExp(`^shim: cannot reach BuildKit: ${address}: .*(certificate|self.signed)`, "i"));
  });

  it("no client certificate: refused by the daemon, one line", () => {
    const { dir } = context("tls-noclient");
    const result = shimBuild(["--buildkit", address, "--tlsservername", "localhost", "--tlscacert", certs.ca, dir]);
    expect(result.status).not.toBe(0);
    expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(result.stderr).toMatch(/^shim: cannot reach BuildKit: tcp:\/\/127\.0\.0\.1:\d+: /);
  });
});

describe("dockerd 20.10's embedded BuildKit", () => {
  it("loads the image by default (moby exporter) and runs it", () => {
    const { dir, marker } = context("dockerd");
    const tag = image("dockerd");
    const result = shimBuild(["--buildkit", "docker", "--progress=plain", "-t", tag, "--iidfile", join(work, "dockerd.iid"), dir]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/#\d+ naming to docker\.io\/shim-e2e-build\/dockerd/);
    expect(docker("run", "--rm", tag, "cat", "/marker.txt").stdout).toBe(marker);
    expect(readFileSync(join(work, "dockerd.iid"), "utf8")).toBe(docker("image", "inspect", tag, "--format", "{{.Id}}").stdout.trim());
  });

  it("--push goes through the daemon (its moby exporter cannot push)", () => {
    const { dir, marker } = context("dockerd-push");
    const ref = `${tb.TESTBED_REGISTRY}/shim-e2e-build/dockerd-push:${run}`;
    images.push(ref);
    const result = shimBuild(["--buildkit", "docker", "--progress=plain", "-t", ref, "--push", dir]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toContain(`shim: pushed ${ref} (through the Docker daemon)`);
    docker("rmi", ref);
    expect(docker("pull", ref).status).toBe(0);
    expect(docker("run", "--rm", ref, "cat", "/marker.txt").stdout).toBe(marker);
  });

  it("an exporter the daemon lacks is explained", () => {
    const { dir } = context("dockerd-oci");
    const result = shimBuild(["--buildkit", "docker", "-o", `type=oci,dest=${join(work, "nope.tar")}`, dir]);
    expect(result.status).toBe(1);
    expect(errorLine(result)).toMatch(/^shim: build failed: .*oci.*use a standalone buildkitd/);
    expect(existsSync(join(work, "nope.tar"))).toBe(false);
  });
});

describe("errors: one clear message, a non-zero exit, no stray files", () => {
  it("no daemon", () => {
    const { dir } = context("nodaemon");
    const result = shimBuild(["--buildkit", `unix://${join(work, "nothing.sock")}`, "--iidfile", join(work, "nodaemon.iid"), dir]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toBe(`shim: cannot reach BuildKit: unix://${join(work, "nothing.sock")}: no such socket\n`);
    expect(existsSync(join(work, "nodaemon.iid"))).toBe(false);
  });

  it("socket permission denied", async () => {
    const sockDir = join(work, "private");
    mkdirSync(sockDir, { mode: 0o755 });
    const socket = join(sockDir, "bk.sock");
    const server = net.createServer((c) => c.destroy());
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    chmodSync(socket, 0o600);
    try {
      const { dir } = context("eacces");
      chmodSync(dir, 0o755);
      const result = shimBuild(["--buildkit", `unix://${socket}`, dir], { uid: 65534, env: env({ HOME: "/nonexistent" }) });
      expect(result.status).not.toBe(0);
      expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
      expect(result.stderr).toMatch(/^shim: cannot reach BuildKit: unix:\/\/.*bk\.sock: .*(EACCES|permission denied)/i);
    } finally {
      server.close();
    }
  });

  it("missing Dockerfile", () => {
    const dir = join(work, "nodockerfile");
    mkdirSync(dir);
    const result = shimBuild(["--buildkit", tb.BUILDKIT_HOST, dir]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toBe(`shim: Dockerfile ${join(dir, "Dockerfile")}: no such file or directory\n`);
  });

  it("failing RUN: its last log lines and exit code, exit 1, no output written", () => {
    const { dir } = context("failing", 'RUN echo "about to fail" && echo "on stderr" >&2 && exit 3\n');
    const out = join(work, "failing-out");
    mkdirSync(out);
    const result = shimBuild(["--buildkit", tb.BUILDKIT_HOST, "--progress=plain", "-o", `type=tar,dest=${join(out, "fs.tar")}`, "--iidfile", join(out, "iid"), "--metadata-file", join(out, "meta.json"), dir]);
    expect(result.status).toBe(1);
    // The report after the progress: the step, then its last log lines (stdout and stderr in arrival order).
    const report = /------\n > \[4\/4\] RUN echo "about to fail".*:\n((?:#\d+ \d\.\d{3} .*\n)+)------\n/.exec(result.stderr);
    expect(report, result.stderr).not.toBeNull();
    expect(report![1]!.trimEnd().split("\n").map((l) => l.replace(/^#\d+ \d\.\d{3} /, "")).sort()).toEqual(["about to fail", "on stderr"]);
    expect(errorLine(result)).toMatch(/^shim: build failed: process .* did not complete successfully: exit code: 3$/);
    expect(readdirSync(out)).toEqual([]);
  });

  it("unreadable file in the context", () => {
    const { dir } = context("unreadable");
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, "secret.key"), "x");
    chmodSync(join(dir, "secret.key"), 0o000);
    writeFileSync(join(dir, "Dockerfile"), `FROM ${tb.TESTBED_BASE_IMAGE}\nCOPY . /src\n`);
    const out = join(work, "unreadable-out");
    mkdirSync(out, { mode: 0o777 });
    chmodSync(out, 0o777);
    const result = shimBuild(["--buildkit", tb.BUILDKIT_HOST, "--progress=plain", "-o", `type=tar,dest=${join(out, "fs.tar")}`, dir], { uid: 65534, env: env({ HOME: "/nonexistent" }) });
    expect(result.status).toBe(1);
    expect(errorLine(result)).toMatch(/^shim: build failed: .*secret\.key.*(permission denied|EACCES)/i);
    expect(readdirSync(out)).toEqual([]);
  });

  it("daemon killed mid-build", async () => {
    const socket = join(work, "doomed.sock");
    const doomed = await startBuildkitd("doomed", `unix://${socket}`);
    const { dir } = context("killed", "RUN sleep 60\n");
    const out = join(work, "killed-out");
    mkdirSync(out);
    const child = spawn(shimBinary, ["build", "--buildkit", `unix://${socket}`, "--progress=plain", "-o", `type=tar,dest=${join(out, "fs.tar")}`, dir], { env: env() });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    for (let i = 0; i < 300 && !/RUN sleep 60/.test(stderr); i++) await new Promise((r) => setTimeout(r, 100));
    expect(stderr).toMatch(/RUN sleep 60/);
    process.kill(doomed.pid, "SIGKILL");
    const t0 = Date.now();
    const code = await exited;
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(code).not.toBe(0);
    const last = stderr.trimEnd().split("\n").pop()!;
    expect(last).toMatch(/^shim: build failed: lost the connection to BuildKit at unix:\/\/.*doomed\.sock \(the daemon stopped/);
    expect(readdirSync(out)).toEqual([]);
  });

  it("Ctrl-C cancels the build on the daemon and exits 130, leaving nothing behind", async () => {
    const { dir } = context("interrupted", "RUN sleep 60\n");
    const out = join(work, "interrupted-out");
    mkdirSync(out);
    const child = spawn(shimBinary, ["build", "--buildkit", tb.BUILDKIT_HOST, "--progress=plain", "-o", `type=tar,dest=${join(out, "fs.tar")}`, "--iidfile", join(out, "iid"), dir], { env: env() });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    for (let i = 0; i < 300 && !/RUN sleep 60/.test(stderr); i++) await new Promise((r) => setTimeout(r, 100));
    child.kill("SIGINT");
    const t0 = Date.now();
    expect(await exited).toBe(130);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(stderr.trimEnd().split("\n").pop()).toBe("shim: build cancelled");
    expect(readdirSync(out)).toEqual([]);
  });
});

describe("the direct route for `docker build` without buildx", () => {
  it("builds on a buildkitd with the shared cache and loads into the daemon; a rebuild imports it", async () => {
    const { dir, marker } = context("direct");
    const tag = image("direct");
    const keyDir = join(work, "cache-root", "direct");
    const io = { cwd: work, handleSignals: false, stdout: new (await import("node:stream")).PassThrough(), stderr: new (await import("node:stream")).PassThrough() };
    let stderr = "";
    io.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const first = planDirectBuild({ args: ["-t", tag, "--progress", "plain", dir], env: env(), cacheDir: keyDir, importFromCache: false, buildkitHost: tb.BUILDKIT_HOST, dockerHost: tb.DOCKER_HOST });
    expect(await runDirectBuild(first, io)).toBe(0);
    expect(docker("run", "--rm", tag, "cat", "/marker.txt").stdout).toBe(marker);
    expect(existsSync(join(keyDir, "index.json"))).toBe(true);

    const fresh = await startBuildkitd("direct-fresh", `unix://${join(work, "direct-fresh.sock")}`);
    try {
      stderr = "";
      const second = planDirectBuild({ args: ["-t", tag, "--progress", "plain", dir], env: env(), cacheDir: keyDir, importFromCache: true, buildkitHost: `unix://${join(work, "direct-fresh.sock")}`, dockerHost: tb.DOCKER_HOST });
      expect(await runDirectBuild(second, io)).toBe(0);
      expectServedFromCache(stderr);
    } finally {
      stopBuildkitd(fresh);
    }
  });

  it("refuses docker build options it cannot honour, suggesting buildx", () => {
    expect(() => planDirectBuild({ args: ["--squash", "."], env: env() })).toThrow(/--squash is not supported by shim's BuildKit client; install the buildx plugin/);
  });
});
