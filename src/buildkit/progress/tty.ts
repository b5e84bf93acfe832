// `--progress=tty`: the buildx-like live view, redrawn in place.
//   [+] Building 12.3s (5/15)
//    => [internal] load build definition from Dockerfile              0.0s
//    => CACHED [1/3] FROM registry/busybox                            0.0s
//    => [2/3] RUN make                                                3.2s
//    => => # compiling foo.c
// `renderFrame` is pure (golden tests); `TtyView` owns the cursor movement and the redraw timer.
import { formatSeconds, itemAmount } from "./format.ts";
import { isCancellation, type BuildTrace, type TraceVertex } from "./trace.ts";

export interface FrameOptions {
  /** Local clock (ms). */
  now: number;
  /** Terminal size; the frame never writes into the last column (no wrapping). */
  width: number;
  height: number;
  /** The final frame: every row, `FINISHED` when all steps completed, no log tails. */
  final: boolean;
  /** Log lines shown under each running step (BUILDKIT_TTY_LOG_LINES). */
  logLines: number;
  color: boolean;
}

const COLORS = { done: "\x1b[34m", error: "\x1b[31m", cancel: "\x1b[33m", warn: "\x1b[33m", faint: "\x1b[2m", reset: "\x1b[0m" };
const PREFIX = " => ";

interface Row {
  text: string;
  color?: string;
  /** The step this row belongs to, and whether it is its main line (rows are dropped per step). */
  vertex: TraceVertex;
  completed: boolean;
}

function duration(startDaemon: number | undefined, endDaemon: number | undefined, trace: BuildTrace, now: number): number {
  if (startDaemon === undefined) return 0;
  const end = endDaemon ?? now - trace.localOffsetMs;
  const ms = end - startDaemon;
  return ms < 50 ? 0 : ms;
}

/** ` => name [status]` padded so that the timer ends one column before the edge. */
function jobLine(name: string, status: string, ms: number, width: number): string | undefined {
  const timer = ` ${formatSeconds(ms)}`;
  let left = width - 1 - PREFIX.length - timer.length - 1;
  let showStatus = false;
  if (status && left + status.length > 20) {
    showStatus = true;
    left -= status.length + 1;
  }
  if (left < 12) return undefined; // too narrow to be useful
  const shown = name.length > left ? name.slice(0, left) : name;
  const body = PREFIX + shown + (showStatus ? ` ${status}` : "");
  return body.padEnd(width - 1 - timer.length) + timer;
}

function stepRows(vertex: TraceVertex, trace: BuildTrace, options: FrameOptions): Row[] {
  const rows: Row[] = [];
  let name = vertex.name.replace(/\t/g, " ");
  let color: string | undefined;
  if (vertex.error) {
    const cancelled = isCancellation(vertex.error);
    name = `${cancelled ? "CANCELED" : "ERROR"} ${name}`;
    color = cancelled ? COLORS.cancel : COLORS.error;
  }
  if (vertex.cached) name = `CACHED ${name}`;
  const completed = vertex.completed !== undefined;
  const main = jobLine(name, "", duration(vertex.started, vertex.completed, trace, options.now), options.width);
  if (main === undefined) return rows;
  rows.push({ text: main, color: completed ? (color ?? COLORS.done) : undefined, vertex, completed });
  for (const item of vertex.items) {
    if (item.started === undefined) continue;
    const line = jobLine(`=> ${item.id}`, itemAmount(item), duration(item.started, item.completed, trace, options.now), options.width);
    const itemDone = item.completed !== undefined;
    if (line !== undefined) rows.push({ text: line, color: itemDone ? COLORS.done : undefined, vertex, completed: itemDone });
  }
  for (const warning of vertex.warnings) {
    const line = jobLine(`WARN: ${warning}`, "", 0, options.width);
    if (line !== undefined) rows.push({ text: line, color: COLORS.warn, vertex, completed: true });
  }
  return rows;
}

function logRows(vertex: TraceVertex, options: FrameOptions): string[] {
  const room = options.width - 1 - " => => # ".length;
  if (room < 8) return [];
  return vertex.screenLines.slice(-options.logLines).map((line) => ` => => # ${line.length > room ? line.slice(0, room) : line}`);
}

/** One frame of the live view as lines (no trailing newlines, colours only when asked for). */
export function renderFrame(trace: BuildTrace, options: FrameOptions): string[] {
  const counts = trace.counts();
  const elapsed = trace.firstStarted === undefined ? 0 : options.now - (trace.firstStarted + trace.localOffsetMs);
  const finished = options.final && counts.completed > 0 && counts.completed === counts.total;
  const header = `[+] Building ${formatSeconds(elapsed)} (${counts.completed}/${counts.total})${finished ? " FINISHED" : ""}`;
  const paint = (text: string, color: string | undefined) => (options.color && color ? `${color}${text}${COLORS.reset}` : text);

  const blocks = trace.started.map((vertex) => ({ vertex, rows: stepRows(vertex, trace, options), logs: [] as string[] }));
  let rows = blocks.reduce((n, b) => n + b.rows.length, 0);
  const limit = Math.max(1, options.height - 2);
  if (!options.final) {
    // Log tails of running steps, newest steps first, in the room left after the running steps' own rows
    // (completed rows give way to them below, as in buildx).
    let free = limit - blocks.reduce((n, b) => n + (b.vertex.completed === undefined ? b.rows.length : 0), 0);
    for (const block of [...blocks].reverse()) {
      if (block.vertex.completed !== undefined || block.rows.length === 0) continue;
      const logs = logRows(block.vertex, options);
      if (logs.length === 0 || logs.length > free) continue;
      block.logs = logs;
      rows += logs.length;
      free -= logs.length;
    }
    // Too many rows: drop completed steps from the top first, then whatever is oldest.
    for (const dropCompleted of [true, false]) {
      for (const block of blocks) {
        if (rows <= limit) break;
        if (block.rows.length === 0 || (dropCompleted && block.vertex.completed === undefined)) continue;
        rows -= block.rows.length + block.logs.length;
        block.rows = [];
        block.logs = [];
      }
    }
  }
  const lines = [header.length > options.width - 1 ? header.slice(0, options.width - 1) : header];
  for (const block of blocks) {
    for (const row of block.rows) lines.push(paint(row.text, row.color));
    for (const log of block.logs) lines.push(paint(log, COLORS.faint));
  }
  return lines;
}

export interface TtyOutput {
  write(text: string): unknown;
  columns?: number;
  rows?: number;
}

export interface TtyViewOptions {
  logLines: number;
  color: boolean;
  now?: () => number;
  /** Redraw period; buildx uses a 150 ms ticker and at most one redraw per 100 ms for updates. */
  tickMs?: number;
  minRedrawMs?: number;
}

/** Draws frames in place: moves the cursor back over the previous frame and overwrites it. */
export class TtyView {
  private lineCount = 0;
  private lastDraw = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(
    private readonly trace: BuildTrace,
    private readonly out: TtyOutput,
    private readonly options: TtyViewOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  start(): void {
    this.out.write("\x1b[?25l"); // hide the cursor while redrawing
    this.timer = setInterval(() => this.draw(false), this.options.tickMs ?? 150);
    this.timer.unref();
  }

  /** After an update: redraw unless the last redraw was very recent (the ticker catches up). */
  changed(): void {
    if (this.now() - this.lastDraw >= (this.options.minRedrawMs ?? 100)) this.draw(false);
  }

  /** Prints a line above the live view (the view is redrawn below it on the next tick). */
  message(line: string): void {
    this.out.write(`${this.erase()}${line}\n`);
    this.lineCount = 0;
  }

  finish(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.draw(true);
    this.lineCount = 0; // the final frame stays; later output goes below it
    this.out.write("\x1b[?25h");
  }

  /** Restores the cursor without a final frame (the process is about to exit). */
  abandon(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.out.write("\x1b[?25h");
  }

  private erase(): string {
    return this.lineCount > 0 ? `\x1b[${this.lineCount}F\x1b[J` : "";
  }

  private draw(final: boolean): void {
    const now = this.now();
    this.lastDraw = now;
    const lines = renderFrame(this.trace, {
      now,
      width: this.out.columns && this.out.columns > 0 ? this.out.columns : 80,
      height: this.out.rows && this.out.rows > 0 ? this.out.rows : 24,
      final,
      logLines: this.options.logLines,
      color: this.options.color,
    });
    // One write per frame: cursor to the first line of the previous frame, each line cleared to its end,
    // then everything below the new frame cleared (it may be shorter).
    const up = this.lineCount > 0 ? `\x1b[${this.lineCount}F` : "";
    this.out.write(`${up}${lines.map((l) => `${l}\x1b[K\n`).join("")}\x1b[J`);
    this.lineCount = lines.length;
  }
}
