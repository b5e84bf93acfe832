// The gRPC client and the session server talking to each other in-process over real sockets, including the
// daemon's side of both session transports (Control.Session messages and an HTTP/1.1 upgrade to h2c).
import { afterEach, describe, expect, it } from "vitest";
import http from "node:http";
import net from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Duplex } from "node:stream";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { GrpcChannel, methodPath } from "../../../src/buildkit/transport/client.ts";
import { serveGrpc, methodTable } from "../../../src/buildkit/transport/server.ts";
import { GrpcCode, GrpcError, type Handler, type ServerCall } from "../../../src/buildkit/session/attachable.ts";
import { BytesMessageSchema, Control } from "../../../src/buildkit/proto/gen/buildkit/control_pb.ts";
import { Health, HealthCheckResponse_ServingStatus } from "../../../src/buildkit/proto/gen/grpc/health_pb.ts";
import { Secrets } from "../../../src/buildkit/proto/gen/buildkit/secrets_pb.ts";
import { startSession, SessionHeader } from "../../../src/buildkit/session/session.ts";
import { secretsAttachable } from "../../../src/buildkit/session/secrets.ts";
import { healthAttachable } from "../../../src/buildkit/session/health.ts";
import { BytesMessageTunnel } from "../../../src/buildkit/transport/tunnel.ts";
import { engineUpgrade } from "../../../src/engine/client.ts";
import type { BuildkitConnection } from "../../../src/buildkit/transport/connect.ts";

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

function tempSocketPath(): string {
  const dir = mkdtempSync(join(tmpdir(), "shim-grpc-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, "s.sock");
}

/** A unix-socket gRPC server using our own serveGrpc, and a client channel to it. */
async function loopback(methods: Map<string, Handler>): Promise<GrpcChannel> {
  const path = tempSocketPath();
  const server = net.createServer((socket) => serveGrpc(socket, methods));
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const socket = net.connect(path);
  await new Promise((resolve) => socket.once("connect", resolve));
  const channel = GrpcChannel.overDuplex(socket);
  cleanups.push(() => {
    channel.destroy();
    server.close();
  });
  return channel;
}

const text = (bytes: Uint8Array) => Buffer.from(bytes).toString();

describe("gRPC client ↔ server", () => {
  it("unary with repeated and non-ASCII metadata", async () => {
    let seen: ServerCall["metadata"] | undefined;
    const channel = await loopback(
      new Map([
        [
          "/t.S/Echo",
          async (call: ServerCall) => {
            seen = call.metadata;
            for await (const message of call.requests) await call.send(message);
          },
        ],
      ]),
    );
    const reply = await channel.unary("/t.S/Echo", Buffer.from("hi"), {
      metadata: [
        ["x-rep", "a, b"],
        ["X-Rep", "c"],
        ["x-name", "ö.txt"],
      ],
    });
    expect(text(reply)).toBe("hi");
    expect(seen!.all("x-rep")).toEqual(["a, b", "c"]);
    expect(seen!.first("x-name")).toBe("ö.txt");
  });

  it("statuses: handler GrpcError, plain Error, unknown method", async () => {
    const channel = await loopback(
      new Map<string, Handler>([
        ["/t.S/NotFound", async () => { throw new GrpcError(GrpcCode.NOT_FOUND, "nöt found: 100%"); }],
        ["/t.S/Crash", async () => { throw new Error("boom"); }],
      ]),
    );
    await expect(channel.unary("/t.S/NotFound", new Uint8Array())).rejects.toMatchObject({ code: GrpcCode.NOT_FOUND, message: "nöt found: 100%" });
    await expect(channel.unary("/t.S/Crash", new Uint8Array())).rejects.toMatchObject({ code: GrpcCode.UNKNOWN, message: "boom" });
    await expect(channel.unary("/t.S/Missing", new Uint8Array())).rejects.toMatchObject({
      code: GrpcCode.UNIMPLEMENTED,
      message: "unknown method /t.S/Missing",
    });
  });

  it("bidi with large messages in both directions and early half-close", async () => {
    const channel = await loopback(
      new Map([
        [
          "/t.S/Sizes",
          async (call: ServerCall) => {
            for await (const message of call.requests) await call.send(new Uint8Array(message.length).fill(1));
            await call.send(Buffer.from("done"));
          },
        ],
      ]),
    );
    const call = channel.bidi("/t.S/Sizes");
    const sizes = [0, 1, 5 << 20, 15 << 20];
    const sending = (async () => {
      for (const size of sizes) await call.send(new Uint8Array(size));
      call.closeSend();
    })();
    const received: number[] = [];
    for await (const message of call.responses) received.push(message.length);
    await sending;
    expect(received).toEqual([...sizes, 4]);
  });

  it("cancelling a call aborts the handler's signal (RST_STREAM reaches the server)", async () => {
    let handlerAborted!: () => void;
    const aborted = new Promise<void>((resolve) => (handlerAborted = resolve));
    const channel = await loopback(
      new Map([
        [
          "/t.S/Forever",
          async (call: ServerCall) => {
            await call.send(Buffer.from("started"));
            await new Promise<void>((resolve) => call.signal.addEventListener("abort", () => resolve()));
            handlerAborted();
          },
        ],
      ]),
    );
    const controller = new AbortController();
    const seen: string[] = [];
    const consuming = (async () => {
      for await (const message of channel.serverStream("/t.S/Forever", new Uint8Array(), { signal: controller.signal })) {
        seen.push(text(message));
        controller.abort();
      }
    })();
    await expect(consuming).rejects.toMatchObject({ code: GrpcCode.CANCELLED });
    await aborted;
    expect(seen).toEqual(["started"]);
  });

  it("typed calls through generated descriptors: Health and Secrets", async () => {
    const secrets = secretsAttachable({ token: { env: "SHIM_TEST_TOKEN" }, absent: { file: "/nonexistent/secret" } }, { env: { SHIM_TEST_TOKEN: "s3cr3t" } });
    const channel = await loopback(methodTable([healthAttachable(), secrets]));
    const health = await channel.call(Health.method.check, {});
    expect(health.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    const secret = await channel.call(Secrets.method.getSecret, { ID: "token" });
    expect(text(secret.data)).toBe("s3cr3t");
    await expect(channel.call(Secrets.method.getSecret, { ID: "nope" })).rejects.toMatchObject({ code: GrpcCode.NOT_FOUND });
    const missingFile = channel.call(Secrets.method.getSecret, { ID: "absent" });
    await expect(missingFile).rejects.toMatchObject({ code: GrpcCode.NOT_FOUND });
    await expect(missingFile).rejects.not.toThrow(/s3cr3t/);
    const watch = channel.stream(Health.method.watch, {});
    for await (const status of watch) {
      expect(status.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
      break; // leaving the loop cancels the call
    }
  });
});

/** The daemon's view of a Control.Session call: BytesMessages in and out as one Duplex. */
function daemonTunnel(call: ServerCall): Duplex {
  const iterator = call.requests[Symbol.asyncIterator]();
  return new Duplex({
    read() {
      iterator.next().then(
        (next) => this.push(next.done ? null : Buffer.from(fromBinary(BytesMessageSchema, next.value).data)),
        (err) => this.destroy(err),
      );
    },
    write(chunk: Buffer, _enc, callback) {
      call.send(toBinary(BytesMessageSchema, create(BytesMessageSchema, { data: chunk }))).then(() => callback(), callback);
    },
  });
}

describe("sessions", () => {
  it("Control.Session: metadata as separate fields, and the daemon's health check is answered inside the tunnel", async () => {
    let sessionMetadata: ServerCall["metadata"] | undefined;
    let checked!: (status: number) => void;
    const healthStatus = new Promise<number>((resolve) => (checked = resolve));
    const control = await loopback(
      new Map([
        [
          methodPath(Control.method.session),
          async (call: ServerCall) => {
            sessionMetadata = call.metadata;
            // Like BuildKit: dial HTTP/2 as the client over the tunnel and poll Health/Check.
            const tunnel = daemonTunnel(call);
            const inner = GrpcChannel.overDuplex(tunnel);
            const response = await inner.call(Health.method.check, {});
            checked(response.status);
            // Like the daemon: the session lasts until the client half-closes the tunnel.
            await new Promise<void>((resolve) => tunnel.once("end", () => resolve()));
            inner.destroy();
          },
        ],
      ]),
    );
    const connection: BuildkitConnection = {
      address: "loopback",
      via: "buildkitd",
      control,
      info: { version: "test", package: "", revision: "", infoSupported: true },
      openSessionTunnel: async (metadata) => {
        return new BytesMessageTunnel(control.bidi(methodPath(Control.method.session), { metadata }));
      },
      close: () => control.destroy(),
    };
    const session = await startSession(connection, {
      sharedKey: "key-1",
      attachables: [secretsAttachable({})],
      name: "ctx",
    });
    expect(await healthStatus).toBe(HealthCheckResponse_ServingStatus.SERVING);
    expect(session.id).toMatch(/^[0-9a-z]{25}$/);
    expect(sessionMetadata!.all(SessionHeader.uuid)).toEqual([session.id]);
    expect(sessionMetadata!.all(SessionHeader.sharedKey)).toEqual(["key-1"]);
    expect(sessionMetadata!.all(SessionHeader.name)).toEqual(["ctx"]);
    expect(sessionMetadata!.all(SessionHeader.method)).toEqual([
      "/grpc.health.v1.Health/Check",
      "/grpc.health.v1.Health/Watch",
      "/moby.buildkit.secrets.v1.Secrets/GetSecret",
    ]);
    const started = Date.now();
    await session.close(5000);
    expect(Date.now() - started).toBeLessThan(2000); // ended by the daemon's EOF, not by the timeout
  });

  it("HTTP/1.1 /session upgrade: repeated header lines, and the HTTP/2 preface arriving in the same read as the 101", async () => {
    const path = tempSocketPath();
    let rawHeaders: string[] = [];
    let answered!: (status: number) => void;
    const healthStatus = new Promise<number>((resolve) => (answered = resolve));
    const server = http.createServer();
    server.on("upgrade", (req: http.IncomingMessage, socket: net.Socket) => {
      rawHeaders = req.rawHeaders;
      socket.on("error", () => undefined); // the client tears the socket down at the end of the test
      // dockerd's worst case: the 101 and the daemon's HTTP/2 client preface in one write.
      let first = true;
      const prefixed = new Duplex({
        read() {
          socket.resume();
        },
        write(chunk: Buffer, _enc, callback) {
          const out = first ? Buffer.concat([Buffer.from("HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"), chunk]) : chunk;
          first = false;
          socket.write(out, callback);
        },
      });
      socket.on("data", (chunk) => {
        if (!prefixed.push(chunk)) socket.pause();
      });
      socket.on("end", () => prefixed.push(null));
      const daemon = GrpcChannel.overDuplex(prefixed);
      daemon.call(Health.method.check, {}).then((r) => answered(r.status), () => answered(-1));
      cleanups.push(() => daemon.destroy());
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    cleanups.push(() => server.close());

    const socket = await engineUpgrade(
      { kind: "unix", url: `unix://${path}`, socketPath: path },
      { method: "POST", path: "/session", headers: { [SessionHeader.uuid]: ["id1"], [SessionHeader.method]: ["/a/B", "/c/D"] } },
      "h2c",
    );
    const served = serveGrpc(socket, methodTable([healthAttachable()]));
    expect(await healthStatus).toBe(HealthCheckResponse_ServingStatus.SERVING);
    const methodLines = rawHeaders.flatMap((name, i) => (i % 2 === 0 && name.toLowerCase() === SessionHeader.method ? [rawHeaders[i + 1]] : []));
    expect(methodLines).toEqual(["/a/B", "/c/D"]);
    served.destroy();
  });
});

