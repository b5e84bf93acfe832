// connectToBuildkit over tcp:// — plain h2c and TLS with client certificates — against an in-process gRPC server
// that answers Control.Info like buildkitd. Certificates are made with the openssl CLI for each run.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import tls from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { Control, InfoResponseSchema } from "../../../src/buildkit/proto/gen/buildkit/control_pb.ts";
import { methodPath } from "../../../src/buildkit/transport/client.ts";
import { serveGrpc } from "../../../src/buildkit/transport/server.ts";
import { connectToBuildkit } from "../../../src/buildkit/transport/connect.ts";
import type { Handler } from "../../../src/buildkit/session/attachable.ts";

const hasOpenssl = spawnSync("openssl", ["version"]).status === 0;
const infoMethods = new Map<string, Handler>([
  [
    methodPath(Control.method.info),
    async (call) => {
      for await (const _request of call.requests) {
        // InfoRequest is empty.
      }
      await call.send(toBinary(InfoResponseSchema, create(InfoResponseSchema, { buildkitVersion: { version: "v9.9.9-test" } })));
    },
  ],
]);

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as net.AddressInfo).port;
}

describe("tcp://", () => {
  it("plain h2c", async () => {
    const server = net.createServer((socket) => serveGrpc(socket, infoMethods));
    const port = await listen(server);
    try {
      const connection = await connectToBuildkit({ address: `tcp://127.0.0.1:${port}` });
      expect(connection.info.version).toBe("v9.9.9-test");
      connection.close();
    } finally {
      server.close();
    }
  });
});

describe("deadline", () => {
  it("a server that never speaks HTTP/2 is given up on at the deadline, and the connection is closed", async () => {
    let closedByClient!: () => void;
    const clientClosed = new Promise<void>((resolve) => (closedByClient = resolve));
    const server = net.createServer((socket) => {
      socket.on("error", () => undefined);
      socket.on("close", () => closedByClient());
      socket.resume(); // read (and drop) the client's preface, so its FIN is noticed
    });
    const port = await listen(server);
    try {
      const started = Date.now();
      await expect(connectToBuildkit({ address: `tcp://127.0.0.1:${port}`, timeoutMs: 300 })).rejects.toThrow(
        `cannot reach BuildKit: tcp://127.0.0.1:${port}: no answer within 300 ms`,
      );
      expect(Date.now() - started).toBeLessThan(2000);
      await clientClosed;
    } finally {
      server.close();
    }
  });
});

describe.skipIf(!hasOpenssl)("tcp:// with TLS", () => {
  let dir: string;
  let server: tls.Server;
  let port: number;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "shim-tls-"));
    const ssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=shim test CA");
    writeFileSync(join(dir, "san.cnf"), "subjectAltName=DNS:buildkitd.test,IP:127.0.0.1\n");
    for (const name of ["server", "client"]) {
      ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`);
      ssl("x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${name}.pem`, "-days", "1", "-extfile", "san.cnf");
    }
    server = tls.createServer(
      {
        key: readFileSync(join(dir, "server.key")),
        cert: readFileSync(join(dir, "server.pem")),
        ca: readFileSync(join(dir, "ca.pem")),
        requestCert: true,
        rejectUnauthorized: true,
        ALPNProtocols: ["h2"],
      },
      (socket) => serveGrpc(socket, infoMethods),
    );
    server.on("tlsClientError", () => undefined);
    port = await listen(server);
  });
  afterAll(() => {
    server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("verifies the server against the CA and presents the client certificate", async () => {
    const connection = await connectToBuildkit({
      address: `tcp://127.0.0.1:${port}`,
      tls: { caCert: join(dir, "ca.pem"), cert: join(dir, "client.pem"), key: join(dir, "client.key") },
    });
    expect(connection.info.version).toBe("v9.9.9-test");
    connection.close();
  });

  it("--tlsservername picks the name the certificate is checked against", async () => {
    const files = { caCert: join(dir, "ca.pem"), cert: join(dir, "client.pem"), key: join(dir, "client.key") };
    const good = await connectToBuildkit({ address: `tcp://127.0.0.1:${port}`, tls: { ...files, serverName: "buildkitd.test" } });
    good.close();
    await expect(connectToBuildkit({ address: `tcp://127.0.0.1:${port}`, tls: { ...files, serverName: "other.test" } })).rejects.toThrow(
      /other\.test/,
    );
  });

  it("a TLS directory in buildctl's layout (ca.pem, cert.pem, key.pem)", async () => {
    const tlsDir = join(dir, "tlsdir");
    execFileSync("mkdir", ["-p", tlsDir]);
    writeFileSync(join(tlsDir, "ca.pem"), readFileSync(join(dir, "ca.pem")));
    writeFileSync(join(tlsDir, "cert.pem"), readFileSync(join(dir, "client.pem")));
    writeFileSync(join(tlsDir, "key.pem"), readFileSync(join(dir, "client.key")));
    const connection = await connectToBuildkit({ address: `tcp://127.0.0.1:${port}`, tls: { dir: tlsDir } });
    expect(connection.info.version).toBe("v9.9.9-test");
    connection.close();
  });

  it("without a client certificate the server refuses, and the reason is reported", async () => {
    await expect(connectToBuildkit({ address: `tcp://127.0.0.1:${port}`, tls: { caCert: join(dir, "ca.pem") }, timeoutMs: 3000 })).rejects.toThrow(
      /cannot reach BuildKit: tcp:\/\/127\.0\.0\.1:\d+: .*certificate required/i,
    );
  });
});
