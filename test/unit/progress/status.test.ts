import { describe, expect, it } from "vitest";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { StatusResponseSchema } from "../../../src/buildkit/proto/gen/buildkit/control_pb.ts";
import { formatTimestamp, fromSolveStatusJson, parseTimestamp, toSolveStatusJson } from "../../../src/buildkit/progress/status.ts";
import { SUCCESS } from "./fixtures.ts";

describe("rawjson (client.SolveStatus JSON)", () => {
  it("formats timestamps like Go's time.Time: UTC, nanoseconds, trailing zeros dropped", () => {
    expect(formatTimestamp({ seconds: 1767225600n, nanos: 0 })).toBe("2026-01-01T00:00:00Z");
    expect(formatTimestamp({ seconds: 1767225600n, nanos: 10_000_000 })).toBe("2026-01-01T00:00:00.01Z");
    expect(formatTimestamp({ seconds: 1767225600n, nanos: 123456789 })).toBe("2026-01-01T00:00:00.123456789Z");
    expect(parseTimestamp("2026-01-01T00:00:00.123456789Z")).toEqual({ seconds: 1767225600n, nanos: 123456789 });
    expect(parseTimestamp("2026-01-01T02:00:00.5+02:00")).toEqual({ seconds: 1767225600n, nanos: 500_000_000 });
  });

  it("golden: a decoded StatusResponse becomes buildx's JSON (field names, omitempty, base64 log data)", () => {
    const ts = { seconds: 1767225600n, nanos: 500_000_000 };
    const message = create(StatusResponseSchema, {
      vertexes: [{ digest: "sha256:aa", inputs: ["sha256:bb"], name: "[2/2] RUN echo hi", started: ts, cached: false }],
      statuses: [{ ID: "transferring context:", vertex: "sha256:aa", current: 0n, timestamp: ts }],
      logs: [{ vertex: "sha256:aa", stream: 1n, msg: new TextEncoder().encode("hi\n"), timestamp: ts }],
    });
    // Through the wire encoding, as the Status stream delivers it.
    const decoded = fromBinary(StatusResponseSchema, toBinary(StatusResponseSchema, message));
    expect(JSON.stringify(toSolveStatusJson(decoded))).toBe(
      '{"vertexes":[{"digest":"sha256:aa","inputs":["sha256:bb"],"name":"[2/2] RUN echo hi","started":"2026-01-01T00:00:00.5Z"}],' +
        '"statuses":[{"id":"transferring context:","vertex":"sha256:aa","current":0,"timestamp":"2026-01-01T00:00:00.5Z"}],' +
        '"logs":[{"vertex":"sha256:aa","stream":1,"data":"aGkK","timestamp":"2026-01-01T00:00:00.5Z"}]}',
    );
  });

  it("reads its own output back unchanged", () => {
    for (const line of SUCCESS) {
      const once = toSolveStatusJson(fromSolveStatusJson(line));
      expect(toSolveStatusJson(fromSolveStatusJson(once))).toEqual(once);
    }
  });
});
