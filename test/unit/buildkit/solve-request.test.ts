import { describe, expect, it } from "vitest";
import { toBinary, toJson } from "@bufbuild/protobuf";
import { SolveRequestSchema } from "../../../src/buildkit/proto/gen/buildkit/control_pb.ts";
import { toSolveRequest } from "../../../src/buildkit/solve/request.ts";

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON shape checked by the assertions
const json = (options: Parameters<typeof toSolveRequest>[0]) => toJson(SolveRequestSchema, toSolveRequest(options)) as Record<string, any>;

describe("toSolveRequest", () => {
  it("golden bytes: one exporter goes to legacy fields 3/4 and to field 13", () => {
    const request = toSolveRequest({ ref: "r", filename: "Dockerfile", exports: [{ type: "moby", attrs: { name: "x" } }] });
    const expected = [
      "0a0172", // 1 Ref "r"
      "1a046d6f6279", // 3 ExporterDeprecated "moby"
      "22090a046e616d65120178", // 4 ExporterAttrsDeprecated {name: x}
      "320d646f636b657266696c652e7630", // 6 Frontend "dockerfile.v0"
      "3a160a0866696c656e616d65120a446f636b657266696c65", // 7 FrontendAttrs {filename: Dockerfile}
      "4200", // 8 Cache {} (present, empty)
      "6a110a046d6f627912090a046e616d65120178", // 13 Exporters [{moby, {name: x}}]
    ].join("");
    expect(Buffer.from(toBinary(SolveRequestSchema, request)).toString("hex")).toBe(expected);
  });

  it("no exporter: fields 3, 4 and 13 stay empty, frontend defaults to dockerfile.v0", () => {
    expect(json({})).toEqual({ Frontend: "dockerfile.v0", Cache: {} });
  });

  it("maps the Dockerfile options to frontend attributes", () => {
    expect(
      json({
        filename: "docker/Dockerfile.dev",
        target: "test",
        buildArgs: { HTTP_PROXY: "http://p:3128", EMPTY: "" },
        labels: { "org.opencontainers.image.title": "shim" },
        platforms: ["linux/amd64", "linux/arm64"],
        noCache: true,
        pull: true,
        network: "host",
        addHosts: ["db:10.0.0.2", "cache:10.0.0.3"],
        entitlements: ["network.host"],
      }),
    ).toEqual({
      Frontend: "dockerfile.v0",
      FrontendAttrs: {
        "add-hosts": "db:10.0.0.2,cache:10.0.0.3",
        "build-arg:EMPTY": "",
        "build-arg:HTTP_PROXY": "http://p:3128",
        filename: "docker/Dockerfile.dev",
        "force-network-mode": "host",
        "image-resolve-mode": "pull",
        "label:org.opencontainers.image.title": "shim",
        "no-cache": "",
        platform: "linux/amd64,linux/arm64",
        target: "test",
      },
      Cache: {},
      Entitlements: ["network.host"],
    });
  });

  it("no-cache for named stages only", () => {
    expect(json({ noCache: ["deps", "build"] }).FrontendAttrs).toEqual({ "no-cache": "deps,build" });
    expect(json({ noCache: false })).not.toHaveProperty("FrontendAttrs");
  });

  it("mirrors cache imports into the cache-imports attr as Go-shaped JSON and sets Cache.Imports/Exports", () => {
    const result = json({
      cacheImports: [
        { type: "local", attrs: { src: "/cache/a", digest: "sha256:1" } },
        { type: "registry", attrs: { ref: "r.example/app:cache" } },
      ],
      cacheExports: [{ type: "local", attrs: { dest: "/cache/a", mode: "max" } }],
    });
    expect(result.FrontendAttrs).toEqual({
      "cache-imports":
        '[{"Type":"local","Attrs":{"digest":"sha256:1","src":"/cache/a"}},{"Type":"registry","Attrs":{"ref":"r.example/app:cache"}}]',
    });
    expect(result.Cache).toEqual({
      Imports: [
        { Type: "local", Attrs: { digest: "sha256:1", src: "/cache/a" } },
        { Type: "registry", Attrs: { ref: "r.example/app:cache" } },
      ],
      Exports: [{ Type: "local", Attrs: { dest: "/cache/a", mode: "max" } }],
    });
  });

  it("several exporters: the first in 3/4, all in 13", () => {
    const result = json({ exports: [{ type: "image", attrs: { name: "a", push: "true" } }, { type: "local", attrs: {} }] });
    expect(result.ExporterDeprecated).toBe("image");
    expect(result.ExporterAttrsDeprecated).toEqual({ name: "a", push: "true" });
    expect(result.Exporters).toEqual([{ Type: "image", Attrs: { name: "a", push: "true" } }, { Type: "local" }]);
  });

  it("local names: only non-default ones become contextkey/dockerfilekey; raw attrs win", () => {
    expect(json({ contextLocalName: "context", dockerfileLocalName: "dockerfile" })).not.toHaveProperty("FrontendAttrs");
    expect(json({ contextLocalName: "ctx2", dockerfileLocalName: "df2", target: "a", frontendAttrs: { target: "b", "build-arg:X": "1" } }).FrontendAttrs).toEqual({
      "build-arg:X": "1",
      contextkey: "ctx2",
      dockerfilekey: "df2",
      target: "b",
    });
  });

  it("a custom frontend keeps its name", () => {
    expect(json({ frontend: "gateway.v0", frontendAttrs: { source: "docker/dockerfile:1" } })).toMatchObject({
      Frontend: "gateway.v0",
      FrontendAttrs: { source: "docker/dockerfile:1" },
    });
  });
});
