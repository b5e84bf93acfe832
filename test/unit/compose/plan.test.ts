// Golden vectors for the pure compose planner: argv + facts → the real compose's argv and the override document.
import { coerce } from "semver";
import { describe, expect, it } from "vitest";
import { parseComposeArgv, parseSubcommand } from "../../../src/compose/argv.ts";
import { modelFromConfig } from "../../../src/compose/model.ts";
import { buildOverride, type TranslatePath } from "../../../src/compose/override.ts";
import { planCache, servicesToBuild, type CacheFacts } from "../../../src/compose/cache-plan.ts";
import { assemble, decideName } from "../../../src/compose/plan.ts";
import type { ProjectLocation } from "../../../src/compose/project.ts";
import { buildPath, parseComposeVersion } from "../../../src/compose/version.ts";
import type { KeyDirState } from "../../../src/cache/plan.ts";

/** `config --format json` of compose v2.40.3 for a project in /home/retro/work/proj (trimmed to what matters). */
const V2_CONFIG = {
  name: "proj",
  secrets: { s: { name: "proj_s", file: "/home/retro/work/proj/secret.txt" }, ext: { name: "x", external: true } },
  configs: { c: { name: "proj_c", file: "/etc/outside.conf" } },
  services: {
    web: {
      build: { context: "/home/retro/work/proj/app", dockerfile: "Dockerfile" },
      image: "busybox",
      volumes: [
        { type: "bind", source: "/home/retro/work/proj/data", target: "/data", read_only: true, bind: { create_host_path: true } },
        { type: "bind", source: "/home/retro/x", target: "/x", bind: { create_host_path: true } },
        { type: "volume", source: "named", target: "/n", volume: {} },
        { type: "bind", source: "/home/retro/work/proj/conf", target: "/conf", read_only: true },
      ],
    },
    worker: { build: { context: "/home/retro/work/proj/worker", cache_to: ["type=registry,ref=r/x"] } },
    db: { image: "postgres", volumes: [{ type: "tmpfs", target: "/tmp" }] },
  },
  volumes: { named: { name: "proj_named" }, dev: { name: "proj_dev", driver_opts: { type: "none", o: "bind", device: "/home/retro/work/proj/dev" } } },
};

/** `config` of compose v1.29.2 (YAML, parsed) for the same project. */
const V1_CONFIG = {
  version: "3.9",
  services: {
    web: {
      build: { context: "/home/retro/work/proj/app" },
      volumes: ["/home/retro/work/proj/data:/data:ro", "named:/n:rw", "/var/run/docker.sock:/var/run/docker.sock:rw", { type: "bind", source: "/home/retro/work/proj/conf", target: "/conf" }],
    },
  },
  secrets: { s: { file: "/home/retro/work/proj/secret.txt" } },
};

const translate: TranslatePath = (source) =>
  source === "/home/retro/work" || source.startsWith("/home/retro/work/") ? { value: `/srv/ws${source.slice("/home/retro/work".length)}`, why: "mapped" } : undefined;

const location: ProjectLocation = {
  files: ["/home/retro/work/proj/compose.yaml", "/home/retro/work/proj/compose.override.yaml"],
  fileSource: "discovered",
  projectDir: "/home/retro/work/proj",
  env: {},
  defaultName: "proj",
};

const version = (text: string) => parseComposeVersion(text, (t) => coerce(t))!;

function cacheFacts(over: Partial<CacheFacts> = {}, keyDirs: Record<string, KeyDirState> = {}): CacheFacts {
  return {
    root: "/buildkit-cache",
    rootState: { state: "ok" },
    buildPath: buildPath(version("2.40.3"), {}),
    builder: { shimBuilderName: "shim", buildkitHost: "tcp://bk:1234", builder: { name: "default", driver: "docker", canExport: false } },
    keyDir: (dir) => keyDirs[dir] ?? { hasIndex: false },
    stagingId: (service) => `st-${service}`,
    bakeNeedsFsOff: false,
    cwd: "/home/retro/work/proj",
    warnNoCacheTo: false,
    ...over,
  };
}

describe("the override document", () => {
  it("translates binds, file secrets/configs and bind-backed volumes, keeping everything else of each entry", () => {
    const { doc, changes } = buildOverride({ model: modelFromConfig(V2_CONFIG), translate, cache: new Map() });
    expect(doc).toEqual({
      services: {
        web: {
          volumes: [
            { type: "bind", source: "/srv/ws/proj/data", target: "/data", read_only: true, bind: { create_host_path: true } },
            { type: "bind", source: "/srv/ws/proj/conf", target: "/conf", read_only: true },
          ],
        },
      },
      secrets: { s: { file: "/srv/ws/proj/secret.txt" } },
      volumes: { dev: { driver_opts: { device: "/srv/ws/proj/dev" } } },
    });
    expect(changes).toHaveLength(4);
  });

  it("keeps v1's short syntax and file version", () => {
    const { doc } = buildOverride({ model: modelFromConfig(V1_CONFIG), translate, cache: new Map() });
    expect(doc).toEqual({
      version: "3.9",
      services: { web: { volumes: ["/srv/ws/proj/data:/data:ro", { type: "bind", source: "/srv/ws/proj/conf", target: "/conf" }] } },
      secrets: { s: { file: "/srv/ws/proj/secret.txt" } },
    });
  });

  it("is empty when nothing maps", () => {
    expect(buildOverride({ model: modelFromConfig(V2_CONFIG), translate: () => undefined, cache: new Map() }).doc).toBeUndefined();
  });
});

describe("which services a command builds", () => {
  const model = modelFromConfig({
    services: {
      web: { build: {}, depends_on: { db: { condition: "service_started" } } },
      db: { build: {} },
      tool: { build: {}, profiles: ["tools"] },
      other: { image: "x" },
    },
  });
  it.each<[string, string[], string[], boolean, string[]]>([
    ["build", [], [], false, ["web", "db", "other"]],
    ["build", [], ["tools"], false, ["web", "db", "tool", "other"]],
    ["build", [], ["*"], false, ["web", "db", "tool", "other"]],
    ["build", ["web"], [], false, ["web"]],
    ["build", ["web"], [], true, ["web", "db"]],
    ["up", ["web"], [], false, ["web", "db"]],
    ["run", ["tool"], [], false, ["tool"]],
  ])("%s %j with profiles %j (--with-dependencies %s)", (sub, named, profiles, withDeps, expected) => {
    expect([...servicesToBuild(model, sub, named, profiles, withDeps)].sort()).toEqual(expected.sort());
  });
});

describe("cache entries", () => {
  const model = modelFromConfig(V2_CONFIG);
  const ALL = new Set(model.services.keys());

  it("imports, exports through the remote builder, and leaves a user's cache_to alone", () => {
    const plan = planCache(model, ALL, "proj", cacheFacts({}, { "/buildkit-cache/proj_web": { hasIndex: true } }), {});
    expect(Object.fromEntries(plan.perService)).toEqual({
      web: { cacheFrom: "type=local,src=/buildkit-cache/proj_web", cacheTo: "type=local,dest=/buildkit-cache/proj_web/.staging/st-web,mode=max" },
      worker: { cacheFrom: "type=local,src=/buildkit-cache/proj_worker" },
    });
    expect(plan.exports).toEqual([
      { service: "web", key: "proj_web", keyDir: "/buildkit-cache/proj_web", stagingId: "st-web", stagingDir: "/buildkit-cache/proj_web/.staging/st-web" },
    ]);
    expect(plan.env).toEqual({ BUILDX_BUILDER: "shim" });
    expect(plan.ensureBuilder).toEqual({ name: "shim", endpoint: "tcp://bk:1234" });
    expect(plan.notices).toEqual([]);
  });

  it("keeps a user's builder that can export, and does not replace one that cannot", () => {
    const own = planCache(model, ALL, "proj", cacheFacts({ builder: { chosenByUser: "mine", builder: { name: "mine", driver: "docker-container", canExport: true }, shimBuilderName: "shim" } }), {});
    expect(own.env).toEqual({});
    expect(own.exports).toHaveLength(1);
    const weak = planCache(model, ALL, "proj", cacheFacts({ builder: { chosenByUser: "default", builder: { name: "default", driver: "docker", canExport: false }, buildkitHost: "tcp://bk:1234", shimBuilderName: "shim" } }), {});
    expect(weak.exports).toEqual([]);
    expect(weak.env).toEqual({});
    expect(weak.notices).toEqual(['shim: build cache is read-only here (builder "default" (docker driver) cannot export cache); choose a docker-container or remote builder to save it']);
  });

  it("only imports when this compose drops cache_to (bake 2.37.0–2.37.2), warning once", () => {
    const path = buildPath(version("2.37.1"), {});
    const imported = { "/buildkit-cache/proj_web": { hasIndex: true } };
    const first = planCache(model, ALL, "proj", cacheFacts({ buildPath: path, warnNoCacheTo: true }, imported), {});
    expect(Object.fromEntries(first.perService)).toEqual({
      web: { cacheFrom: "type=local,src=/buildkit-cache/proj_web" },
      worker: { cacheFrom: "type=local,src=/buildkit-cache/proj_worker" },
    });
    expect(first.importing).toEqual(["/buildkit-cache/proj_web", "/buildkit-cache/proj_worker"]);
    expect(first.notices).toEqual(["shim: compose 2.37.1 drops cache_to when it builds with bake (fixed in 2.37.3); the shared build cache is only read"]);
    expect(planCache(model, ALL, "proj", cacheFacts({ buildPath: path, warnNoCacheTo: false }, imported), {}).notices).toEqual([]);
  });

  it("turns bake's filesystem entitlement check off only where buildx needs it and the user did not decide", () => {
    const facts = cacheFacts({ bakeNeedsFsOff: true });
    expect(planCache(model, ALL, "proj", facts, {}).env.BUILDX_BAKE_ENTITLEMENTS_FS).toBe("0");
    expect(planCache(model, ALL, "proj", facts, { BUILDX_BAKE_ENTITLEMENTS_FS: "1" }).env.BUILDX_BAKE_ENTITLEMENTS_FS).toBeUndefined();
    expect(planCache(model, ALL, "proj", { ...facts, root: "/home/retro/work/proj/.cache" }, {}).env.BUILDX_BAKE_ENTITLEMENTS_FS).toBeUndefined();
  });

  it("is off without a cache root, and says so when the root is unusable", () => {
    expect(planCache(model, ALL, "proj", cacheFacts({ rootState: { state: "missing" } }), {}).perService.size).toBe(0);
    expect(planCache(model, ALL, "proj", cacheFacts({ rootState: { state: "unusable", reason: "x is not writable" } }), {}).notices).toEqual(["shim: build cache off: x is not writable"]);
  });

  it("shares keys across sessions: the key uses the name without the session suffix", () => {
    const a = planCache(model, ALL, decideName(location, { id: "A", from: "SHIM_SESSION_ID" }, false).base, cacheFacts(), {});
    const b = planCache(model, ALL, decideName(location, { id: "B", from: "SHIM_SESSION_ID" }, false).base, cacheFacts(), {});
    expect(a.exports.map((e) => e.key)).toEqual(["proj_web"]);
    expect(b.exports.map((e) => e.key)).toEqual(a.exports.map((e) => e.key));
  });
});

describe("the real compose's argv", () => {
  const session = { id: "sessA", from: "SHIM_SESSION_ID" };
  const vectors: {
    name: string;
    tokens: string[];
    plugin?: boolean;
    loc?: Partial<ProjectLocation>;
    withModel?: boolean;
    cache?: boolean;
    expected: string[];
  }[] = [
    { name: "ps: only the session project name", tokens: ["ps"], expected: ["-p", "proj-sessa", "ps"] },
    { name: "plugin form keeps docker globals and `compose` first", tokens: ["--context", "c", "compose", "--ansi", "never", "logs", "-f"], plugin: true, expected: ["--context", "c", "compose", "--ansi", "never", "-p", "proj-sessa", "logs", "-f"] },
    {
      name: "up: discovered files passed explicitly before the override",
      tokens: ["up", "-d"],
      withModel: true,
      expected: ["-f", "/home/retro/work/proj/compose.yaml", "-f", "/home/retro/work/proj/compose.override.yaml", "-f", "/tmp/o/shim.override.yaml", "-p", "proj-sessa", "up", "-d"],
    },
    {
      name: "up with -f: the user's list stays, the override comes last",
      tokens: ["-f", "a.yml", "--profile", "x", "up"],
      loc: { fileSource: "-f", files: ["/w/a.yml"] },
      withModel: true,
      expected: ["-f", "a.yml", "--profile", "x", "-f", "/tmp/o/shim.override.yaml", "-p", "proj-sessa", "up"],
    },
    {
      name: "a chosen name is left alone",
      tokens: ["-p", "mine", "up", "--build"],
      loc: { nameChosenBy: "-p", fileSource: "-f" },
      withModel: true,
      cache: true,
      expected: ["-p", "mine", "-f", "/tmp/o/shim.override.yaml", "up", "--build"],
    },
  ];

  it.each(vectors)("$name", (vector) => {
    const argv = parseComposeArgv(vector.tokens, vector.plugin ?? false)!;
    const loc = { ...location, ...vector.loc };
    const model = modelFromConfig(V2_CONFIG);
    const cache = vector.cache ? planCache(model, new Set(["web"]), "mine", cacheFacts(), {}) : undefined;
    const plan = assemble({
      argv,
      location: loc,
      name: decideName(loc, session, false),
      ...(vector.withModel ? { model, translate } : {}),
      ...(cache ? { cache } : {}),
      overrideFile: "/tmp/o/shim.override.yaml",
    });
    expect(plan.args).toEqual(vector.expected);
    expect(plan.override !== undefined).toBe(Boolean(vector.withModel));
  });

  it("rewrites run -v values in place", () => {
    const argv = parseComposeArgv(["run", "-v", "/home/retro/work/a:/a", "app", "-v", "/home/retro/work/b:/b"], false)!;
    const sub = parseSubcommand(argv)!;
    const plan = assemble({
      argv,
      location,
      name: decideName(location, undefined, false),
      runVolumes: sub.runVolumes.map((option) => ({ option, value: "/srv/ws/a:/a" })),
      overrideFile: "/tmp/o/x",
    });
    expect(plan.args).toEqual(["run", "-v", "/srv/ws/a:/a", "app", "-v", "/home/retro/work/b:/b"]);
  });
});
