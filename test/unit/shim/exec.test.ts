import { describe, expect, it } from "vitest";
import { runChild } from "../../../src/shim/exec.ts";
import type { ChildResult, Effect } from "../../../src/shim/plan.ts";

// The spawn path of the executor (used when a plan has effects): exit status, death by signal, env changes,
// and effects run around the child.
describe("runChild", () => {
  const sh = "/bin/sh";

  it("reports the exit code and the killing signal", async () => {
    expect(await runChild({ file: sh, plan: { binary: "docker", args: ["-c", "exit 3"] }, env: process.env })).toEqual({ code: 3 });
    expect(await runChild({ file: sh, plan: { binary: "docker", args: ["-c", "kill -TERM $$"] }, env: process.env })).toEqual({ signal: "SIGTERM" });
  });

  it("applies env changes and runs effects before and after, in order", async () => {
    const log: string[] = [];
    const effect: Effect = {
      describe: "record",
      before: async () => void log.push("before"),
      after: async (result: ChildResult) => void log.push(`after ${JSON.stringify(result)}`),
    };
    const result = await runChild({
      file: sh,
      plan: { binary: "docker", args: ["-c", 'test "$ADDED" = yes && test -z "$REMOVED" && exit 4'], env: { ADDED: "yes", REMOVED: null }, effects: [effect] },
      env: { ...process.env, REMOVED: "x" },
    });
    expect(result).toEqual({ code: 4 });
    expect(log).toEqual(["before", 'after {"code":4}']);
  });

  it("aborts prepared effects when a later one fails to prepare, and starts no child", async () => {
    const log: string[] = [];
    const first: Effect = { describe: "first", before: async () => void log.push("first"), abort: () => void log.push("abort first") };
    const failing: Effect = { describe: "failing", before: async () => { throw new Error("no room"); }, abort: () => void log.push("abort failing") };
    await expect(runChild({ file: sh, plan: { binary: "docker", args: ["-c", "echo ran >&2"], effects: [first, failing] }, env: process.env })).rejects.toThrow("no room");
    expect(log).toEqual(["first", "abort first", "abort failing"]);
  });
});
