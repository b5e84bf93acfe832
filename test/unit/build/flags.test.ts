import { describe, expect, it } from "vitest";
import { parseBuildFlags, parseCacheEntries, parseOutput, parseSecret } from "../../../src/buildkit/build/flags.ts";
import { parseCsvFields } from "../../../src/buildkit/build/csv.ts";

const parse = (args: string[], env: Record<string, string> = {}) => parseBuildFlags(args, env);

describe("CSV fields (Go encoding/csv)", () => {
  it.each([
    ["a,b,c", ["a", "b", "c"]],
    ["type=local,dest=out", ["type=local", "dest=out"]],
    ['"src=a,b",type=x', ["src=a,b", "type=x"]],
    ['"say ""hi""",x', ['say "hi"', "x"]],
    ["a,,b", ["a", "", "b"]],
    ["", [""]],
  ])("%s", (line, fields) => expect(parseCsvFields(line)).toEqual(fields));

  it("rejects stray quotes", () => {
    expect(() => parseCsvFields('a"b')).toThrow(/bare "/);
    expect(() => parseCsvFields('"ab')).toThrow(/missing "/);
  });
});

describe("--output grammar (buildx ExportEntry)", () => {
  it.each([
    ["out", { type: "local", attrs: {}, dest: "out" }],
    ["-", { type: "tar", attrs: {}, dest: "-" }],
    ["type=local,dest=dir", { type: "local", attrs: {}, dest: "dir" }],
    ["type=oci,dest=x.tar", { type: "oci", attrs: {}, dest: "x.tar" }],
    ["type=docker,dest=-,name=a:1", { type: "docker", attrs: { name: "a:1" }, dest: "-" }],
    ["type=registry", { type: "image", attrs: { push: "true" } }],
    ["type=registry,push=false", { type: "image", attrs: { push: "false" } }],
    ["type=image,name=r/x,push=true,registry.insecure=true", { type: "image", attrs: { name: "r/x", push: "true", "registry.insecure": "true" } }],
    ['type=image,"name=a,b"', { type: "image", attrs: { name: "a,b" } }],
    ["Type=tar,DEST=t.tar", { type: "tar", attrs: {}, dest: "t.tar" }],
  ])("%s", (value, spec) => expect(parseOutput(value)).toEqual(spec));

  it("needs a type and key=value fields", () => {
    expect(() => parseOutput("dest=x,name=y")).toThrow(/type is required/);
    // A single field without `type=` is a path, even when it contains `=` (as in buildx).
    expect(parseOutput("dest=x")).toEqual({ type: "local", attrs: {}, dest: "dest=x" });
    expect(() => parseOutput("type=local,oops")).toThrow(/"oops" is not key=value/);
  });
});

describe("--cache-from / --cache-to grammar (buildx ParseCacheEntry)", () => {
  it.each([
    ["user/app:cache", [{ type: "registry", attrs: { ref: "user/app:cache" } }]],
    ["a/b:1,c/d:2", [{ type: "registry", attrs: { ref: "a/b:1" } }, { type: "registry", attrs: { ref: "c/d:2" } }]],
    ["type=local,src=/c,tag=t", [{ type: "local", attrs: { src: "/c", tag: "t" } }]],
    ["type=local,dest=/c,mode=max", [{ type: "local", attrs: { dest: "/c", mode: "max" } }]],
    ["type=inline", [{ type: "inline", attrs: {} }]],
    ["TYPE=registry,REF=r/x", [{ type: "registry", attrs: { ref: "r/x" } }]],
    ["", []],
  ])("%s", (value, entries) => expect(parseCacheEntries(value, "--cache-from")).toEqual(entries));

  it("type is required once there are key=value fields", () => {
    expect(() => parseCacheEntries("src=/c", "--cache-from")).toThrow(/--cache-from .*type is required/);
  });
});

describe("--secret grammar (buildx Secret)", () => {
  it.each([
    ["id=npm,src=/home/u/.npmrc", {}, { id: "npm", file: "/home/u/.npmrc" }],
    ["id=npm,source=.npmrc", {}, { id: "npm", file: ".npmrc" }],
    ["id=tok,env=GH_TOKEN", {}, { id: "tok", env: "GH_TOKEN" }],
    ["type=env,id=tok,src=GH_TOKEN", {}, { id: "tok", env: "GH_TOKEN" }],
    ["id=TOKEN", { TOKEN: "x" }, { id: "TOKEN", env: "TOKEN" }],
    ["id=token.txt", {}, { id: "token.txt", file: "token.txt" }],
  ])("%s", (value, env, spec) => expect(parseSecret(value, env)).toEqual(spec));

  it("refuses unknown keys, types and a missing id", () => {
    expect(() => parseSecret("id=a,foo=b")).toThrow(/unexpected key "foo"/);
    expect(() => parseSecret("type=ssh,id=a")).toThrow(/unsupported secret type/);
    expect(() => parseSecret("src=/x")).toThrow(/id is required/);
  });
});

describe("shim build options", () => {
  it("golden: every supported option", () => {
    const flags = parse(
      [
        "-f", "docker/Dockerfile.dev", "--build-arg", "A=1", "--build-arg=FROM_ENV", "--build-arg", "UNSET", "--target", "dev",
        "--platform", "linux/amd64,linux/arm64", "--label", "org.x=y", "--no-cache", "--pull", "--build-context", "lib=../lib",
        "--secret", "id=npm,src=.npmrc", "--cache-from", "type=local,src=/cache/app", "--cache-to", "type=local,dest=/cache/app,mode=max",
        "-t", "app:dev", "--tag=app:latest", "--load", "--push", "-o", "type=oci,dest=app.tar", "--iidfile", "id.txt",
        "--metadata-file", "meta.json", "--progress=plain", "--buildkit", "tcp://bk:1234", "--tlscacert", "ca.pem",
        "--tlscert", "cert.pem", "--tlskey", "key.pem", "--debug", "--network", "host", "--add-host", "db:10.0.0.2",
        "--no-cache-filter", "base", ".",
      ],
      { FROM_ENV: "e" },
    );
    expect(flags).toEqual({
      context: ".",
      file: "docker/Dockerfile.dev",
      buildArgs: { A: "1", FROM_ENV: "e" },
      target: "dev",
      platforms: ["linux/amd64", "linux/arm64"],
      labels: { "org.x": "y" },
      noCache: true,
      noCacheFilter: ["base"],
      pull: true,
      buildContexts: [{ name: "lib", value: "../lib" }],
      secrets: [{ id: "npm", file: ".npmrc" }],
      cacheFrom: [{ type: "local", attrs: { src: "/cache/app" } }],
      cacheTo: [{ type: "local", attrs: { dest: "/cache/app", mode: "max" } }],
      tags: ["app:dev", "app:latest"],
      // -o in order, then --load (type=docker) and --push (type=image,push=true), as buildx adds them
      outputs: [{ type: "oci", attrs: {}, dest: "app.tar" }, { type: "docker", attrs: {} }, { type: "image", attrs: { push: "true" } }],
      iidfile: "id.txt",
      metadataFile: "meta.json",
      progress: "plain",
      quiet: false,
      buildkit: "tcp://bk:1234",
      tls: { caCert: "ca.pem", cert: "cert.pem", key: "key.pem" },
      debug: true,
      network: "host",
      addHosts: ["db:10.0.0.2"],
      allow: ["network.host"], // --network host needs the entitlement; buildx adds it
      help: false,
    });
  });

  it("options may follow the context; `--` ends them", () => {
    expect(parse([".", "-t", "x"]).tags).toEqual(["x"]);
    expect(parse(["--", "-weird-dir"]).context).toBe("-weird-dir");
  });

  it("defaults: progress from BUILDKIT_PROGRESS, platform from DOCKER_DEFAULT_PLATFORM", () => {
    const flags = parse(["."], { BUILDKIT_PROGRESS: "rawjson", DOCKER_DEFAULT_PLATFORM: "linux/arm64" });
    expect(flags.progress).toBe("rawjson");
    expect(flags.platforms).toEqual(["linux/arm64"]);
    expect(parse(["--platform", "linux/amd64", "."], { DOCKER_DEFAULT_PLATFORM: "linux/arm64" }).platforms).toEqual(["linux/amd64"]);
  });

  it("booleans take pflag's =value forms; -q means quiet progress", () => {
    expect(parse(["--load=false", "--no-cache=true", "."]).outputs).toEqual([]);
    expect(parse(["--no-cache=1", "."]).noCache).toBe(true);
    expect(() => parse(["--load=maybe", "."])).toThrow(/invalid value "maybe" for --load/);
    const quiet = parse(["-q", "--progress", "plain", "."]);
    expect([quiet.quiet, quiet.progress]).toEqual([true, "quiet"]);
  });

  it("unknown and unsupported options fail with one line pointing at buildx", () => {
    expect(() => parse(["--ssh", "default", "."])).toThrow("--ssh is not supported by shim's BuildKit client; use `docker buildx build` for it");
    expect(() => parse(["--frobnicate", "."])).toThrow("unknown option --frobnicate; use `docker buildx build` for it");
    expect(() => parse(["-x", "."])).toThrow("unknown option -x");
    expect(() => parseBuildFlags(["--squash", "."], {}, "docker")).toThrow("--squash is not supported by shim's BuildKit client; install the buildx plugin to use it with docker build");
    // shim's own connection options are not docker build options
    expect(() => parseBuildFlags(["--buildkit", "x", "."], {}, "docker")).toThrow(/unknown option --buildkit/);
  });

  it("docker build's no-op switches are accepted on the docker route only", () => {
    expect(parseBuildFlags(["--rm", "--force-rm=false", "--disable-content-trust", "."], {}, "docker").context).toBe(".");
    expect(() => parse(["--rm", "."])).toThrow(/unknown option --rm/);
  });

  it("needs exactly one context and valid values", () => {
    expect(() => parse([])).toThrow("build requires exactly one argument: the context (PATH, URL or -)");
    expect(() => parse(["a", "b"])).toThrow(/exactly one context argument, got 2/);
    expect(() => parse(["-t"])).toThrow("option -t needs a value");
    expect(() => parse(["--progress", "fancy", "."])).toThrow(/invalid --progress value "fancy"/);
    expect(() => parse(["--build-context", "noequals", "."])).toThrow(/expected name=value/);
    expect(() => parse(["-f", "-", "-"])).toThrow(/cannot read both/);
  });

  it("--help needs no context", () => {
    expect(parse(["--help"]).help).toBe(true);
  });
});
