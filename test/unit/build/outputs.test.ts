import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { BytesMessageSchema } from "../../../src/buildkit/proto/gen/buildkit/filesync_pb.ts";
import { FILESEND_DIFFCOPY, fileSendAttachable } from "../../../src/buildkit/filesync/filesend.ts";
import { imageIdFrom, metadataDocument, prepareOutputs, writeFileAtomically } from "../../../src/buildkit/build/outputs.ts";
import { registryHost, splitImageName } from "../../../src/buildkit/build/daemon.ts";
import { parseDockerHost } from "../../../src/engine/host.ts";
import { sharedKeyFor } from "../../../src/buildkit/build/sharedkey.ts";
import { fakeCall } from "../filesync/fake-call.ts";

const bytes = (text: string) => toBinary(BytesMessageSchema, create(BytesMessageSchema, { data: Buffer.from(text) }));

let work: string;
beforeEach(async () => (work = await mkdtemp(join(tmpdir(), "shim-outputs-"))));
afterEach(async () => rm(work, { recursive: true, force: true }));

describe("result files", () => {
  it("golden: --metadata-file has buildx's keys, the descriptor decoded from base64, sorted, 2-space indent", () => {
    const descriptor = { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: "sha256:aa", size: 123 };
    const document = metadataDocument(
      {
        "containerimage.digest": "sha256:aa",
        "containerimage.config.digest": "sha256:cc",
        "containerimage.descriptor": Buffer.from(JSON.stringify(descriptor)).toString("base64"),
        "image.name": "r/app:1,r/app:latest",
      },
      "shim/buildkitd/abc",
    );
    expect(document).toBe(
      [
        "{",
        '  "buildx.build.ref": "shim/buildkitd/abc",',
        '  "containerimage.config.digest": "sha256:cc",',
        '  "containerimage.descriptor": {',
        '    "mediaType": "application/vnd.oci.image.manifest.v1+json",',
        '    "digest": "sha256:aa",',
        '    "size": 123',
        "  },",
        '  "containerimage.digest": "sha256:aa",',
        '  "image.name": "r/app:1,r/app:latest"',
        "}",
      ].join("\n"),
    );
  });

  it("values that merely look like base64 stay text", () => {
    const doc = JSON.parse(metadataDocument({ "x.word": "abcd", "x.json-scalar": Buffer.from("42").toString("base64") }, "r"));
    expect(doc).toEqual({ "buildx.build.ref": "r", "x.word": "abcd", "x.json-scalar": "NDI=" });
  });

  it("--iidfile gets the config digest when there is one (the id docker shows), else the manifest digest", () => {
    expect(imageIdFrom({ "containerimage.digest": "sha256:m", "containerimage.config.digest": "sha256:c" })).toBe("sha256:c");
    expect(imageIdFrom({ "containerimage.digest": "sha256:m" })).toBe("sha256:m");
    expect(imageIdFrom({})).toBeUndefined();
  });

  it("writes atomically and leaves no temporary file", async () => {
    await writeFileAtomically(join(work, "iid"), "sha256:x");
    expect(await readFile(join(work, "iid"), "utf8")).toBe("sha256:x");
    expect(await readdir(work)).toEqual(["iid"]);
  });
});

describe("export targets", () => {
  it("a tarball lands in dest only when complete; a failed export leaves nothing", async () => {
    const dest = join(work, "image.tar");
    const outputs = prepareOutputs([{ type: "oci", attrs: {}, destination: { kind: "file", path: dest } }], { stdout: process.stdout, dockerHost: () => parseDockerHost("unix:///nonexistent") });
    const handler = fileSendAttachable(outputs.targets).methods[FILESEND_DIFFCOPY]!;

    const failing = fakeCall(FILESEND_DIFFCOPY, { "exporter-md-containerimage.digest": ["sha256:aa"] });
    const failed = handler(failing);
    failing.push(bytes("partial"));
    await new Promise((r) => setTimeout(r, 20));
    failing.cancel(new Error("daemon went away"));
    await expect(failed).rejects.toThrow();
    await outputs.settle();
    expect(await readdir(work)).toEqual([]);
    expect(outputs.outcomes[0]!.delivered).toBe(false);

    const call = fakeCall(FILESEND_DIFFCOPY, { "exporter-md-containerimage.digest": ["sha256:aa"] });
    const done = handler(call);
    call.push(bytes("hello "));
    call.push(bytes("world"));
    call.end();
    await done;
    await outputs.settle();
    expect(await readFile(dest, "utf8")).toBe("hello world");
    expect(await readdir(work)).toEqual(["image.tar"]);
    expect(outputs.outcomes[0]).toMatchObject({ delivered: true, metadata: { "containerimage.digest": "sha256:aa" } });
  });

  describe("--load from a standalone buildkitd: the tarball is streamed into POST /images/load", () => {
    let server: Server;
    let socket: string;
    const seen: { path: string; chunks: string[]; contentType: string | undefined }[] = [];
    let respond: (req: IncomingMessage, res: ServerResponse) => void;

    beforeEach(async () => {
      seen.length = 0;
      socket = join(work, "docker.sock");
      server = createServer((req, res) => {
        const entry = { path: req.url ?? "", chunks: [] as string[], contentType: req.headers["content-type"] };
        seen.push(entry);
        req.on("data", (chunk: Buffer) => entry.chunks.push(chunk.toString()));
        req.on("end", () => respond(req, res));
      });
      await new Promise<void>((resolve) => server.listen(socket, resolve));
    });
    afterEach(async () => new Promise<void>((resolve) => server.close(() => resolve())));

    const load = () =>
      prepareOutputs([{ type: "docker", attrs: { name: "app:1" }, destination: { kind: "docker-load" } }], {
        stdout: process.stdout,
        dockerHost: () => parseDockerHost(`unix://${socket}`),
      });

    it("chunks reach the daemon while the export is still running, and the loaded names are reported", async () => {
      respond = (_req, res) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end('{"stream":"Loaded image: app:1\\n"}\n');
      };
      const outputs = load();
      const call = fakeCall(FILESEND_DIFFCOPY);
      const done = fileSendAttachable(outputs.targets).methods[FILESEND_DIFFCOPY]!(call);
      call.push(bytes("first-chunk"));
      for (let i = 0; i < 100 && !(seen[0]?.chunks.length); i++) await new Promise((r) => setTimeout(r, 10));
      expect(seen[0]).toMatchObject({ path: "/images/load?quiet=1", chunks: ["first-chunk"], contentType: "application/x-tar" });
      call.push(bytes("second-chunk"));
      call.end();
      await done;
      expect(seen[0]!.chunks.join("")).toBe("first-chunksecond-chunk");
      expect(outputs.outcomes[0]).toMatchObject({ delivered: true, loaded: ["app:1"] });
    });

    it("the daemon's load error fails the export", async () => {
      respond = (_req, res) => {
        res.writeHead(200);
        res.end('{"errorDetail":{"message":"unexpected EOF"},"error":"unexpected EOF"}\n');
      };
      const outputs = load();
      const call = fakeCall(FILESEND_DIFFCOPY);
      const done = fileSendAttachable(outputs.targets).methods[FILESEND_DIFFCOPY]!(call);
      call.push(bytes("not a tar"));
      call.end();
      await expect(done).rejects.toThrow("loading the image into the Docker daemon: unexpected EOF");
      expect(outputs.outcomes[0]!.delivered).toBe(false);
    });
  });
});

describe("image names and keys", () => {
  it.each([
    ["app", { repository: "app", tag: "latest" }],
    ["127.0.0.1:5000/x/app:1", { repository: "127.0.0.1:5000/x/app", tag: "1" }],
    ["127.0.0.1:5000/x/app", { repository: "127.0.0.1:5000/x/app", tag: "latest" }],
    ["r/app:1@sha256:abc", { repository: "r/app", tag: "1" }],
  ])("splitImageName(%s)", (name, parts) => expect(splitImageName(name)).toEqual(parts));

  it("registryHost follows the docker CLI's rule", () => {
    expect(registryHost("app")).toBe("docker.io");
    expect(registryHost("user/app")).toBe("docker.io");
    expect(registryHost("127.0.0.1:5000/app")).toBe("127.0.0.1:5000");
    expect(registryHost("localhost/app")).toBe("localhost");
    expect(registryHost("ghcr.io/o/app")).toBe("ghcr.io");
  });

  it("the session's shared key is stable per directory and machine, distinct across either", () => {
    const key = sharedKeyFor("/work/my app", "0123456789abcdef");
    expect(key).toMatch(/^0123456789abcdef-my_app-[0-9a-f]{8}$/);
    expect(sharedKeyFor("/work/my app", "0123456789abcdef")).toBe(key);
    expect(sharedKeyFor("/other/my app", "0123456789abcdef")).not.toBe(key);
    expect(sharedKeyFor("/work/my app", "fedcba9876543210")).not.toBe(key);
    expect(key).not.toContain(":");
  });
});
