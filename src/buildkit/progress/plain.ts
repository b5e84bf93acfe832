// `--progress=plain`: line-oriented output for logs and CI, in buildx's `#N …` format:
//   #3 [2/3] RUN make
//   #3 0.512 compiling…
//   #3 DONE 1.2s
// Updates are collected and printed in batches (the display flushes every ~100 ms, as buildx rate-limits), so
// that a vertex's progress items, logs and completion come out together. Within a batch, vertexes that
// completed come first (in completion order), then the others; when another vertex interrupts a running one,
// `#N ...` marks the break.
import { itemAmount } from "./format.ts";
import { isCancellation, type BuildTrace, type ProgressItem, type TraceEvent, type TraceVertex } from "./trace.ts";

/** A progress item is reprinted only after this much progress or time (as buildx does), or when it completes. */
const MIN_PROGRESS_DELTA = 0.05;
const MIN_TIME_DELTA_MS = 5000;

interface PendingVertex {
  started: boolean;
  items: Map<string, ProgressItem>;
  lines: string[];
  completed: boolean;
}

export class PlainPrinter {
  private current: TraceVertex | undefined;
  private first = true;
  private readonly lastPrinted = new Map<string, { current: number; timestamp: number }>();
  private pending = new Map<TraceVertex, PendingVertex>();

  constructor(private readonly write: (text: string) => void) {}

  /** Queues the events of one update. */
  add(events: readonly TraceEvent[]): void {
    for (const event of events) {
      let entry = this.pending.get(event.vertex);
      if (!entry) {
        entry = { started: false, items: new Map(), lines: [], completed: false };
        this.pending.set(event.vertex, entry);
      }
      switch (event.kind) {
        case "started":
          entry.started = true;
          break;
        case "item":
          entry.items.set(event.item.id, event.item);
          break;
        case "log":
          entry.lines.push(event.line);
          break;
        case "warning":
          entry.lines.push(`WARN: ${event.text}`);
          break;
        case "completed":
          entry.completed = true;
          break;
      }
    }
  }

  /** Prints what was queued. */
  flush(): void {
    const batch = [...this.pending];
    this.pending = new Map();
    const completed = batch.filter(([, e]) => e.completed).sort(([a], [b]) => (a.completed ?? 0) - (b.completed ?? 0));
    const others = batch.filter(([, e]) => !e.completed);
    // The vertex being printed goes on first if it has more to say, so it is not interrupted needlessly.
    others.sort(([a], [b]) => Number(b === this.current) - Number(a === this.current));
    for (const [vertex, entry] of [...completed, ...others]) this.printVertex(vertex, entry);
  }

  private printVertex(vertex: TraceVertex, entry: PendingVertex): void {
    const items = [...entry.items.values()].filter((item) => this.itemWorthPrinting(vertex, item));
    const hasOutput = items.length > 0 || entry.lines.length > 0 || entry.completed;
    // A vertex that only started is announced when nothing else is active (concurrent starts would interleave).
    if (!hasOutput && !(entry.started && !this.current)) return;
    this.switchTo(vertex);
    for (const item of items) this.printItem(vertex, item);
    for (const line of entry.lines) this.write(`#${vertex.index} ${line}\n`);
    if (entry.completed && vertex.completed !== undefined) this.printCompletion(vertex);
  }

  private switchTo(vertex: TraceVertex): void {
    if (this.current === vertex) return;
    if (this.current && this.current.completed === undefined) this.write(`#${this.current.index} ...\n`);
    if (!this.first) this.write("\n");
    this.first = false;
    this.write(`#${vertex.index} ${vertex.name}\n`);
    this.current = vertex;
  }

  private itemWorthPrinting(vertex: TraceVertex, item: ProgressItem): boolean {
    if (item.started === undefined && item.completed === undefined && item.current === 0) return false;
    const last = this.lastPrinted.get(`${vertex.digest}\0${item.id}`);
    if (!last || item.completed !== undefined) return true;
    const progress = item.total > 0 ? (item.current - last.current) / item.total : 0;
    return progress >= MIN_PROGRESS_DELTA || (item.timestamp ?? 0) - last.timestamp >= MIN_TIME_DELTA_MS;
  }

  private printItem(vertex: TraceVertex, item: ProgressItem): void {
    this.lastPrinted.set(`${vertex.digest}\0${item.id}`, { current: item.current, timestamp: item.timestamp ?? 0 });
    const amount = itemAmount(item);
    let time = "";
    const end = item.completed ?? item.timestamp;
    if (item.started !== undefined && end !== undefined && end - item.started > 10) time = ` ${((end - item.started) / 1000).toFixed(1)}s`;
    if (item.completed !== undefined) time += " done";
    this.write(`#${vertex.index} ${item.id}${amount ? ` ${amount}` : ""}${time}\n`);
  }

  private printCompletion(vertex: TraceVertex): void {
    if (vertex.error) {
      this.write(isCancellation(vertex.error) ? `#${vertex.index} CANCELED\n` : `#${vertex.index} ERROR: ${vertex.error}\n`);
    } else if (vertex.cached) {
      this.write(`#${vertex.index} CACHED\n`);
    } else {
      const ms = vertex.started !== undefined && vertex.completed !== undefined ? vertex.completed - vertex.started : 0;
      this.write(`#${vertex.index} DONE ${(Math.max(0, ms) / 1000).toFixed(1)}s\n`);
    }
    this.current = undefined;
  }
}

/**
 * The block printed after the progress for every failed step: its name and last log lines.
 *   ------
 *    > [2/3] RUN make:
 *   #3 0.512 make: *** [all] Error 2
 *   ------
 */
export function errorReport(trace: BuildTrace): string {
  let out = "";
  for (const vertex of trace.failed()) {
    out += `------\n > ${vertex.name}:\n`;
    for (const line of vertex.recentLogs) out += `#${vertex.index} ${line}\n`;
    out += "------\n";
  }
  return out;
}
