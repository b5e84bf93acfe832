// `--progress=plain`: line-oriented output for logs and CI, in buildx's `#N …` format:
//   #3 [2/3] RUN make
//   #3 0.512 compiling…
//   #3 DONE 1.2s
// Lines of one vertex are grouped; when another vertex interrupts a running one, `#N ...` marks the break.
import { itemAmount } from "./format.ts";
import { isCancellation, type BuildTrace, type ProgressItem, type TraceEvent, type TraceVertex } from "./trace.ts";

/** A progress item is reprinted only after this much progress or time (as buildx does), or when it completes. */
const MIN_PROGRESS_DELTA = 0.05;
const MIN_TIME_DELTA_MS = 5000;

export class PlainPrinter {
  private current: TraceVertex | undefined;
  private first = true;
  private readonly lastPrinted = new Map<string, { current: number; timestamp: number }>();

  constructor(private readonly write: (text: string) => void) {}

  print(events: readonly TraceEvent[]): void {
    for (const event of events) {
      switch (event.kind) {
        case "started":
          // Concurrent starts would interleave empty headers: a vertex is announced when nothing else is active.
          if (!this.current) this.switchTo(event.vertex);
          break;
        case "item":
          this.printItem(event.vertex, event.item);
          break;
        case "log":
          this.switchTo(event.vertex);
          this.write(`#${event.vertex.index} ${event.line}\n`);
          break;
        case "warning":
          this.switchTo(event.vertex);
          this.write(`#${event.vertex.index} WARN: ${event.text}\n`);
          break;
        case "completed":
          this.printCompletion(event.vertex);
          break;
      }
    }
  }

  private switchTo(vertex: TraceVertex): void {
    if (this.current === vertex) return;
    if (this.current && this.current.completed === undefined) this.write(`#${this.current.index} ...\n`);
    if (!this.first) this.write("\n");
    this.first = false;
    this.write(`#${vertex.index} ${vertex.name}\n`);
    this.current = vertex;
  }

  private printItem(vertex: TraceVertex, item: ProgressItem): void {
    const key = `${vertex.digest}\0${item.id}`;
    const last = this.lastPrinted.get(key);
    const timestamp = item.timestamp ?? 0;
    if (last && item.completed === undefined) {
      const progress = item.total > 0 ? (item.current - last.current) / item.total : 0;
      if (progress < MIN_PROGRESS_DELTA && timestamp - last.timestamp < MIN_TIME_DELTA_MS) return;
    }
    this.lastPrinted.set(key, { current: item.current, timestamp });
    this.switchTo(vertex);
    const amount = itemAmount(item);
    let time = "";
    const end = item.completed ?? item.timestamp;
    if (item.started !== undefined && end !== undefined && end - item.started > 10) time = ` ${((end - item.started) / 1000).toFixed(1)}s`;
    if (item.completed !== undefined) time += " done";
    this.write(`#${vertex.index} ${item.id}${amount ? ` ${amount}` : ""}${time}\n`);
  }

  private printCompletion(vertex: TraceVertex): void {
    this.switchTo(vertex);
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
