import { describe, expect, it } from "vitest";
import { buildStats, summaryLine } from "../../../src/buildkit/progress/summary.ts";
import { FAILURE, SUCCESS } from "./fixtures.ts";
import { replay } from "./replay.ts";

describe("build summary", () => {
  it("counts every step, and cache hits among the Dockerfile steps only", () => {
    expect(buildStats(replay(SUCCESS))).toEqual({ steps: 7, cached: 1, cacheableSteps: 3, cacheHits: 1 });
  });

  it("golden: duration, steps cached/total, cache hit ratio, image id and size", () => {
    expect(summaryLine(replay(SUCCESS), { durationMs: 3412, failed: false, imageId: `sha256:${"ab".repeat(32)}`, imageSizeBytes: 7_851_234 })).toBe(
      "shim: built in 3.4s: 7 steps, 1 cached; cache hits 1/3 Dockerfile steps (33%); image sha256:abababababab (7.85MB)",
    );
  });

  it("a failed build says so and has no image", () => {
    expect(summaryLine(replay(FAILURE), { durationMs: 1300, failed: true })).toBe(
      "shim: build failed after 1.3s: 3 steps, 1 cached; cache hits 1/2 Dockerfile steps (50%)",
    );
  });
});
