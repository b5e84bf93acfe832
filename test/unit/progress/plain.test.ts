import { describe, expect, it } from "vitest";
import { errorReport, PlainPrinter } from "../../../src/buildkit/progress/plain.ts";
import { FAILURE, FAILURE_ERROR, PARALLEL, SUCCESS, CARRIAGE_RETURNS } from "./fixtures.ts";
import { replay } from "./replay.ts";

/** Plain output of a fixture, flushing after every update (the display's ticker at its busiest). */
function plain(fixture: readonly Record<string, unknown>[], flushEach = true): string {
  let out = "";
  const printer = new PlainPrinter((text) => (out += text));
  const trace = replay(fixture, (events) => {
    printer.add(events);
    if (flushEach) printer.flush();
  });
  printer.flush();
  return out + errorReport(trace);
}

describe("plain progress", () => {
  it("golden: a successful build", () => {
    expect(plain(SUCCESS)).toBe(
      [
        "#1 [internal] load build definition from Dockerfile",
        "#1 transferring dockerfile: 170B done",
        "#1 DONE 0.0s",
        "",
        "#2 [internal] load metadata for 127.0.0.1:5000/base:latest",
        "#2 DONE 0.3s",
        "",
        "#3 [1/3] FROM 127.0.0.1:5000/base:latest@sha256:9999999999999999999999999999999999999999999999999999999999999999",
        "#3 CACHED",
        "",
        "#4 [internal] load build context",
        // 2.10 MB at 0.09 s; the 2.15 MB update 50 ms later is not worth a line (no total, < 5 s)
        "#4 transferring context: 2.10MB 0.1s",
        "#4 transferring context: 5.24MB 0.6s done",
        "#4 DONE 0.6s",
        "",
        "#5 [2/3] COPY app /app",
        "#5 DONE 0.0s",
        "",
        "#6 [3/3] RUN make",
        // "compiling b" + ".c" arrived in two chunks: stamped when the line began (1.5 s − 0.96 s)
        "#6 0.540 compiling a.c",
        "#6 0.540 compiling b.c",
        "#6 1.240 linking",
        "#6 DONE 2.1s",
        "",
        "#7 exporting to image",
        "#7 exporting layers 0.2s done",
        "#7 writing image sha256:8888888888888888888888888888888888888888888888888888888888888888 done",
        "#7 DONE 0.2s",
        "",
      ].join("\n"),
    );
  });

  it("golden: a failed step prints its error, then its last log lines and the exit code in a report", () => {
    expect(plain(FAILURE)).toBe(
      [
        "#1 [internal] load build definition from Dockerfile",
        "#1 DONE 0.0s",
        "",
        "#2 [1/2] FROM 127.0.0.1:5000/base:latest@sha256:9999999999999999999999999999999999999999999999999999999999999999",
        "#2 CACHED",
        "",
        "#3 [2/2] RUN ./test.sh",
        "#3 0.450 running 3 tests",
        "#3 0.700 FAIL: test_upload",
        "#3 1.200 1 of 3 failed",
        `#3 ERROR: ${FAILURE_ERROR}`,
        "------",
        " > [2/2] RUN ./test.sh:",
        "#3 0.450 running 3 tests",
        "#3 0.700 FAIL: test_upload",
        "#3 1.200 1 of 3 failed",
        "------",
        "",
      ].join("\n"),
    );
    expect(FAILURE_ERROR).toContain("exit code: 2");
  });

  it("golden: interleaved stages are marked with `#N ...`, a cancelled step says CANCELED and is not reported", () => {
    expect(plain(PARALLEL)).toBe(
      [
        "#1 [stage-a 1/1] RUN ./slow.sh",
        "#1 0.500 a: step 1",
        "#1 ...",
        "",
        "#2 [stage-b 1/1] RUN ./fast.sh",
        "#2 0.500 b: step 1",
        "#2 ...",
        "",
        "#1 [stage-a 1/1] RUN ./slow.sh",
        "#1 0.700 a: step 2",
        "#1 ...",
        "",
        "#2 [stage-b 1/1] RUN ./fast.sh",
        "#2 DONE 0.7s",
        "",
        "#1 [stage-a 1/1] RUN ./slow.sh",
        "#1 CANCELED",
        "",
      ].join("\n"),
    );
  });

  it("one batch for the whole stream groups each step's lines under one header", () => {
    const out = plain(PARALLEL, false);
    // Completed steps come first, in completion order, each printed once.
    expect(out).toBe(
      ["#2 [stage-b 1/1] RUN ./fast.sh", "#2 0.500 b: step 1", "#2 DONE 0.7s", "", "#1 [stage-a 1/1] RUN ./slow.sh", "#1 0.500 a: step 1", "#1 0.700 a: step 2", "#1 CANCELED", ""].join("\n"),
    );
  });

  it("keeps carriage returns of progress lines as the program wrote them", () => {
    expect(plain(CARRIAGE_RETURNS)).toBe(["#1 [1/1] RUN ./download.sh", "#1 0.200 fetching", "#1 0.200  10%\r 50%\r100%", "#1 0.400 done", ""].join("\n"));
  });
});
