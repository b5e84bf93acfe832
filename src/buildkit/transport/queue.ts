// A single-consumer async queue between an event-driven producer (an HTTP/2 stream's 'data' events) and an
// `for await` consumer. Unlike a Readable's own async iterator, leaving the loop early does not destroy the
// underlying stream, which matters because the same HTTP/2 stream still carries our responses.

export interface QueueFlowControl {
  /** Called when the queue grows past the high-water mark: the producer should pause. */
  pause(): void;
  /** Called when the consumer has drained the queue below the mark again: the producer may resume. */
  resume(): void;
}

export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private ended = false;
  private failure: unknown = undefined;
  private waiter: (() => void) | undefined;
  private paused = false;

  constructor(
    private readonly flow?: QueueFlowControl,
    private readonly highWaterMark = 16,
  ) {}

  push(item: T): void {
    if (this.ended) return;
    this.items.push(item);
    if (this.flow && !this.paused && this.items.length >= this.highWaterMark) {
      this.paused = true;
      this.flow.pause();
    }
    this.wake();
  }

  /** No more items; the consumer finishes after draining what is queued. */
  end(): void {
    this.ended = true;
    this.wake();
  }

  /** Ends the queue with an error, raised to the consumer after the queued items. */
  fail(error: unknown): void {
    if (this.ended) return;
    this.failure = error;
    this.ended = true;
    this.wake();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (this.items.length > 0) {
        const item = this.items.shift() as T;
        if (this.paused && this.items.length < this.highWaterMark / 2) {
          this.paused = false;
          this.flow?.resume();
        }
        yield item;
        continue;
      }
      if (this.ended) {
        if (this.failure !== undefined) throw this.failure;
        return;
      }
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }
}
