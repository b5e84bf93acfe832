import { describe, expect, it } from "vitest";
import { renderFrame, TtyView, type FrameOptions } from "../../../src/buildkit/progress/tty.ts";
import { CARRIAGE_RETURNS, FAILURE, PARALLEL, SUCCESS, T0 } from "./fixtures.ts";
import { replay } from "./replay.ts";

const frame = (fixture: readonly Record<string, unknown>[], count: number, options: Partial<FrameOptions> & { nowSeconds: number }) =>
  renderFrame(replay(fixture, undefined, { count }), {
    now: T0 + options.nowSeconds * 1000,
    width: options.width ?? 72,
    height: options.height ?? 30,
    final: options.final ?? false,
    logLines: options.logLines ?? 6,
    color: options.color ?? false,
  });

describe("tty progress frames", () => {
  it("golden: mid-build, a running step with its last log lines (the unfinished one too)", () => {
    expect(frame(SUCCESS, 9, { nowSeconds: 1.6 })).toEqual([
      "[+] Building 1.6s (5/6)",
      " => [internal] load build definition from Dockerfile               0.0s",
      " => => transferring dockerfile: 170B                               0.0s",
      " => [internal] load metadata for 127.0.0.1:5000/base:latest        0.3s",
      " => CACHED [1/3] FROM 127.0.0.1:5000/base:latest@sha256:999999999  0.0s",
      " => [internal] load build context                                  0.6s",
      " => => transferring context: 5.24MB                                0.6s",
      " => [2/3] COPY app /app                                            0.0s",
      " => [3/3] RUN make                                                 0.6s",
      " => => # compiling a.c",
      " => => # compiling b",
    ]);
  });

  it("golden: the final frame says FINISHED and drops the log tails", () => {
    const lines = frame(SUCCESS, SUCCESS.length, { nowSeconds: 3.4, final: true });
    expect(lines[0]).toBe("[+] Building 3.4s (7/7) FINISHED");
    expect(lines).toContain(" => [3/3] RUN make                                                 2.1s");
    expect(lines).toContain(" => => exporting layers                                            0.2s");
    expect(lines.some((l) => l.includes("# "))).toBe(false);
    expect(lines).toHaveLength(12);
  });

  it("marks failed and cancelled steps, and colours completed rows only when asked", () => {
    expect(frame(FAILURE, FAILURE.length, { nowSeconds: 2, final: true })[3]).toBe(
      " => ERROR [2/2] RUN ./test.sh                                      1.3s",
    );
    const colored = frame(PARALLEL, PARALLEL.length, { nowSeconds: 2, final: true, color: true });
    expect(colored[1]).toBe("\x1b[33m => CANCELED [stage-a 1/1] RUN ./slow.sh                           1.0s\x1b[0m");
    expect(colored[2]).toBe("\x1b[34m => [stage-b 1/1] RUN ./fast.sh                                    0.7s\x1b[0m");
  });

  it("fits the terminal: names are cut, nothing reaches the last column", () => {
    const lines = frame(SUCCESS, 9, { nowSeconds: 1.6, width: 40 });
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(39);
    expect(lines[3]).toBe(" => [internal] load metadata for   0.3s");
  });

  it("a short terminal keeps the running step and its logs, dropping completed rows from the top", () => {
    expect(frame(SUCCESS, 9, { nowSeconds: 1.6, height: 6 })).toEqual([
      "[+] Building 1.6s (5/6)",
      " => [2/3] COPY app /app                                            0.0s",
      " => [3/3] RUN make                                                 0.6s",
      " => => # compiling a.c",
      " => => # compiling b",
    ]);
  });

  it("shows what a terminal would: the text after the last carriage return", () => {
    expect(frame(CARRIAGE_RETURNS, 2, { nowSeconds: 0.3 }).slice(2)).toEqual([" => => # fetching", " => => #  50%"]);
    expect(frame(CARRIAGE_RETURNS, 3, { nowSeconds: 0.5 }).slice(2)).toEqual([" => => # fetching", " => => # 100%", " => => # done"]);
  });

  it("BUILDKIT_TTY_LOG_LINES limits the tail", () => {
    const lines = frame(CARRIAGE_RETURNS, 3, { nowSeconds: 0.5, logLines: 1 });
    expect(lines.slice(2)).toEqual([" => => # done"]);
  });

  it("maps daemon times to the local clock from the first started step (a skewed daemon clock)", () => {
    const trace = replay(SUCCESS, undefined, { count: 9, localClockAhead: 60_000 });
    const lines = renderFrame(trace, { now: T0 + 61_600, width: 72, height: 30, final: false, logLines: 6, color: false });
    expect(lines[0]).toBe("[+] Building 1.6s (5/6)");
    expect(lines[8]).toContain("RUN make");
    expect(lines[8]).toMatch(/ 0\.6s$/);
  });
});

describe("TtyView", () => {
  it("redraws in place: cursor back over the previous frame, lines cleared, rest of the screen cleared", () => {
    const writes: string[] = [];
    let now = T0 + 1600;
    const trace = replay(SUCCESS, undefined, { count: 9 });
    const view = new TtyView(trace, { write: (t: string) => writes.push(t), columns: 72, rows: 30 }, { logLines: 6, color: false, now: () => now });
    view.start();
    view.changed();
    now += 200;
    view.changed();
    view.message("shim: a notice");
    view.finish();
    expect(writes[0]).toBe("\x1b[?25l");
    expect(writes[1]!.startsWith("[+] Building 1.6s (5/6)\x1b[K\n")).toBe(true);
    expect(writes[1]!.endsWith("\x1b[J")).toBe(true);
    expect(writes[2]!.startsWith("\x1b[11F[+] Building 1.8s")).toBe(true);
    expect(writes[3]).toBe("\x1b[11F\x1b[Jshim: a notice\n");
    expect(writes[4]!.startsWith("[+] Building 1.8s (5/6)\x1b[K\n")).toBe(true);
    expect(writes[5]).toBe("\x1b[?25h");
    view.message("after");
    expect(writes[6]).toBe("after\n");
  });

  it("skips a redraw requested within 100 ms of the last one", () => {
    const writes: string[] = [];
    const now = T0;
    const view = new TtyView(replay(SUCCESS, undefined, { count: 2 }), { write: (t: string) => writes.push(t) }, { logLines: 6, color: false, now: () => now });
    view.changed();
    view.changed();
    expect(writes).toHaveLength(1);
    view.abandon();
  });
});
