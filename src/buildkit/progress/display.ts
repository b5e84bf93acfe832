// `--progress=auto|tty|plain|rawjson|quiet`: one display per build, fed with every StatusResponse.
import { errorReport, PlainPrinter } from "./plain.ts";
import { toSolveStatusJson, type StatusUpdate } from "./status.ts";
import { BuildTrace } from "./trace.ts";
import { TtyView, type TtyOutput } from "./tty.ts";

export type ProgressMode = "auto" | "tty" | "plain" | "rawjson" | "quiet";

export interface ProgressDisplay {
  /** The folded build state (for the summary). */
  readonly trace: BuildTrace;
  /** What `auto` became. */
  readonly mode: Exclude<ProgressMode, "auto">;
  update(status: StatusUpdate): void;
  /** A notice for stderr that must not tear the live view (quiet mode prints it too). */
  message(line: string): void;
  /** Final frame and, after a failure, the failed steps' last log lines. */
  done(): void;
  /** Leave the terminal usable right away (Ctrl-C): no final frame. */
  abandon(): void;
}

export interface DisplayOptions {
  /** Where progress goes (stderr). */
  out: TtyOutput & { isTTY?: boolean };
  env: Readonly<Record<string, string | undefined>>;
  now?: () => number;
}

/** BUILDKIT_TTY_LOG_LINES, default 6 (as buildx); 0 hides log tails. */
export function ttyLogLines(env: Readonly<Record<string, string | undefined>>): number {
  const value = Number.parseInt(env.BUILDKIT_TTY_LOG_LINES ?? "", 10);
  return Number.isFinite(value) && value >= 0 ? value : 6;
}

export function resolveMode(mode: ProgressMode, isTTY: boolean): Exclude<ProgressMode, "auto"> {
  if (mode === "auto") return isTTY ? "tty" : "plain";
  return mode;
}

export function createDisplay(requested: ProgressMode, options: DisplayOptions): ProgressDisplay {
  const now = options.now ?? Date.now;
  const isTTY = options.out.isTTY === true;
  if (requested === "tty" && !isTTY) throw new Error("--progress=tty needs a terminal on stderr; use --progress=plain");
  const mode = resolveMode(requested, isTTY);
  const logLines = ttyLogLines(options.env);
  const trace = new BuildTrace(Math.max(1, logLines));
  const write = (text: string) => options.out.write(text);

  switch (mode) {
    case "tty": {
      const view = new TtyView(trace, options.out, { logLines, color: !options.env.NO_COLOR, now });
      view.start();
      return {
        trace,
        mode,
        update(status) {
          trace.update(status, now());
          view.changed();
        },
        message: (line) => view.message(line),
        done() {
          view.finish();
          write(errorReport(trace));
        },
        abandon: () => view.abandon(),
      };
    }
    case "plain": {
      const printer = new PlainPrinter(write);
      // Batches like buildx (at most one print per 100 ms, a 150 ms ticker): a step's lines come out together.
      let lastFlush = 0;
      const ticker = setInterval(() => printer.flush(), 150);
      ticker.unref();
      return {
        trace,
        mode,
        update(status) {
          printer.add(trace.update(status, now()));
          if (now() - lastFlush >= 100) {
            lastFlush = now();
            printer.flush();
          }
        },
        message(line) {
          printer.flush();
          write(`${line}\n`);
        },
        done() {
          clearInterval(ticker);
          printer.flush();
          write(errorReport(trace));
        },
        abandon: () => clearInterval(ticker),
      };
    }
    case "rawjson":
      return {
        trace,
        mode,
        update(status) {
          trace.update(status, now());
          write(`${JSON.stringify(toSolveStatusJson(status))}\n`);
        },
        message: (line) => write(`${line}\n`),
        done: () => undefined,
        abandon: () => undefined,
      };
    case "quiet":
      return {
        trace,
        mode,
        update: (status) => void trace.update(status, now()),
        message: (line) => write(`${line}\n`),
        done: () => undefined,
        abandon: () => undefined,
      };
  }
}
