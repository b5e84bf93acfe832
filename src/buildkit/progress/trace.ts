// The build as the displays see it: vertexes (steps) with their progress items, log lines and warnings,
// folded from the Status stream. Pure: the caller passes the local clock, so recorded sequences replay
// deterministically in tests. Times are daemon times (ms since the epoch); `localOffsetMs` maps them to the
// local clock the way buildx does (offset fixed when the first vertex starts), so a skewed daemon clock does
// not distort the elapsed time shown.
import { timestampMs, type StatusUpdate } from "./status.ts";

/** How many log lines of each vertex are kept for the error report after a failure. */
export const ERROR_LOG_LINES = 20;

export interface ProgressItem {
  readonly id: string;
  current: number;
  total: number;
  /** Daemon time of the latest update. */
  timestamp?: number;
  started?: number;
  completed?: number;
}

export interface TraceVertex {
  readonly digest: string;
  /** 1-based, in order of first appearance (the `#N` of the plain display). */
  readonly index: number;
  name: string;
  cached: boolean;
  error: string;
  started?: number;
  completed?: number;
  /** Progress items in the order they started. */
  readonly items: ProgressItem[];
  /** The last complete log lines, as `<seconds> <text>`, for the error report. */
  readonly recentLogs: string[];
  /** Text of an unfinished last log line, and the daemon time its first piece arrived (a line's timestamp). */
  partialLog: string;
  partialLogAt?: number;
  /** The last lines as a terminal would show them (`\r` rewrites), for the live view. */
  readonly screenLines: string[];
  /** Whether the last screen line is the unfinished log line (replaced as it grows). */
  screenPartial: boolean;
  readonly warnings: string[];
}

/** What changed in one update, in order: the plain display prints exactly these. */
export type TraceEvent =
  | { kind: "started"; vertex: TraceVertex }
  | { kind: "item"; vertex: TraceVertex; item: ProgressItem }
  | { kind: "log"; vertex: TraceVertex; line: string }
  | { kind: "warning"; vertex: TraceVertex; text: string }
  | { kind: "completed"; vertex: TraceVertex };

export class BuildTrace {
  /** Every vertex seen, by digest. */
  readonly byDigest = new Map<string, TraceVertex>();
  /** Vertexes that have started, in order of starting (the rows of the live view). */
  readonly started: TraceVertex[] = [];
  /** Daemon time of the first started vertex. */
  firstStarted?: number;
  /** local clock − daemon clock, fixed when the first vertex started. */
  localOffsetMs = 0;
  warnings: { vertex: TraceVertex; text: string }[] = [];

  constructor(private readonly screenLineLimit = 6) {}

  /** Folds one update in; `localNow` is the local clock (ms) when it arrived. */
  update(update: StatusUpdate, localNow: number): TraceEvent[] {
    const events: TraceEvent[] = [];
    for (const v of update.vertexes) {
      let vertex = this.byDigest.get(v.digest);
      if (!vertex) {
        vertex = {
          digest: v.digest,
          index: this.byDigest.size + 1,
          name: v.name,
          cached: false,
          error: "",
          items: [],
          recentLogs: [],
          partialLog: "",
          screenLines: [],
          screenPartial: false,
          warnings: [],
        };
        this.byDigest.set(v.digest, vertex);
      }
      const started = timestampMs(v.started);
      const completed = timestampMs(v.completed);
      // A later update without `started` (a duplicate initial vertex) must not reset a started one.
      if (vertex.started !== undefined && started === undefined) continue;
      if (v.name) vertex.name = v.name;
      const wasStarted = vertex.started !== undefined;
      const wasCompleted = vertex.completed !== undefined;
      if (started !== undefined) vertex.started = started;
      vertex.completed = completed;
      vertex.cached = v.cached;
      vertex.error = v.error;
      if (started !== undefined && !wasStarted) {
        if (this.firstStarted === undefined) {
          this.firstStarted = started;
          this.localOffsetMs = localNow - started;
        }
        this.started.push(vertex);
        events.push({ kind: "started", vertex });
      }
      if (completed !== undefined && !wasCompleted) {
        if (vertex.partialLog) this.pushLogLine(vertex, vertex.partialLog, vertex.partialLogAt, events);
        vertex.partialLog = "";
        vertex.partialLogAt = undefined;
        events.push({ kind: "completed", vertex });
      }
    }
    for (const s of update.statuses) {
      const vertex = this.byDigest.get(s.vertex);
      if (!vertex) continue;
      let item = vertex.items.find((i) => i.id === s.ID);
      if (!item) {
        item = { id: s.ID, current: 0, total: 0 };
        vertex.items.push(item);
      }
      item.current = Number(s.current);
      item.total = Number(s.total);
      item.timestamp = timestampMs(s.timestamp);
      item.started = timestampMs(s.started) ?? item.started;
      item.completed = timestampMs(s.completed);
      events.push({ kind: "item", vertex, item });
    }
    for (const w of update.warnings) {
      const vertex = this.byDigest.get(w.vertex);
      if (!vertex) continue;
      const text = Buffer.from(w.short).toString("utf8");
      vertex.warnings.push(text);
      this.warnings.push({ vertex, text });
      events.push({ kind: "warning", vertex, text });
    }
    for (const l of update.logs) {
      const vertex = this.byDigest.get(l.vertex);
      if (!vertex) continue;
      const at = timestampMs(l.timestamp);
      const lines = (vertex.partialLog + Buffer.from(l.msg).toString("utf8")).split("\n");
      const rest = lines.pop() ?? "";
      lines.forEach((line, i) => this.pushLogLine(vertex, line, i === 0 && vertex.partialLog ? (vertex.partialLogAt ?? at) : at, events));
      // A line is stamped with the time its first piece arrived, as buildx does.
      vertex.partialLogAt = rest && (lines.length > 0 || !vertex.partialLog) ? at : vertex.partialLogAt;
      vertex.partialLog = rest;
      if (rest) this.setScreenPartial(vertex);
    }
    return events;
  }

  private pushLogLine(vertex: TraceVertex, line: string, at: number | undefined, events: TraceEvent[]): void {
    const text = line.endsWith("\r") ? line.slice(0, -1) : line;
    const seconds = at !== undefined && vertex.started !== undefined ? Math.max(0, (at - vertex.started) / 1000) : 0;
    const formatted = `${seconds.toFixed(seconds < 10 ? 3 : seconds < 100 ? 2 : 1)} ${text}`;
    vertex.recentLogs.push(formatted);
    if (vertex.recentLogs.length > ERROR_LOG_LINES) vertex.recentLogs.shift();
    this.dropScreenPartial(vertex);
    vertex.screenLines.push(screenText(text));
    if (vertex.screenLines.length > this.screenLineLimit) vertex.screenLines.shift();
    events.push({ kind: "log", vertex, line: formatted });
  }

  /** The unfinished line is shown too (progress bars redraw it with `\r`), marked so it can be replaced. */
  private setScreenPartial(vertex: TraceVertex): void {
    this.dropScreenPartial(vertex);
    vertex.screenPartial = true;
    vertex.screenLines.push(screenText(vertex.partialLog));
    if (vertex.screenLines.length > this.screenLineLimit) vertex.screenLines.shift();
  }

  private dropScreenPartial(vertex: TraceVertex): void {
    if (vertex.screenPartial) vertex.screenLines.pop();
    vertex.screenPartial = false;
  }

  /** Steps counted the way buildx's header counts them: every vertex seen, and those completed. */
  counts(): { total: number; completed: number; cached: number } {
    let completed = 0;
    let cached = 0;
    for (const v of this.byDigest.values()) {
      if (v.completed !== undefined) completed++;
      if (v.cached) cached++;
    }
    return { total: this.byDigest.size, completed, cached };
  }

  failed(): TraceVertex[] {
    return this.started.filter((v) => v.error !== "" && !isCancellation(v.error));
  }
}

/** What a terminal shows for one line: the text after the last `\r`, tabs as spaces, no control characters. */
export function screenText(line: string): string {
  const cr = line.lastIndexOf("\r");
  const visible = cr === -1 ? line : line.slice(cr + 1);
  return visible
    .replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, "")
    .replace(/\t/g, "    ")
    .replace(/[\x00-\x1f\x7f]/g, "");
}

/** BuildKit marks vertexes of a cancelled build with an error ending in Go's context.Canceled text. */
export function isCancellation(error: string): boolean {
  return error.endsWith("context canceled");
}
