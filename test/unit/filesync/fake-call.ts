// A recording ServerCall for driving attachables in unit tests: the test pushes request messages and reads
// what the handler sent, in order.
import type { Metadata, ServerCall } from "../../../src/buildkit/session/attachable.ts";

export interface FakeCall extends ServerCall {
  /** Every message the handler sent, in order. */
  readonly sent: Uint8Array[];
  /** Queues a request message for the handler. */
  push(message: Uint8Array): void;
  /** Half-closes the request side (the daemon's CloseSend). */
  end(): void;
  /** Cancels the call, as when the daemon resets the stream. */
  cancel(reason?: unknown): void;
  /** Resolves with the index of the first sent message (from `from` on) satisfying `predicate`. */
  waitForSent(predicate: (message: Uint8Array, index: number) => boolean, from?: number): Promise<number>;
  /** When set, each send waits for this before resolving (to exercise backpressure). */
  sendDelay?: () => Promise<void>;
  /** When set, called with every sent message (e.g. to forward it to another call). */
  onSend?: (message: Uint8Array) => void;
}

/** Connects two calls back to back: what one handler sends, the other receives. */
export function loopback(a: FakeCall, b: FakeCall): void {
  a.onSend = (m) => b.push(m);
  b.onSend = (m) => a.push(m);
}

export function fakeMetadata(values: Record<string, string[]>): Metadata {
  return {
    all: (key) => [...(values[key] ?? [])],
    first: (key) => values[key]?.[0],
  };
}

export function fakeCall(method: string, metadata: Record<string, string[]> = {}): FakeCall {
  const queue: Uint8Array[] = [];
  let ended = false;
  let wake: (() => void) | undefined;
  const controller = new AbortController();
  const watchers: (() => void)[] = [];
  const call: FakeCall = {
    method,
    metadata: fakeMetadata(metadata),
    sent: [],
    signal: controller.signal,
    requests: {
      async *[Symbol.asyncIterator]() {
        for (;;) {
          if (controller.signal.aborted) throw controller.signal.reason;
          const next = queue.shift();
          if (next !== undefined) {
            yield next;
            continue;
          }
          if (ended) return;
          await new Promise<void>((resolve) => {
            wake = resolve;
            controller.signal.addEventListener("abort", () => resolve(), { once: true });
          });
        }
      },
    },
    async send(message) {
      if (controller.signal.aborted) throw new Error("call cancelled");
      call.sent.push(message);
      for (const w of watchers.splice(0)) w();
      call.onSend?.(message);
      if (call.sendDelay) await call.sendDelay();
    },
    push(message) {
      queue.push(message);
      wake?.();
    },
    end() {
      ended = true;
      wake?.();
    },
    cancel(reason = new Error("cancelled")) {
      controller.abort(reason);
    },
    async waitForSent(predicate, from = 0) {
      for (;;) {
        for (let i = from; i < call.sent.length; i++) if (predicate(call.sent[i]!, i)) return i;
        await new Promise<void>((resolve) => watchers.push(resolve));
      }
    },
  };
  return call;
}
