import { coerce } from "semver";
import { describe, expect, it } from "vitest";
import { parseComposeArgv } from "../../../src/compose/argv.ts";
import { parseDotenv } from "../../../src/compose/dotenv.ts";
import { decideName } from "../../../src/compose/plan.ts";
import {
  locateProject,
  normalizeV1,
  normalizeV2,
  sessionIdFrom,
  sessionProjectName,
  setsTopLevelName,
  Undecidable,
  type ProjectFs,
} from "../../../src/compose/project.ts";
import { bakeNeedsFsEntitlementsOff, buildPath, parseComposeVersion, readsTopLevelName, type ComposeVersion } from "../../../src/compose/version.ts";

const v = (text: string): ComposeVersion => parseComposeVersion(text, (t) => coerce(t))!;

describe("compose version", () => {
  it.each<[string, [number, number, number] | undefined]>([
    ["2.24.5", [2, 24, 5]],
    ["v2.2.3", [2, 2, 3]],
    ["2.20.2-desktop.1", [2, 20, 2]],
    ["1.29.2\n", [1, 29, 2]],
    ["5.5.0", [5, 5, 0]],
    ["Docker Compose version v2.24.5", undefined],
    ["", undefined],
  ])("%j", (text, expected) => {
    const parsed = parseComposeVersion(text, (t) => coerce(t));
    expect(parsed && [parsed.major, parsed.minor, parsed.patch]).toEqual(expected);
  });

  it.each<[string, Record<string, string>, { bake: boolean; cacheFrom: boolean; cacheTo: boolean; buildkit: boolean }]>([
    ["1.29.2", {}, { buildkit: false, bake: false, cacheFrom: false, cacheTo: false }],
    ["2.0.0", {}, { buildkit: true, bake: false, cacheFrom: false, cacheTo: false }],
    ["2.0.1", {}, { buildkit: true, bake: false, cacheFrom: true, cacheTo: false }],
    ["2.4.0", {}, { buildkit: true, bake: false, cacheFrom: true, cacheTo: true }],
    ["2.30.0", {}, { buildkit: true, bake: false, cacheFrom: true, cacheTo: true }],
    ["2.31.0", { COMPOSE_BAKE: "true" }, { buildkit: true, bake: true, cacheFrom: true, cacheTo: false }],
    ["2.36.2", {}, { buildkit: true, bake: false, cacheFrom: true, cacheTo: true }],
    ["2.37.0", {}, { buildkit: true, bake: true, cacheFrom: true, cacheTo: false }],
    ["2.37.2", { COMPOSE_BAKE: "false" }, { buildkit: true, bake: false, cacheFrom: true, cacheTo: true }],
    ["2.37.3", {}, { buildkit: true, bake: true, cacheFrom: true, cacheTo: true }],
    ["2.40.3", {}, { buildkit: true, bake: true, cacheFrom: true, cacheTo: true }],
    ["5.5.0", { COMPOSE_BAKE: "false" }, { buildkit: true, bake: true, cacheFrom: true, cacheTo: true }],
    ["2.40.3", { DOCKER_BUILDKIT: "0" }, { buildkit: false, bake: false, cacheFrom: false, cacheTo: false }],
  ])("build path of %s with %j", (text, env, expected) => {
    const path = buildPath(v(text), env);
    expect({ buildkit: path.buildkit, bake: path.bake, cacheFrom: path.cacheFrom, cacheTo: path.cacheTo }).toEqual(expected);
  });

  it("reads plugins.compose.build=bake only where compose did (2.31–2.36)", () => {
    expect(buildPath(v("2.33.0"), {}, true).bake).toBe(true);
    expect(buildPath(v("2.33.0"), { COMPOSE_BAKE: "false" }, true).bake).toBe(false);
    expect(buildPath(v("2.30.0"), {}, true).bake).toBe(false);
  });

  it("knows which buildx refuses the cache dir under compose, and which compose reads name:", () => {
    expect(bakeNeedsFsEntitlementsOff("v0.20.1")).toBe(true);
    expect(bakeNeedsFsEntitlementsOff("v0.19.3")).toBe(false);
    expect(bakeNeedsFsEntitlementsOff("v0.36.1")).toBe(false);
    expect(bakeNeedsFsEntitlementsOff(undefined)).toBe(true);
    expect(readsTopLevelName(v("2.2.3"))).toBe(false);
    expect(readsTopLevelName(v("2.3.0"))).toBe(true);
  });
});

describe("dotenv", () => {
  it("parses compose's env-file syntax", () => {
    const text = [
      "# comment",
      "A=1",
      "export B = two words  # trailing comment",
      "C='single ${A} \\n'",
      'D="double ${A}\\tx"',
      "E=${A}${MISSING:-dflt}",
      "F: yaml style",
      "G=\"multi",
      'line"',
      "INHERITED",
      "H=$$literal",
    ].join("\n");
    expect(parseDotenv(text, (name) => ({ INHERITED: "from-env" })[name])).toEqual({
      A: "1",
      B: "two words",
      C: "single ${A} \\n",
      D: "double 1\tx",
      E: "1dflt",
      F: "yaml style",
      G: "multi\nline",
      INHERITED: "from-env",
      H: "$literal",
    });
  });

  it("lets the environment win in references", () => {
    expect(parseDotenv("A=file\nB=${A}", (n) => (n === "A" ? "env" : undefined))).toEqual({ A: "file", B: "env" });
  });
});

/** A fake file system: path → content. */
function fakeFs(files: Record<string, string>): ProjectFs {
  return {
    isFile: (p) => p in files,
    readText: (p) => files[p],
  };
}

const SVC = "services:\n  web:\n    image: x\n";

function locate(tokens: string[], files: Record<string, string>, opts: { env?: Record<string, string>; cwd?: string; v1?: boolean } = {}) {
  const argv = parseComposeArgv([...tokens, "ps"], false)!;
  return locateProject({ globals: argv.globals, env: opts.env ?? {}, cwd: opts.cwd ?? "/w/proj/sub", v1: opts.v1 ?? false, readsName: !opts.v1 }, fakeFs(files));
}

describe("where the project is", () => {
  it("discovers compose.yaml in a parent, with its override, and names the project after that dir", () => {
    const loc = locate([], { "/w/proj/compose.yaml": SVC, "/w/proj/compose.override.yml": SVC, "/w/proj/docker-compose.yml": SVC });
    expect(loc.files).toEqual(["/w/proj/compose.yaml", "/w/proj/compose.override.yml"]);
    expect(loc.fileSource).toBe("discovered");
    expect(loc.projectDir).toBe("/w/proj");
    expect(loc.defaultName).toBe("proj");
    expect(loc.nameChosenBy).toBeUndefined();
  });

  it("uses v1's order of names", () => {
    const loc = locate([], { "/w/proj/sub/compose.yaml": SVC, "/w/proj/sub/docker-compose.yml": SVC }, { v1: true });
    expect(loc.files).toEqual(["/w/proj/sub/docker-compose.yml"]);
  });

  it("refuses to guess when v1 would reject two override files", () => {
    expect(() => locate([], { "/w/proj/sub/docker-compose.yml": SVC, "/w/proj/sub/docker-compose.override.yml": SVC, "/w/proj/sub/compose.override.yml": SVC }, { v1: true })).toThrow(Undecidable);
  });

  it("takes -f relative to the working dir, and the project dir from the first file", () => {
    const loc = locate(["-f", "../other/a.yml", "-f", "b.yml"], { "/w/proj/other/a.yml": SVC });
    expect(loc.files).toEqual(["/w/proj/other/a.yml", "/w/proj/sub/b.yml"]);
    expect(loc.fileSource).toBe("-f");
    expect(loc.defaultName).toBe("other");
  });

  it("reads COMPOSE_FILE (with its separator) from the environment or from .env", () => {
    const viaEnv = locate([], {}, { env: { COMPOSE_FILE: "a.yml;../b.yml", COMPOSE_PATH_SEPARATOR: ";" } });
    expect(viaEnv.files).toEqual(["/w/proj/sub/a.yml", "/w/proj/b.yml"]);
    expect(viaEnv.fileSource).toBe("COMPOSE_FILE");
    const viaDotenv = locate([], { "/w/proj/sub/.env": "COMPOSE_FILE=x.yml:y.yml\n" });
    expect(viaDotenv.files).toEqual(["/w/proj/sub/x.yml", "/w/proj/sub/y.yml"]);
  });

  it("ignores COMPOSE_FILE when -f is given, and honours --project-directory", () => {
    const loc = locate(["--project-directory", "/elsewhere/My_App", "-f", "a.yml"], {}, { env: { COMPOSE_FILE: "z.yml" } });
    expect(loc.files).toEqual(["/w/proj/sub/a.yml"]);
    expect(loc.projectDir).toBe("/elsewhere/My_App");
    expect(loc.defaultName).toBe("my_app");
  });

  it("discovers from --project-directory (v2)", () => {
    const loc = locate(["--project-directory", "/p"], { "/p/docker-compose.yaml": SVC });
    expect(loc.files).toEqual(["/p/docker-compose.yaml"]);
  });

  it.each<[string, string[], Record<string, string>, Record<string, string>, string | undefined]>([
    ["-p", ["-p", "mine"], {}, {}, "-p"],
    ["COMPOSE_PROJECT_NAME", [], {}, { COMPOSE_PROJECT_NAME: "mine" }, "COMPOSE_PROJECT_NAME"],
    ["COMPOSE_PROJECT_NAME in .env", [], { "/w/proj/.env": "COMPOSE_PROJECT_NAME=mine\n" }, {}, "COMPOSE_PROJECT_NAME"],
    ["name: in a file", [], { "/w/proj/compose.override.yaml": "name: mine\n" }, {}, "name:"],
    ["empty name:", [], { "/w/proj/compose.override.yaml": 'name: ""\n' }, {}, undefined],
    ["empty COMPOSE_PROJECT_NAME", [], {}, { COMPOSE_PROJECT_NAME: "" }, undefined],
    ["nested name", [], { "/w/proj/compose.override.yaml": "services:\n  name: x\n" }, {}, undefined],
  ])("a name chosen by %s is left alone", (_what, tokens, files, env, chosenBy) => {
    const loc = locate(tokens, { "/w/proj/compose.yaml": SVC, ...files }, { env, cwd: "/w/proj" });
    expect(loc.nameChosenBy).toBe(chosenBy);
  });

  it("refuses stdin and remote files", () => {
    expect(() => locate(["-f", "-"], {})).toThrow(Undecidable);
    expect(() => locate(["-f", "oci://registry/x"], {})).toThrow(Undecidable);
  });

  it("detects a top-level name in YAML and JSON files", () => {
    expect(setsTopLevelName("# c\nname: app # comment\n")).toBe(true);
    expect(setsTopLevelName("services: {}\n'name': x\n")).toBe(true);
    expect(setsTopLevelName('{"services": {}, "name": "x"}')).toBe(true);
    expect(setsTopLevelName('{"services": {"name": {}}}')).toBe(false);
    expect(setsTopLevelName("name:\nservices: {}\n")).toBe(false);
    expect(() => setsTopLevelName("{services: {}, name: x}")).toThrow(Undecidable);
  });
});

describe("session project names", () => {
  it("normalises like compose", () => {
    expect(normalizeV2("-My.App_1")).toBe("myapp_1");
    expect(normalizeV1("-My.App_1")).toBe("-myapp_1");
  });

  it("prefers SHIM_SESSION_ID over the Helix presets", () => {
    expect(sessionIdFrom("S1", { HELIX_TASK_NUMBER: "42" })).toEqual({ id: "S1", from: "SHIM_SESSION_ID" });
    expect(sessionIdFrom(undefined, { HELIX_TASK_NUMBER: "42", HELIX_SESSION_ID: "ses_9" })).toEqual({ id: "42", from: "HELIX_TASK_NUMBER" });
    expect(sessionIdFrom(undefined, { HELIX_SESSION_ID: "ses_9" })).toEqual({ id: "ses_9", from: "HELIX_SESSION_ID" });
    expect(sessionIdFrom(undefined, {})).toBeUndefined();
  });

  it("appends the session to the default name only", () => {
    expect(sessionProjectName("proj", { id: "Sess.A", from: "x" }, false)).toBe("proj-sessa");
    expect(sessionProjectName("proj", { id: "..", from: "x" }, false)).toBeUndefined();
    const base = { files: ["/p/compose.yaml"], projectDir: "/p", env: {}, defaultName: "p" };
    expect(decideName(base, { id: "s", from: "SHIM_SESSION_ID" }, false)).toMatchObject({ insert: "p-s", base: "p" });
    expect(decideName({ ...base, nameChosenBy: "-p" }, { id: "s", from: "SHIM_SESSION_ID" }, false).insert).toBeUndefined();
    expect(decideName(base, undefined, false).insert).toBeUndefined();
  });
});
