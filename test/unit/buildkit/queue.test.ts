import { describe, expect, it } from "vitest";
import { AsyncQueue } from "../../../src/buildkit/transport/queue.ts";

describe("AsyncQueue", () => {
  it("pauses the producer at the high-water mark and resumes below half of it", async () => {
    const events: string[] = [];
    const queue = new AsyncQueue<number>({ pause: () => events.push("pause"), resume: () => events.push("resume") }, 4);
    for (let i = 0; i < 6; i++) queue.push(i);
    queue.end();
    expect(events).toEqual(["pause"]);
    const seen: number[] = [];
    for await (const item of queue) {
      seen.push(item);
      // Taking item 4 leaves one queued, below half the mark of 4.
      expect(events).toEqual(item < 4 ? ["pause"] : ["pause", "resume"]);
    }
    expect(seen).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it("delivers queued items before the failure, and wakes a waiting consumer", async () => {
    const queue = new AsyncQueue<string>();
    const seen: string[] = [];
    const consuming = (async () => {
      for await (const item of queue) seen.push(item);
    })();
    queue.push("a");
    await new Promise((resolve) => setTimeout(resolve, 0));
    queue.push("b");
    queue.fail(new Error("reset"));
    queue.push("ignored");
    await expect(consuming).rejects.toThrow("reset");
    expect(seen).toEqual(["a", "b"]);
  });
});
