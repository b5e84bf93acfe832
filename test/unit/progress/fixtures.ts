// Status sequences written by hand in buildx's rawjson shape (one client.SolveStatus per element), modelled on
// what BuildKit sends for a Dockerfile build: vertexes announced before they start, progress items,
// log chunks that split lines, a cached step, a failing step, two stages running at once.
// Times are seconds after T0 (2026-01-01T00:00:00Z); the daemon clock equals the local clock unless a test
// says otherwise.

export const T0 = Date.parse("2026-01-01T00:00:00Z");

const at = (seconds: number) => new Date(T0 + Math.round(seconds * 1000)).toISOString().replace(".000Z", "Z");
const digest = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;
const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

type Json = Record<string, unknown>;

function vertex(n: number, name: string, fields: { started?: number; completed?: number; cached?: boolean; error?: string; inputs?: number[] } = {}): Json {
  return {
    digest: digest(n),
    ...(fields.inputs ? { inputs: fields.inputs.map(digest) } : {}),
    name,
    ...(fields.started !== undefined ? { started: at(fields.started) } : {}),
    ...(fields.completed !== undefined ? { completed: at(fields.completed) } : {}),
    ...(fields.cached ? { cached: true } : {}),
    ...(fields.error ? { error: fields.error } : {}),
  };
}

function status(n: number, id: string, fields: { current?: number; total?: number; at: number; started?: number; completed?: number }): Json {
  return {
    id,
    vertex: digest(n),
    ...(fields.total ? { total: fields.total } : {}),
    current: fields.current ?? 0,
    timestamp: at(fields.at),
    ...(fields.started !== undefined ? { started: at(fields.started) } : {}),
    ...(fields.completed !== undefined ? { completed: at(fields.completed) } : {}),
  };
}

function log(n: number, seconds: number, text: string, stream = 1): Json {
  return { vertex: digest(n), stream, data: b64(text), timestamp: at(seconds) };
}

const LOAD = "[internal] load build definition from Dockerfile";
const META = "[internal] load metadata for 127.0.0.1:5000/base:latest";
const FROM = `[1/3] FROM 127.0.0.1:5000/base:latest@${digest(9)}`;
const CONTEXT = "[internal] load build context";
const COPY = "[2/3] COPY app /app";
const RUN = "[3/3] RUN make";

/** A successful three-step build: cached FROM, context upload, a RUN with split log lines, image export. */
export const SUCCESS: Json[] = [
  { vertexes: [vertex(1, LOAD, { started: 0 })] },
  {
    statuses: [status(1, "transferring dockerfile:", { current: 170, at: 0.01, started: 0.001, completed: 0.01 })],
    vertexes: [vertex(1, LOAD, { started: 0, completed: 0.02 })],
  },
  {
    vertexes: [
      vertex(2, META, { started: 0.03 }),
      vertex(3, FROM),
      vertex(4, CONTEXT),
      vertex(5, COPY, { inputs: [3, 4] }),
      vertex(6, RUN, { inputs: [5] }),
    ],
  },
  { vertexes: [vertex(2, META, { started: 0.03, completed: 0.3 }), vertex(3, FROM, { started: 0.31, completed: 0.31, cached: true }), vertex(4, CONTEXT, { started: 0.31 })] },
  { statuses: [status(4, "transferring context:", { current: 2_100_000, at: 0.4, started: 0.31 })] },
  { statuses: [status(4, "transferring context:", { current: 2_150_000, at: 0.45, started: 0.31 })] },
  {
    statuses: [status(4, "transferring context:", { current: 5_242_880, at: 0.9, started: 0.31, completed: 0.9 })],
    vertexes: [vertex(4, CONTEXT, { started: 0.31, completed: 0.91 })],
  },
  { vertexes: [vertex(5, COPY, { inputs: [3, 4], started: 0.92, completed: 0.95 }), vertex(6, RUN, { inputs: [5], started: 0.96 })] },
  { logs: [log(6, 1.5, "compiling a.c\ncompiling b")] },
  { logs: [log(6, 2.2, ".c\nlinking\n")] },
  { vertexes: [vertex(6, RUN, { inputs: [5], started: 0.96, completed: 3.1 })] },
  {
    vertexes: [vertex(7, "exporting to image", { started: 3.12 })],
    statuses: [status(7, "exporting layers", { at: 3.3, started: 3.12, completed: 3.3 })],
  },
  {
    statuses: [status(7, `writing image ${digest(8)}`, { at: 3.31, started: 3.3, completed: 3.31 })],
    vertexes: [vertex(7, "exporting to image", { started: 3.12, completed: 3.32 })],
  },
];

const TEST = "[2/2] RUN ./test.sh";
export const FAILURE_ERROR = 'process "/bin/sh -c ./test.sh" did not complete successfully: exit code: 2';

/** A RUN that fails after writing to stdout and stderr; the last line has no newline. */
export const FAILURE: Json[] = [
  {
    vertexes: [
      vertex(1, LOAD, { started: 0, completed: 0.01 }),
      vertex(2, `[1/2] FROM 127.0.0.1:5000/base:latest@${digest(9)}`, { started: 0.02, completed: 0.02, cached: true }),
      vertex(3, TEST, { inputs: [2], started: 0.05 }),
    ],
  },
  { logs: [log(3, 0.5, "running 3 tests\n"), log(3, 0.75, "FAIL: test_upload\n", 2)] },
  { logs: [log(3, 1.25, "1 of 3 failed", 2)] },
  { vertexes: [vertex(3, TEST, { inputs: [2], started: 0.05, completed: 1.3, error: FAILURE_ERROR })] },
];

/** Two stages running at once, their log lines interleaved; one is then cancelled. */
export const PARALLEL: Json[] = [
  { vertexes: [vertex(1, "[stage-a 1/1] RUN ./slow.sh", { started: 0 }), vertex(2, "[stage-b 1/1] RUN ./fast.sh", { started: 0.1 })] },
  { logs: [log(1, 0.5, "a: step 1\n")] },
  { logs: [log(2, 0.6, "b: step 1\n")] },
  { logs: [log(1, 0.7, "a: step 2\n")] },
  { vertexes: [vertex(2, "[stage-b 1/1] RUN ./fast.sh", { started: 0.1, completed: 0.8 })] },
  { vertexes: [vertex(1, "[stage-a 1/1] RUN ./slow.sh", { started: 0, completed: 1.0, error: "context canceled" })] },
];

/** A RUN whose output redraws a progress line with carriage returns. */
export const CARRIAGE_RETURNS: Json[] = [
  { vertexes: [vertex(1, "[1/1] RUN ./download.sh", { started: 0 })] },
  { logs: [log(1, 0.2, "fetching\n 10%\r 50%")] },
  { logs: [log(1, 0.4, "\r100%\ndone\n")] },
];
