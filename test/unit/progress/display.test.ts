import { describe, expect, it } from "vitest";
import { createDisplay, resolveMode, ttyLogLines } from "../../../src/buildkit/progress/display.ts";
import { fromSolveStatusJson } from "../../../src/buildkit/progress/status.ts";
import { FAILURE, SUCCESS, T0 } from "./fixtures.ts";

function sink(isTTY = false) {
  const out = { text: "", isTTY, columns: 80, rows: 24, write: (t: string) => ((out.text += t), true) };
  return out;
}

describe("progress displays", () => {
  it("auto is tty on a terminal and plain elsewhere; tty without a terminal is refused", () => {
    expect(resolveMode("auto", true)).toBe("tty");
    expect(resolveMode("auto", false)).toBe("plain");
    expect(() => createDisplay("tty", { out: sink(false), env: {} })).toThrow(/terminal/);
  });

  it("BUILDKIT_TTY_LOG_LINES sets the log tail, default 6", () => {
    expect(ttyLogLines({})).toBe(6);
    expect(ttyLogLines({ BUILDKIT_TTY_LOG_LINES: "2" })).toBe(2);
    expect(ttyLogLines({ BUILDKIT_TTY_LOG_LINES: "x" })).toBe(6);
  });

  it("rawjson writes one SolveStatus object per update and nothing else", () => {
    const out = sink();
    const display = createDisplay("rawjson", { out, env: {}, now: () => T0 });
    for (const line of SUCCESS) display.update(fromSolveStatusJson(line));
    display.done();
    const lines = out.text.trimEnd().split("\n");
    expect(lines).toHaveLength(SUCCESS.length);
    expect(JSON.parse(lines[0]!)).toEqual({ vertexes: [{ digest: `sha256:${"1".repeat(64)}`, name: "[internal] load build definition from Dockerfile", started: "2026-01-01T00:00:00Z" }] });
  });

  it("quiet prints nothing for progress, not even a failure's logs, but keeps the trace", () => {
    const out = sink();
    const display = createDisplay("quiet", { out, env: {}, now: () => T0 });
    for (const line of FAILURE) display.update(fromSolveStatusJson(line));
    display.done();
    expect(out.text).toBe("");
    expect(display.trace.failed()).toHaveLength(1);
  });

  it("plain prints the failed step's report at the end", () => {
    const out = sink();
    const display = createDisplay("plain", { out, env: {}, now: () => T0 });
    for (const line of FAILURE) display.update(fromSolveStatusJson(line));
    display.message("shim: a notice");
    display.done();
    expect(out.text).toContain("#3 ERROR: process");
    expect(out.text.indexOf("shim: a notice")).toBeGreaterThan(out.text.indexOf("#3 ERROR"));
    expect(out.text.endsWith("------\n > [2/2] RUN ./test.sh:\n#3 0.450 running 3 tests\n#3 0.700 FAIL: test_upload\n#3 1.200 1 of 3 failed\n------\n")).toBe(true);
  });

  it("NO_COLOR turns colours off in the tty view", () => {
    for (const [env, colored] of [[{}, true], [{ NO_COLOR: "1" }, false]] as const) {
      const out = sink(true);
      const display = createDisplay("tty", { out, env, now: () => T0 + 4000 });
      for (const line of SUCCESS) display.update(fromSolveStatusJson(line));
      display.done();
      expect(out.text.includes("\x1b[34m")).toBe(colored);
    }
  });
});
