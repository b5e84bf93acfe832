// One build, end to end: check the inputs, connect, plan the exporters for that daemon, wire the session
// (context upload, outputs, cache store, credentials, secrets), show progress, then publish the results.
//
// Cleanup guarantees, on success, failure and Ctrl-C alike: temporary dirs removed, partial outputs removed
// (see outputs.ts), cache staging discarded, and --iidfile / --metadata-file written only after success.
// Ctrl-C cancels the Solve call (the daemon cancels the build) and the command exits 130; a second Ctrl-C
// exits at once.
import { access, mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { constants } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ShimError } from "../../shim/errors.ts";
import { connectBuildkit, type BuildkitClient } from "../solve/client.ts";
import { toSolveRequest, type TypedEntry } from "../solve/request.ts";
import { GrpcCode, GrpcError, type Attachable } from "../session/attachable.ts";
import { authAttachable } from "../session/auth.ts";
import { secretsAttachable } from "../session/secrets.ts";
import { fileSyncAttachable } from "../filesync/sender.ts";
import { fileSendAttachable } from "../filesync/filesend.ts";
import { LocalCacheSession, resolveCacheImport, DEFAULT_CACHE_TAG } from "../content/cache-session.ts";
import { createDisplay, type ProgressDisplay } from "../progress/display.ts";
import { summaryLine } from "../progress/summary.ts";
import type { BuildFlags, CacheSpec } from "./flags.ts";
import { planBuild, planExports, type BuildPlan, type PlannedExport } from "./plan.ts";
import { imageIdFrom, metadataDocument, prepareOutputs, writeFileAtomically } from "./outputs.ts";
import { dockerHostFor, imageSize, pushImage } from "./daemon.ts";
import { machineId, sharedKeyFor } from "./sharedkey.ts";

type Env = Readonly<Record<string, string | undefined>>;

export interface BuildIo {
  env: Env;
  cwd: string;
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number; rows?: number };
  /** Install SIGINT/SIGTERM handlers for the duration of the build (the CLI does; tests may not). */
  handleSignals?: boolean;
}

export interface BuildExtras {
  /** No output option given: load into the Docker daemon (the `docker build` route) instead of warning. */
  loadByDefault?: boolean;
  /** Cache entries added by a planner (the shared cache of issue #3), on top of the user's. */
  cacheImports?: readonly CacheSpec[];
  cacheExports?: readonly CacheSpec[];
}

/** Exit status of a build cancelled with Ctrl-C (128 + SIGINT), as shells report it. */
export const CANCELLED_EXIT = 130;

export async function runBuild(flags: BuildFlags, io: BuildIo, extras: BuildExtras = {}): Promise<number> {
  const started = Date.now();
  const plan = planBuild(flags, { cwd: io.cwd, env: io.env, stdoutIsTty: io.stdout.isTTY === true, loadByDefault: extras.loadByDefault ?? false });
  plan.cacheImports.push(...(extras.cacheImports ?? []));
  plan.cacheExports.push(...(extras.cacheExports ?? []));
  await checkInputs(plan);

  const state: BuildState = { cancel: new AbortController(), cleanups: [], displayFinished: false };
  let interrupts = 0;
  const onSignal = () => {
    interrupts++;
    if (interrupts === 1) {
      state.cancel.abort();
      return;
    }
    state.display?.abandon();
    process.exit(CANCELLED_EXIT);
  };
  if (io.handleSignals) {
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  }
  try {
    return await build(plan, io, state, started);
  } finally {
    if (io.handleSignals) {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    }
    if (state.display && !state.displayFinished) state.display.abandon(); // never leave a hidden cursor behind
    for (const cleanup of state.cleanups.reverse()) await cleanup().catch(() => undefined);
    state.client?.close();
  }
}

interface BuildState {
  readonly cancel: AbortController;
  readonly cleanups: (() => Promise<void>)[];
  client?: BuildkitClient;
  display?: ProgressDisplay;
  displayFinished: boolean;
}

async function build(plan: BuildPlan, io: BuildIo, state: BuildState, started: number): Promise<number> {
  if (plan.dockerfileFromStdin) await stageStdinDockerfile(plan, io.stdin, state.cleanups);
  const debug = plan.debug
    ? (line: string) => (state.display ? state.display.message(`shim: debug: ${line}`) : io.stderr.write(`shim: debug: ${line}\n`))
    : undefined;
  const client = (state.client = await connectBuildkit({
    ...(plan.connect.address ? { address: plan.connect.address } : {}),
    tls: plan.connect.tls,
    env: io.env,
    ...(debug ? { debug } : {}),
  }));
  if (state.cancel.signal.aborted) throw cancelled();
  const info = await client.info();
  const { exports, notices } = planExports(plan, { via: client.via, version: info.version });
  const dockerHost = () => dockerHostFor(client.address, io.env);

  const display = (state.display = createDisplay(plan.progress, { out: io.stderr, env: io.env }));
  const finishDisplay = () => {
    if (state.displayFinished) return;
    state.displayFinished = true;
    display.done();
  };
  const say = (line: string) => display.message(line);
  const summary = (failed: boolean, image: { imageId?: string; imageSizeBytes?: number } = {}) => {
    if (display.mode === "tty" || display.mode === "plain") say(summaryLine(display.trace, { durationMs: Date.now() - started, failed, ...image }));
  };
  for (const notice of notices) say(notice);

  const cache = await prepareCache(plan, say);
  state.cleanups.push(() => cache.session?.discard() ?? Promise.resolve());
  const outputs = prepareOutputs(exports, { stdout: io.stdout, dockerHost });

  let uploaded = 0;
  const attachables: Attachable[] = [
    fileSyncAttachable(plan.locals, { onFileData: (e) => (uploaded += e.bytes) }),
    authAttachable({ env: io.env }),
  ];
  if (outputs.targets.size > 0) attachables.push(fileSendAttachable(outputs.targets));
  if (Object.keys(plan.secrets).length > 0) attachables.push(secretsAttachable(plan.secrets, { env: io.env }));
  if (cache.session) attachables.push(cache.session.attachable());

  const request = toSolveRequest({
    ...plan.request,
    exports: exports.map((e) => ({ type: e.type, attrs: e.attrs })),
    cacheImports: cache.imports,
    cacheExports: cache.exports,
  });
  const sharedKey = sharedKeyFor(plan.contextDir ?? io.cwd, await machineId(io.env));
  debug?.(`BuildKit ${info.version} at ${client.address}; exporters: ${exports.map((e) => e.type).join(", ") || "none"}; shared key ${sharedKey}`);

  let result;
  try {
    result = await client.solve(request, { attachables, sharedKey, onStatus: (s) => display.update(s), signal: state.cancel.signal, ...(debug ? { debug } : {}) });
  } catch (err) {
    await outputs.settle();
    finishDisplay();
    if (state.cancel.signal.aborted) {
      if (display.mode === "tty" || display.mode === "plain") say(summaryLine(display.trace, { durationMs: Date.now() - started, failed: true }).replace("build failed", "build cancelled"));
      throw cancelled();
    }
    summary(true);
    throw buildError(err, plan, client);
  }
  await outputs.settle();
  debug?.(`context upload: ${(uploaded / 1e6).toFixed(1)} MB of file data sent`);

  try {
    const response = result.exporterResponse;
    if (cache.session) await publishCache(cache.session, response, say, debug);
    for (const planned of exports) {
      for (const name of planned.pushThroughDaemon ?? []) {
        await pushImage(dockerHost(), name, io.env);
        say(`shim: pushed ${name} (through the Docker daemon)`);
      }
    }
    const imageId =
      imageIdFrom(response) ?? outputs.outcomes.map((o) => o.metadata["containerimage.config.digest"] ?? o.metadata["containerimage.digest"]).find(Boolean);
    if (plan.iidfile && imageId) await writeFileAtomically(plan.iidfile, imageId);
    if (plan.metadataFile) await writeFileAtomically(plan.metadataFile, metadataDocument(response, `shim/${client.via}/${result.ref}`));
    finishDisplay();
    const size = imageId && (display.mode === "tty" || display.mode === "plain") ? await resultSize(exports, imageId, dockerHost) : undefined;
    summary(false, { ...(imageId ? { imageId } : {}), ...(size !== undefined ? { imageSizeBytes: size } : {}) });
    if ((plan.quiet || display.mode === "quiet") && imageId) io.stdout.write(`${imageId}\n`);
    return 0;
  } catch (err) {
    finishDisplay();
    if (err instanceof ShimError) throw err;
    throw new ShimError(`the image was built, but ${err instanceof Error ? err.message : String(err)}`, 1);
  }
}

/** The image is built either way: a cache that could not be published is worth a warning, not a failure. */
async function publishCache(session: LocalCacheSession, response: Readonly<Record<string, string>>, say: (line: string) => void, debug?: (line: string) => void): Promise<void> {
  try {
    for (const outcome of await session.finishCacheExports(response)) {
      for (const skipped of outcome.result.skipped) say(`shim: cache export to ${outcome.dest} left out tag ${skipped.tag}: missing ${skipped.missing.join(", ")}`);
      for (const note of outcome.result.notes) debug?.(`cache ${outcome.dest}: ${note}`);
    }
  } catch (err) {
    say(`shim: warning: the cache export was not saved: ${(err as Error).message}`);
  }
}

function cancelled(): ShimError {
  return new ShimError("build cancelled", CANCELLED_EXIT);
}

/** One line for a failed Solve; the failed step's log lines were already printed by the display. */
function buildError(err: unknown, plan: BuildPlan, daemon: { via: "buildkitd" | "docker"; address: string }): ShimError {
  let message = err instanceof Error ? err.message : String(err);
  // We did not cancel (that is handled before), so a cancelled or unavailable Solve means the connection broke.
  if (err instanceof GrpcError && (err.code === GrpcCode.UNAVAILABLE || err.code === GrpcCode.CANCELLED)) {
    message = `lost the connection to BuildKit at ${daemon.address} (the daemon stopped or the connection broke: ${message})`;
  }
  const via = daemon.via;
  const missingExporter = /exporter "?([a-z]+)"? could not be found/.exec(message);
  if (missingExporter && via === "docker") {
    message += ` (the Docker daemon's BuildKit exports only moby, local and tar without the containerd image store; use a standalone buildkitd with --buildkit or BUILDKIT_HOST)`;
  }
  if (/failed to read dockerfile|open .*Dockerfile.*no such file/.test(message)) message += ` (Dockerfile: ${plan.dockerfileDisplay})`;
  return new ShimError(`build failed: ${message}`, 1);
}

/** Fails early, with one clear line, on inputs the daemon would report obscurely or late. */
async function checkInputs(plan: BuildPlan): Promise<void> {
  for (const [name, dir] of Object.entries(plan.locals)) {
    const what = name === "context" ? "build context" : name === "dockerfile" ? "Dockerfile directory" : `build context "${name}"`;
    let info;
    try {
      info = await stat(dir);
    } catch (err) {
      throw new ShimError(`${what} ${dir}: ${describeFsError(err)}`);
    }
    if (!info.isDirectory()) throw new ShimError(`${what} ${dir} is not a directory`);
  }
  if (plan.locals.dockerfile && !plan.dockerfileFromStdin) {
    try {
      await access(plan.dockerfileDisplay, constants.R_OK);
    } catch (err) {
      throw new ShimError(`Dockerfile ${plan.dockerfileDisplay}: ${describeFsError(err)}`);
    }
  }
  for (const [id, source] of Object.entries(plan.secrets)) {
    if ("file" in source) {
      try {
        await access(source.file, constants.R_OK);
      } catch (err) {
        throw new ShimError(`secret ${id}: ${source.file}: ${describeFsError(err)}`);
      }
    }
  }
  for (const output of plan.outputs) {
    if (output.dest && output.dest !== "-" && output.type !== "local") {
      const existing = await stat(output.dest).catch(() => undefined);
      if (existing?.isDirectory()) throw new ShimError(`output destination ${output.dest} is a directory; give a file name`);
    }
  }
}

function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return "no such file or directory";
  if (code === "EACCES") return "permission denied";
  return (err as Error).message;
}

/** Reads the Dockerfile from stdin into a private directory served as the `dockerfile` local. */
async function stageStdinDockerfile(plan: BuildPlan, stdin: NodeJS.ReadableStream, cleanups: (() => Promise<void>)[]): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "shim-build-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  const content = Buffer.concat(chunks);
  // A tar archive has "ustar" at offset 257: a context on stdin, which this client does not take.
  if (content.length > 262 && content.subarray(257, 262).toString("latin1") === "ustar") {
    throw new ShimError("a tar archive on stdin as the build context is not supported by shim's BuildKit client; extract it and pass the directory");
  }
  if (content.length === 0) throw new ShimError("the Dockerfile read from stdin is empty");
  await mkdir(join(dir, "dockerfile"));
  await mkdir(join(dir, "context"));
  await writeFile(join(dir, "dockerfile", "Dockerfile"), content);
  plan.locals.dockerfile = join(dir, "dockerfile");
  if (plan.emptyContext) plan.locals.context = join(dir, "context");
}

interface PreparedCache {
  imports: TypedEntry[];
  exports: TypedEntry[];
  session?: LocalCacheSession;
}

/**
 * Local cache entries go through the shared store: an import is resolved to its manifest digest first (and left
 * out, with a notice, when nothing is cached under its tag); an export is staged privately and published after
 * the build. `tag` is ours, not the daemon's, and is not sent.
 */
async function prepareCache(plan: BuildPlan, say: (line: string) => void): Promise<PreparedCache> {
  const imports: TypedEntry[] = [];
  const exports: TypedEntry[] = [];
  const localImports: string[] = [];
  const localExports: { dest: string; tag: string }[] = [];
  for (const entry of plan.cacheImports) {
    if (entry.type !== "local") {
      imports.push({ type: entry.type, attrs: entry.attrs });
      continue;
    }
    const { tag = DEFAULT_CACHE_TAG, ...attrs } = entry.attrs;
    const src = attrs.src!;
    const digest = attrs.digest || (await resolveCacheImport(src, tag).catch(() => undefined));
    if (!digest) {
      say(`shim: cache import from ${src} skipped: nothing cached there under tag "${tag}" yet`);
      continue;
    }
    imports.push({ type: "local", attrs: { ...attrs, digest } });
    localImports.push(src);
  }
  for (const entry of plan.cacheExports) {
    if (entry.type !== "local") {
      exports.push({ type: entry.type, attrs: entry.attrs });
      continue;
    }
    const { tag = DEFAULT_CACHE_TAG, reset: _reset, ...attrs } = entry.attrs;
    exports.push({ type: "local", attrs });
    localExports.push({ dest: attrs.dest!, tag });
  }
  const session = localImports.length + localExports.length > 0 ? new LocalCacheSession({ imports: localImports, exports: localExports }) : undefined;
  return { imports, exports, ...(session ? { session } : {}) };
}

/** Image size for the summary: as the Docker daemon reports it when the image went there, else the tarball's. */
async function resultSize(exports: readonly PlannedExport[], imageId: string, dockerHost: () => ReturnType<typeof dockerHostFor>): Promise<number | undefined> {
  if (exports.some((e) => e.type === "moby" || e.destination.kind === "docker-load")) return imageSize(dockerHost(), imageId);
  const file = exports.find((e) => (e.type === "docker" || e.type === "oci") && e.destination.kind === "file");
  if (file && file.destination.kind === "file") return (await stat(file.destination.path).catch(() => undefined))?.size;
  return undefined;
}
