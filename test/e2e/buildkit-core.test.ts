// The BuildKit client core against the real daemons of the test bed: standalone buildkitd v0.32 on its unix
// socket, dockerd 20.10's embedded BuildKit v0.8 through /grpc + /session, and buildkitd reached through
// `buildctl dial-stdio` in a container. Covers version probing, session registration and health checks,
// full dockerfile.v0 solves without an exporter, failures, cancellation, and the Bun runtime.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import net from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadTestbed, repoRoot } from "./testbed.ts";
import { connectBuildkit, type BuildkitClient } from "../../src/buildkit/solve/client.ts";
import { toSolveRequest } from "../../src/buildkit/solve/request.ts";
import { connectToBuildkit, UNKNOWN_OLD_VERSION } from "../../src/buildkit/transport/connect.ts";
import { DEFAULT_BUILDKIT_SOCKET } from "../../src/buildkit/transport/address.ts";
import { startSession } from "../../src/buildkit/session/session.ts";
import { authAttachable } from "../../src/buildkit/session/auth.ts";
import { fileSyncAttachable } from "../../src/buildkit/filesync/sender.ts";
import { Control, type StatusResponse } from "../../src/buildkit/proto/gen/buildkit/control_pb.ts";
import { GrpcCode } from "../../src/buildkit/session/attachable.ts";

const tb = loadTestbed();
const dockerEnv = { ...process.env, DOCKER_HOST: tb.DOCKER_HOST };
const dialStdioContainer = `shim-e2e-dialstdio-${process.pid}`;
let workDir: string;

/** A build context whose Dockerfile copies a file and prints it plus a per-run marker (so nothing is cached). */
function makeContext(name: string, dockerfile: string, files: Record<string, string> = {}): string {
  const dir = join(workDir, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "Dockerfile"), dockerfile);
  for (const [file, content] of Object.entries(files)) writeFileSync(join(dir, file), content);
  return dir;
}

/** Collects what the CLI's progress UI would see. */
function statusRecorder() {
  const logs: string[] = [];
  const vertexes = new Map<string, { name: string; completed: boolean; cached: boolean; error: string }>();
  return {
    logs,
    vertexes,
    onStatus(status: StatusResponse) {
      for (const v of status.vertexes) {
        vertexes.set(v.digest, { name: v.name, completed: v.completed !== undefined, cached: v.cached, error: v.error });
      }
      for (const log of status.logs) logs.push(Buffer.from(log.msg).toString("utf8"));
    },
  };
}

beforeAll(() => {
  workDir = mkdtempSync(join(tmpdir(), "shim-bk-core-"));
  // A plain container with buildctl and buildkitd's socket mounted: the docker-container:// transport's target.
  const run = spawnSync(
    tb.TESTBED_DOCKER,
    [
      "run", "-d", "--name", dialStdioContainer,
      "-v", `${tb.TESTBED_BUILDCTL}:/usr/bin/buildctl:ro`,
      "-v", `${tb.BUILDKIT_HOST.replace(/^unix:\/\//, "")}:/run/buildkit/buildkitd.sock`,
      tb.TESTBED_BASE_IMAGE, "sleep", "3600",
    ],
    { env: dockerEnv, encoding: "utf8" },
  );
  if (run.status !== 0) throw new Error(`cannot start the dial-stdio container: ${run.stderr}`);
});

afterAll(() => {
  spawnSync(tb.TESTBED_DOCKER, ["rm", "-f", dialStdioContainer], { env: dockerEnv });
  rmSync(workDir, { recursive: true, force: true });
});

const daemons = [
  { name: "buildkitd v0.32 (unix socket)", address: () => tb.BUILDKIT_HOST, via: "buildkitd", infoSupported: true },
  { name: "dockerd 20.10 (/grpc + /session)", address: () => `docker+${tb.DOCKER_HOST}`, via: "docker", infoSupported: false },
  { name: "buildkitd via docker-container:// (dial-stdio)", address: () => `docker-container://${dialStdioContainer}`, via: "buildkitd", infoSupported: true },
] as const;

describe.each(daemons)("$name", (daemon) => {
  let client: BuildkitClient;
  beforeAll(async () => {
    client = await connectBuildkit({ address: daemon.address(), dockerHost: tb.DOCKER_HOST });
  });
  afterAll(() => client?.close());

  it("reports its version through Info, or through ListWorkers when Info is unimplemented", async () => {
    const info = await client.info();
    expect(client.via).toBe(daemon.via);
    expect(info.infoSupported).toBe(daemon.infoSupported);
    if (daemon.infoSupported) {
      // The testbed builds buildkitd with its version stamped in.
      const version = spawnSync(tb.TESTBED_BUILDKITD, ["--version"], { encoding: "utf8" }).stdout;
      expect(version).toContain(info.version);
      expect(info.revision).toMatch(/^[0-9a-f]{40}$/);
    } else {
      expect(info.version).toBe(UNKNOWN_OLD_VERSION);
    }
    const workers = await client.workers();
    expect(workers.length).toBeGreaterThan(0);
    expect(workers[0]!.platforms.map((p) => p.OS)).toContain("linux");
  });

  it("builds a Dockerfile with the context served over FileSync (no exporter)", async () => {
    const marker = `marker-${Date.now()}-${Math.random().toString(36).slice(2)}`;
    const context = makeContext(
      `ok-${daemon.via}-${marker}`,
      `FROM ${tb.TESTBED_BASE_IMAGE}\nCOPY greeting.txt /greeting.txt\nRUN cat /greeting.txt && echo ${marker}\n`,
      { "greeting.txt": "hello from the context\n" },
    );
    const status = statusRecorder();
    const result = await client.solve(toSolveRequest({}), {
      attachables: [fileSyncAttachable({ context, dockerfile: context })],
      sharedKey: `e2e-${daemon.via}`,
      onStatus: status.onStatus,
    });
    expect(result.exporterResponse).toEqual({});
    expect(result.ref).toMatch(/^[0-9a-z]{25}$/);
    const output = status.logs.join("");
    expect(output).toContain("hello from the context");
    expect(output).toContain(marker);
    const names = [...status.vertexes.values()].filter((v) => v.completed && !v.error).map((v) => v.name);
    expect(names.some((n) => n.includes("COPY greeting.txt /greeting.txt"))).toBe(true);
    expect(names.some((n) => n.includes(`echo ${marker}`))).toBe(true);
    // The build left cache records behind, which DiskUsage lists.
    const usage = await client.diskUsage();
    expect(usage.some((record) => record.Size > 0n && record.ID !== "")).toBe(true);
  });

  it("a failing RUN rejects the solve with the daemon's error and marks the vertex", async () => {
    const context = makeContext(`fail-${daemon.via}-${Date.now()}`, `FROM ${tb.TESTBED_BASE_IMAGE}\nRUN echo about-to-fail-${Date.now()} && exit 3\n`);
    const status = statusRecorder();
    const failure = client.solve(toSolveRequest({}), {
      attachables: [fileSyncAttachable({ context, dockerfile: context })],
      sharedKey: `e2e-fail-${daemon.via}`,
      onStatus: status.onStatus,
    });
    await expect(failure).rejects.toMatchObject({ code: GrpcCode.UNKNOWN, message: expect.stringContaining("exit code: 3") });
    expect([...status.vertexes.values()].some((v) => v.error.includes("exit code: 3"))).toBe(true);
  });

  it("aborting cancels the build on the daemon", async () => {
    const context = makeContext(`cancel-${daemon.via}-${Date.now()}`, `FROM ${tb.TESTBED_BASE_IMAGE}\nRUN echo started-${Date.now()} && sleep 60\n`);
    const status = statusRecorder();
    const controller = new AbortController();
    const started = Date.now();
    const build = client.solve(toSolveRequest({}), {
      attachables: [fileSyncAttachable({ context, dockerfile: context })],
      sharedKey: `e2e-cancel-${daemon.via}`,
      signal: controller.signal,
      onStatus: (s) => {
        status.onStatus(s);
        if (status.logs.some((l) => l.includes("started-"))) controller.abort();
      },
    });
    await expect(build).rejects.toMatchObject({ code: GrpcCode.CANCELLED });
    expect(Date.now() - started).toBeLessThan(30_000);
    // The daemon killed the RUN: its vertex ends with a cancellation error (seen on the Status stream).
    expect([...status.vertexes.values()].some((v) => v.name.includes("sleep 60") && /cancel/i.test(v.error))).toBe(true);
  });
});

describe("sessions", () => {
  it.each([
    // v0.8 checks health every 1 s; v0.11+ every 5 s.
    { name: "dockerd 20.10", address: () => `docker+${tb.DOCKER_HOST}`, checks: 2, withinMs: 6000 },
    { name: "buildkitd v0.32", address: () => tb.BUILDKIT_HOST, checks: 1, withinMs: 12000 },
  ])("$name registers the session and its health checks are answered", async ({ address, checks, withinMs }) => {
    const connection = await connectToBuildkit({ address: address(), dockerHost: tb.DOCKER_HOST });
    try {
      const calls: string[] = [];
      let reached!: () => void;
      const enoughChecks = new Promise<void>((resolve) => (reached = resolve));
      const session = await startSession(connection, {
        sharedKey: "e2e-session",
        attachables: [],
        onCall: (method) => {
          calls.push(method);
          if (calls.filter((m) => m === "/grpc.health.v1.Health/Check").length >= checks) reached();
        },
      });
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), withinMs)));
      const outcome = await Promise.race([enoughChecks, session.done.then(() => "session ended" as const), timedOut]);
      clearTimeout(timer);
      expect(outcome).toBeUndefined(); // enough health checks arrived while the session stayed up
      const closing = Date.now();
      await session.close(5000);
      await session.done;
      expect(Date.now() - closing).toBeLessThan(4000); // the daemon answered our half-close; no timeout needed
    } finally {
      connection.close();
    }
  });

  it("Info is UNIMPLEMENTED on dockerd 20.10's BuildKit (why the ListWorkers fallback exists)", async () => {
    const connection = await connectToBuildkit({ address: `docker+${tb.DOCKER_HOST}` });
    try {
      await expect(connection.control.call(Control.method.info, {})).rejects.toMatchObject({ code: GrpcCode.UNIMPLEMENTED });
    } finally {
      connection.close();
    }
  });
});

describe("address resolution", () => {
  it("BUILDKIT_HOST is used when no address is given", async () => {
    const lines: string[] = [];
    const client = await connectBuildkit({ env: { BUILDKIT_HOST: tb.BUILDKIT_HOST }, debug: (l) => lines.push(l) });
    client.close();
    expect(client.address).toBe(tb.BUILDKIT_HOST);
    expect(lines[0]).toBe(`buildkit: trying ${tb.BUILDKIT_HOST} (BUILDKIT_HOST)`);
  });

  it.skipIf(existsSync(DEFAULT_BUILDKIT_SOCKET.slice("unix://".length)))("falls back from the missing default socket to the Docker daemon and says why", async () => {
    const lines: string[] = [];
    const client = await connectBuildkit({ env: { DOCKER_HOST: tb.DOCKER_HOST }, debug: (l) => lines.push(l) });
    client.close();
    expect(client.via).toBe("docker");
    expect(lines).toEqual([
      "buildkit: trying unix:///run/buildkit/buildkitd.sock (default socket)",
      "buildkit: unix:///run/buildkit/buildkitd.sock failed: no such socket",
      `buildkit: trying docker (${tb.DOCKER_HOST}) (docker daemon)`,
      `buildkit: connected to docker (${tb.DOCKER_HOST}), BuildKit ${UNKNOWN_OLD_VERSION}`,
    ]);
  });

  it("docker-container:// into a container without buildctl reports the daemon's exec error", async () => {
    const name = `shim-e2e-nobuildctl-${process.pid}`;
    const run = spawnSync(tb.TESTBED_DOCKER, ["run", "-d", "--name", name, tb.TESTBED_BASE_IMAGE, "sleep", "600"], { env: dockerEnv, encoding: "utf8" });
    expect(run.status).toBe(0);
    try {
      await expect(connectBuildkit({ address: `docker-container://${name}`, dockerHost: tb.DOCKER_HOST })).rejects.toThrow(
        /buildctl dial-stdio in shim-e2e-nobuildctl-\d+: .*"buildctl": executable file not found/,
      );
    } finally {
      spawnSync(tb.TESTBED_DOCKER, ["rm", "-f", name], { env: dockerEnv });
    }
  });

  it("an explicit address that does not answer fails with every attempt listed, without falling back", async () => {
    const missing = join(workDir, "nothing.sock");
    await expect(connectBuildkit({ address: `unix://${missing}`, env: { DOCKER_HOST: tb.DOCKER_HOST } })).rejects.toThrow(
      `cannot reach BuildKit: unix://${missing}: no such socket`,
    );
  });
});

describe("under Bun", () => {
  it("the dockerd /grpc + /session path builds (bytes after the 101, server session resume)", () => {
    const context = makeContext(`bun-${Date.now()}`, `FROM ${tb.TESTBED_BASE_IMAGE}\nCOPY a.txt /a.txt\nRUN cat /a.txt\n`, { "a.txt": `bun-run-${Date.now()}\n` });
    const script = join(workDir, "bun-solve.ts");
    writeFileSync(
      script,
      `import { connectBuildkit } from ${JSON.stringify(join(repoRoot, "src/buildkit/solve/client.ts"))};
import { toSolveRequest } from ${JSON.stringify(join(repoRoot, "src/buildkit/solve/request.ts"))};
import { fileSyncAttachable } from ${JSON.stringify(join(repoRoot, "src/buildkit/filesync/sender.ts"))};
const client = await connectBuildkit({ address: process.argv[2] });
let logs = "";
await client.solve(toSolveRequest({}), {
  attachables: [fileSyncAttachable({ context: process.argv[3], dockerfile: process.argv[3] })],
  sharedKey: "e2e-bun",
  onStatus: (s) => { for (const l of s.logs) logs += Buffer.from(l.msg).toString(); },
});
client.close();
process.stdout.write(logs);
`,
    );
    for (const address of [`docker+${tb.DOCKER_HOST}`, tb.BUILDKIT_HOST]) {
      const run = spawnSync(join(repoRoot, "node_modules/.bin/bun"), [script, address, context], { encoding: "utf8", timeout: 120_000 });
      expect(run.stderr).toBe("");
      expect(run.status).toBe(0);
      expect(run.stdout).toMatch(/bun-run-\d+/);
    }
  });
});

/** Python's crypt makes the bcrypt hash the registry's htpasswd wants (no htpasswd tool in the test bed). */
const htpasswdLine = (user: string, password: string) =>
  spawnSync("python3", ["-c", `import crypt; print("${user}:" + crypt.crypt("${password}", crypt.mksalt(crypt.METHOD_BLOWFISH)))`], {
    encoding: "utf8",
  });
const canRunAuthRegistry = spawnSync("docker-registry", ["--version"]).status === 0 && htpasswdLine("u", "p").status === 0;

describe.skipIf(!canRunAuthRegistry)("registry credentials through the Auth attachable", () => {
  let registry: ChildProcess;
  let registryHost: string;
  let dockerConfig: string;
  const image = () => `${registryHost}/shim/e2e-auth:${process.pid}`;

  beforeAll(async () => {
    const dir = join(workDir, "auth-registry");
    mkdirSync(dir, { recursive: true });
    const port = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, "127.0.0.1", () => {
        const { port } = probe.address() as net.AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    registryHost = `127.0.0.1:${port}`;
    writeFileSync(join(dir, "htpasswd"), htpasswdLine("shimuser", "shimpass").stdout);
    writeFileSync(
      join(dir, "config.yml"),
      `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: ${registryHost}\n` +
        `auth:\n  htpasswd:\n    realm: shim-e2e\n    path: ${dir}/htpasswd\n`,
    );
    registry = spawn("docker-registry", ["serve", join(dir, "config.yml")], { stdio: "ignore" });
    for (let i = 0; i < 100; i++) {
      const status = await fetch(`http://${registryHost}/v2/`).then((r) => r.status, () => 0);
      if (status === 401) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    dockerConfig = join(workDir, "docker-config");
    mkdirSync(dockerConfig, { recursive: true });
    writeFileSync(join(dockerConfig, "config.json"), JSON.stringify({ auths: { [registryHost]: { auth: Buffer.from("shimuser:shimpass").toString("base64") } } }));
  });
  afterAll(() => {
    registry?.kill();
  });

  async function build(address: string, dockerfile: string, exports: { type: string; attrs: Record<string, string> }[], configDir: string) {
    const context = makeContext(`auth-${Date.now()}-${Math.random().toString(36).slice(2)}`, dockerfile);
    const lines: string[] = [];
    const client = await connectBuildkit({ address, dockerHost: tb.DOCKER_HOST });
    try {
      await client.solve(toSolveRequest({ exports }), {
        attachables: [fileSyncAttachable({ context, dockerfile: context }), authAttachable({ env: { DOCKER_CONFIG: configDir } })],
        sharedKey: "e2e-auth",
        debug: (line) => lines.push(line),
      });
    } finally {
      client.close();
    }
    return lines;
  }

  it("buildkitd pushes to a registry that requires a login", async () => {
    const push = [{ type: "image", attrs: { name: image(), push: "true", "registry.insecure": "true" } }];
    const dockerfile = `FROM ${tb.TESTBED_BASE_IMAGE}\nRUN echo pushed-${Date.now()} > /marker\n`;
    await expect(build(tb.BUILDKIT_HOST, dockerfile, push, join(workDir, "no-docker-config"))).rejects.toThrow(/401 Unauthorized/);
    const lines = await build(tb.BUILDKIT_HOST, dockerfile, push, dockerConfig);
    expect(lines).toContain("session: daemon called /moby.filesync.v1.Auth/Credentials");
    const tags = await fetch(`http://${registryHost}/v2/shim/e2e-auth/tags/list`, {
      headers: { authorization: `Basic ${Buffer.from("shimuser:shimpass").toString("base64")}` },
    }).then((r) => r.json() as Promise<{ tags: string[] }>);
    expect(tags.tags).toContain(String(process.pid));
  });

  it("dockerd 20.10 pulls the base image from it with the credentials, and not without", async () => {
    const dockerfile = `FROM ${image()}\nRUN cat /marker && echo pulled-${Date.now()}\n`;
    await expect(build(`docker+${tb.DOCKER_HOST}`, dockerfile, [], join(workDir, "no-docker-config"))).rejects.toThrow(/401 Unauthorized/);
    const lines = await build(`docker+${tb.DOCKER_HOST}`, dockerfile, [], dockerConfig);
    expect(lines).toContain("session: daemon called /moby.filesync.v1.Auth/Credentials");
  });
});
