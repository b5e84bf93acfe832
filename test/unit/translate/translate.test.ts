import { describe, expect, it } from "vitest";
import { parseDockerArgv } from "../../../src/shim/argv.ts";
import { mapPath, mappingSource, parsePathMap, type PathRule } from "../../../src/translate/pathmap.ts";
import { splitCsv, translateMountSpec, translateVolumeSpec } from "../../../src/translate/mounts.ts";
import { mayNeedMapping, mountForm, planTranslation, scanMountOptions } from "../../../src/translate/plan.ts";
import { resolveExistingPrefix, sourceKind, translateSource, type HostView } from "../../../src/translate/source.ts";
import { detectContainerId, rulesFromMounts } from "../../../src/translate/automap.ts";
import { ShimError } from "../../../src/shim/errors.ts";

const WS = "/data/workspaces/spec-tasks/spt_123";
const workspaceRules: PathRule[] = [{ from: "/home/retro/work", to: WS }];

/** A fake container filesystem: existing paths, and symlinks (path → target). */
function fakeView(opts: { cwd?: string; home?: string; exists?: string[]; links?: Record<string, string> } = {}): HostView {
  const exists = new Set(["/", ...(opts.exists ?? [])]);
  const links = opts.links ?? {};
  return {
    cwd: opts.cwd ?? "/home/retro/work/app",
    home: opts.home ?? "/home/retro",
    realpath(path) {
      // Resolve link prefixes first (longest link wins), then require existence.
      let resolved = path;
      for (const [link, target] of Object.entries(links).sort((a, b) => b[0].length - a[0].length)) {
        if (resolved === link || resolved.startsWith(`${link}/`)) {
          resolved = target + resolved.slice(link.length);
          break;
        }
      }
      return exists.has(resolved) ? resolved : undefined;
    },
  };
}

/** Runs the whole docker-mode translation planner over argv (as typed after `docker`). */
function translate(argv: string[], view: HostView = fakeView(), rules: PathRule[] = workspaceRules): string[] {
  const parsed = parseDockerArgv(argv);
  const form = mountForm(parsed);
  if (!form) return argv;
  const scan = scanMountOptions(argv, form);
  return planTranslation(argv, scan.options, view, rules).args;
}

describe("path map rules", () => {
  it.each([
    ["/home/retro/work/app", "/data/workspaces/spec-tasks/spt_123/app"],
    ["/home/retro/work", WS],
    ["/home/retro/workspace", undefined], // whole segments only (the reference implementation's prefix bug)
    ["/home/retro", undefined],
    ["/var/lib/docker/stuff", undefined],
  ])("maps %s", (path, expected) => {
    expect(mapPath(path, workspaceRules)).toBe(expected);
  });

  it("longest prefix wins regardless of order", () => {
    const rules = parsePathMap("/a=/x,/a/b/c=/z,/a/b=/y");
    expect(mapPath("/a/b/c/d", rules)).toBe("/z/d");
    expect(mapPath("/a/b/q", rules)).toBe("/y/q");
    expect(mapPath("/a/q", rules)).toBe("/x/q");
  });

  it("normalises trailing slashes and rejects relative entries", () => {
    expect(parsePathMap("/home/retro/work/=/srv/ws/")).toEqual([{ from: "/home/retro/work", to: "/srv/ws" }]);
    expect(() => parsePathMap("work=/srv")).toThrow(ShimError);
    expect(() => parsePathMap("/work")).toThrow(/SHIM_PATH_MAP/);
  });

  it("chooses explicit map, then WORKSPACE_DIR, then auto-detection", () => {
    expect(mappingSource({ pathMap: "off", workspaceDir: "/w" })).toEqual({ kind: "off" });
    expect(mappingSource({ pathMap: "/a=/b", workspaceDir: "/w" })).toEqual({ kind: "explicit", rules: [{ from: "/a", to: "/b" }] });
    expect(mappingSource({ workspaceDir: "/w" })).toEqual({ kind: "workspace", rules: [{ from: "/home/retro/work", to: "/w" }] });
    expect(mappingSource({ workspaceDir: "/w", workspacePath: "/workspace" })).toEqual({ kind: "workspace", rules: [{ from: "/workspace", to: "/w" }] });
    expect(mappingSource({})).toEqual({ kind: "auto" });
  });
});

describe("bind sources", () => {
  it.each([
    ["/abs", "absolute"],
    ["~", "home"],
    ["~/x", "home"],
    [".", "relative"],
    ["./x", "relative"],
    ["../x", "relative"],
    ["src", "named"],
    ["my_vol", "named"],
    ["~user/x", "named"],
    ["C:\\Users\\me", "windows"],
    ["c:/x", "windows"],
    ["\\\\.\\pipe\\docker_engine", "windows"],
    ["//c/Users", "windows"],
  ])("%s is %s", (source, kind) => {
    expect(sourceKind(source)).toBe(kind);
  });

  it("resolves the longest existing prefix through symlinks", () => {
    const view = fakeView({ exists: ["/real", "/real/sub"], links: { "/link": "/real" } });
    expect(resolveExistingPrefix("/link/sub/missing/file", view)).toBe("/real/sub/missing/file");
    expect(resolveExistingPrefix("/nowhere/x", view)).toBe("/nowhere/x");
  });

  it("translates a symlink that points into the mapped tree", () => {
    const view = fakeView({ exists: ["/home/retro/work", "/home/retro/work/data"], links: { "/tmp/shortcut": "/home/retro/work/data" } });
    expect(translateSource("/tmp/shortcut/f", view, workspaceRules)?.value).toBe(`${WS}/data/f`);
  });

  it("makes relative and home sources absolute even without a mapping, leaves absolute ones alone", () => {
    const view = fakeView({ cwd: "/srv/proj" });
    expect(translateSource("./src", view, [])?.value).toBe("/srv/proj/src");
    expect(translateSource(".", view, [])?.value).toBe("/srv/proj");
    expect(translateSource("../shared", view, [])?.value).toBe("/srv/shared");
    expect(translateSource("~/cfg", view, [])?.value).toBe("/home/retro/cfg");
    expect(translateSource("/srv/other", view, [])).toBeUndefined();
    expect(translateSource("src", view, [])).toBeUndefined();
  });
});

describe("docker run / create option region", () => {
  it.each<[string, string[], string[]]>([
    ["-v X", ["run", "-v", "/home/retro/work/app:/app", "img"], ["run", "-v", `${WS}/app:/app`, "img"]],
    ["-vX", ["run", "-v/home/retro/work/x:/x", "img"], ["run", `-v${WS}/x:/x`, "img"]],
    ["-v=X", ["run", "-v=/home/retro/work/x:/x", "img"], ["run", `-v=${WS}/x:/x`, "img"]],
    ["--volume X", ["run", "--volume", "/home/retro/work/x:/x", "img"], ["run", "--volume", `${WS}/x:/x`, "img"]],
    ["--volume=X", ["run", "--volume=/home/retro/work/x:/x", "img"], ["run", `--volume=${WS}/x:/x`, "img"]],
    ["cluster -itv", ["run", "-itv", "/home/retro/work/x:/x", "img"], ["run", "-itv", `${WS}/x:/x`, "img"]],
    ["attached cluster", ["run", "-itv/home/retro/work/x:/x", "img"], ["run", `-itv${WS}/x:/x`, "img"]],
    ["options kept", ["run", "-v", "/home/retro/work:/w:ro,z", "img"], ["run", "-v", `${WS}:/w:ro,z`, "img"]],
    ["exact prefix", ["run", "-v", "/home/retro/work:/w", "img"], ["run", "-v", `${WS}:/w`, "img"]],
    ["create", ["create", "-v", "/home/retro/work/a:/a", "img"], ["create", "-v", `${WS}/a:/a`, "img"]],
    ["container run", ["container", "run", "-v", "/home/retro/work/a:/a", "img"], ["container", "run", "-v", `${WS}/a:/a`, "img"]],
    ["container create", ["container", "create", "--volume=/home/retro/work/a:/a", "img"], ["container", "create", `--volume=${WS}/a:/a`, "img"]],
    ["global flags first", ["-H", "unix:///x.sock", "--debug", "run", "-v", "/home/retro/work/a:/a", "img"], ["-H", "unix:///x.sock", "--debug", "run", "-v", `${WS}/a:/a`, "img"]],
    ["named volume", ["run", "-v", "myvol:/data", "img"], ["run", "-v", "myvol:/data", "img"]],
    ["anonymous volume", ["run", "-v", "/home/retro/work", "img"], ["run", "-v", "/home/retro/work", "img"]],
    ["outside every prefix", ["run", "-v", "/var/run/docker.sock:/var/run/docker.sock", "img"], ["run", "-v", "/var/run/docker.sock:/var/run/docker.sock", "img"]],
    ["segment boundary", ["run", "-v", "/home/retro/workspace:/x", "img"], ["run", "-v", "/home/retro/workspace:/x", "img"]],
    ["windows path", ["run", "-v", "C:\\work:C:\\w", "img"], ["run", "-v", "C:\\work:C:\\w", "img"]],
    ["container args untouched", ["run", "img", "echo", "-v", "/home/retro/work/a:/a"], ["run", "img", "echo", "-v", "/home/retro/work/a:/a"]],
    ["after --", ["run", "--rm", "--", "img", "-v", "/home/retro/work/a:/a"], ["run", "--rm", "--", "img", "-v", "/home/retro/work/a:/a"]],
    ["value flags skip their value", ["run", "-e", "-v", "-v", "/home/retro/work/a:/a", "img"], ["run", "-e", "-v", "-v", `${WS}/a:/a`, "img"]],
    ["-t is a tty here", ["run", "-t", "-v", "/home/retro/work/a:/a", "img"], ["run", "-t", "-v", `${WS}/a:/a`, "img"]],
    ["relative made absolute", ["run", "-v", "./data:/d", "img"], ["run", "-v", `${WS}/app/data:/d`, "img"]],
    ["home", ["run", "-v", "~/work/foo:/foo", "img"], ["run", "-v", `${WS}/foo:/foo`, "img"]],
    ["bare dot", ["run", "-v", ".:/src", "img"], ["run", "-v", `${WS}/app:/src`, "img"]],
    ["other commands untouched", ["ps", "-v", "/home/retro/work/a:/a"], ["ps", "-v", "/home/retro/work/a:/a"]],
    ["build -v untouched", ["build", "-v", "/home/retro/work/a:/a", "."], ["build", "-v", "/home/retro/work/a:/a", "."]],
  ])("%s", (_name, argv, expected) => {
    expect(translate(argv)).toEqual(expected);
  });

  it("stops at an unknown flag (its arity is unknown) and says so", () => {
    const argv = ["run", "--future-flag", "x", "-v", "/home/retro/work/a:/a", "img"];
    const scan = scanMountOptions(argv, mountForm(parseDockerArgv(argv))!);
    expect(scan.unknownFlag).toBe("--future-flag");
    expect(translate(argv)).toEqual(argv);
  });

  it("skips the mapping lookup when no option can name a host path", () => {
    const argv = ["run", "-v", "vol:/d", "--mount", "type=volume,src=v,dst=/d", "img"];
    expect(mayNeedMapping(scanMountOptions(argv, mountForm(parseDockerArgv(argv))!).options)).toBe(false);
    const bind = ["run", "--mount", "type=bind,src=/x,dst=/d", "img"];
    expect(mayNeedMapping(scanMountOptions(bind, mountForm(parseDockerArgv(bind))!).options)).toBe(true);
  });
});

describe("--mount", () => {
  it.each<[string, string, string | undefined]>([
    ["source=", "type=bind,source=/home/retro/work/p,target=/p", `type=bind,source=${WS}/p,target=/p`],
    ["src= and options", "type=bind,src=/home/retro/work/p,dst=/p,readonly", `type=bind,src=${WS}/p,dst=/p,readonly`],
    ["case-insensitive keys", "Type=Bind,Source=/home/retro/work/p,Target=/p", `Type=Bind,Source=${WS}/p,Target=/p`],
    ["quoted field", 'type=bind,"source=/home/retro/work/p",target=/p', `type=bind,"source=${WS}/p",target=/p`],
    ["quoted with comma", 'type=bind,"source=/home/retro/work/a,b",target=/p', `type=bind,"source=${WS}/a,b",target=/p`],
    ["volume untouched", "type=volume,source=myvol,target=/d", undefined],
    ["default type is volume", "source=/home/retro/work/p,target=/p", undefined],
    ["outside prefixes", "type=bind,src=/etc/hosts,dst=/h", undefined],
  ])("%s", (_name, spec, expected) => {
    expect(translateMountSpec(spec, fakeView(), workspaceRules)?.value).toBe(expected);
  });

  it("parses CSV like Go's encoding/csv", () => {
    expect(splitCsv('a,"b,c",""""').map((f) => f.text)).toEqual(["a", "b,c", '"']);
    expect(() => splitCsv('type=bind,sou"rce=/x')).toThrow(/bare "/);
    expect(() => splitCsv('type=bind,"source=/x')).toThrow(/quoted-field/);
  });

  it("reports a malformed value as one shim error line", () => {
    expect(() => translateMountSpec('type=bind,"src=/x', fakeView(), workspaceRules)).toThrow(ShimError);
    expect(() => translate(["run", "--mount", 'type=bind,"src=/home/retro/work', "img"])).toThrow(/invalid --mount value/);
  });

  it("translates service create --mount and service update --mount-add (interspersed)", () => {
    expect(translate(["service", "create", "--mount", "type=bind,src=/home/retro/work/a,dst=/a", "img"])).toEqual([
      "service", "create", "--mount", `type=bind,src=${WS}/a,dst=/a`, "img",
    ]);
    expect(translate(["service", "update", "svc", "--mount-add", "type=bind,src=/home/retro/work/a,dst=/a"])).toEqual([
      "service", "update", "svc", "--mount-add", `type=bind,src=${WS}/a,dst=/a`,
    ]);
  });

  it("-v spec keeps everything after the source verbatim", () => {
    expect(translateVolumeSpec("/home/retro/work/x:/x:ro,Z", fakeView(), workspaceRules)?.value).toBe(`${WS}/x:/x:ro,Z`);
  });
});

describe("auto-detection", () => {
  it("finds the container id in mountinfo, then cgroup", () => {
    const id = "a".repeat(64);
    const mountinfo = `612 600 0:50 /docker/containers/${id}/hostname /etc/hostname rw - ext4 /dev/vda rw`;
    expect(detectContainerId((p) => (p === "/proc/self/mountinfo" ? mountinfo : undefined))).toBe(id);
    expect(detectContainerId((p) => (p === "/proc/self/cgroup" ? `12:cpu:/docker/${id}\n` : ""))).toBe(id);
    expect(detectContainerId(() => "")).toBeUndefined();
  });

  it("maps each mount destination (and its real path) to its source", () => {
    const rules = rulesFromMounts(
      [
        { Type: "bind", Source: "/srv/ws/1", Destination: "/home/retro/work" },
        { Type: "volume", Source: "/var/lib/docker/volumes/v/_data", Destination: "/cache" },
        { Type: "tmpfs", Destination: "/tmp" },
        { Type: "bind", Source: "/run/hydra/docker.sock", Destination: "/var/run/docker.sock" },
      ],
      (p) => (p === "/var/run/docker.sock" ? "/run/docker.sock" : p),
    );
    expect(rules).toEqual([
      { from: "/home/retro/work", to: "/srv/ws/1" },
      { from: "/cache", to: "/var/lib/docker/volumes/v/_data" },
      { from: "/var/run/docker.sock", to: "/run/hydra/docker.sock" },
      { from: "/run/docker.sock", to: "/run/hydra/docker.sock" },
    ]);
  });
});
