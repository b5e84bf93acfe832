import { describe, expect, it } from "vitest";
import { parseDockerHost, dockerHostFromEnv } from "../../../src/engine/host.ts";
import { StdcopyDemuxer } from "../../../src/engine/exec.ts";

describe("Docker host", () => {
  it("unix and tcp, TLS only when DOCKER_TLS(_VERIFY) asks for it", () => {
    expect(dockerHostFromEnv({})).toEqual({ kind: "unix", url: "unix:///var/run/docker.sock", socketPath: "/var/run/docker.sock" });
    expect(parseDockerHost("tcp://10.0.0.1:2375")).toEqual({ kind: "tcp", url: "tcp://10.0.0.1:2375", host: "10.0.0.1", port: 2375 });
    expect(parseDockerHost("tcp://d", { DOCKER_TLS_VERIFY: "1", DOCKER_CERT_PATH: "/certs" })).toEqual({
      kind: "tcp",
      url: "tcp://d",
      host: "d",
      port: 2376,
      tls: { verify: true, caFile: "/certs/ca.pem", certFile: "/certs/cert.pem", keyFile: "/certs/key.pem" },
    });
    expect(parseDockerHost("tcp://d:1", { DOCKER_TLS: "1", HOME: "/home/u" })).toMatchObject({
      tls: { verify: false, caFile: "/home/u/.docker/ca.pem" },
    });
  });
  it("rejects what it cannot dial", () => {
    expect(() => parseDockerHost("ssh://u@h")).toThrow(/only unix:\/\/ and tcp:\/\//);
  });
});

describe("StdcopyDemuxer", () => {
  const frame = (stream: number, text: string) => {
    const body = Buffer.from(text);
    const head = Buffer.alloc(8);
    head[0] = stream;
    head.writeUInt32BE(body.length, 4);
    return Buffer.concat([head, body]);
  };

  it("splits stdout and stderr frames cut at any boundary", () => {
    const wire = Buffer.concat([frame(1, "PRI * HTTP/2.0"), frame(2, "warning"), frame(1, "")]);
    for (let cut = 0; cut <= wire.length; cut++) {
      const demuxer = new StdcopyDemuxer();
      const frames = [...demuxer.push(wire.subarray(0, cut)), ...demuxer.push(wire.subarray(cut))];
      expect(frames.map((f) => [f.stream, f.data.toString()])).toEqual([
        [1, "PRI * HTTP/2.0"],
        [2, "warning"],
        [1, ""],
      ]);
    }
  });
});
