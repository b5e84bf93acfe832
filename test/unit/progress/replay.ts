// Feeds a fixture (rawjson-shaped status updates) through the decoder into a BuildTrace, the way the live
// display does; `each` sees the trace and the events of every update.
import { fromSolveStatusJson } from "../../../src/buildkit/progress/status.ts";
import { BuildTrace, type TraceEvent } from "../../../src/buildkit/progress/trace.ts";
import { T0 } from "./fixtures.ts";

export function replay(
  fixture: readonly Record<string, unknown>[],
  each: (events: TraceEvent[], index: number, trace: BuildTrace) => void = () => undefined,
  options: { count?: number; logLines?: number; localClockAhead?: number } = {},
): BuildTrace {
  const trace = new BuildTrace(options.logLines ?? 6);
  fixture.slice(0, options.count ?? fixture.length).forEach((line, index) => {
    each(trace.update(fromSolveStatusJson(line), T0 + (options.localClockAhead ?? 0)), index, trace);
  });
  return trace;
}
