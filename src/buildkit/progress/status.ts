// The shape of one status update as the displays read it: structurally the generated StatusResponse (so the
// decoded message is passed as it is), but only the fields used, so unit tests can write plain objects.
// Also the conversion to and from buildx's `rawjson` form (one client.SolveStatus JSON object per line).

export interface StatusTimestamp {
  seconds: bigint;
  nanos: number;
}

export interface StatusVertex {
  digest: string;
  inputs: string[];
  name: string;
  cached: boolean;
  started?: StatusTimestamp | undefined;
  completed?: StatusTimestamp | undefined;
  error: string;
  progressGroup?: { id: string; name: string; weak: boolean } | undefined;
}

export interface StatusProgress {
  ID: string;
  vertex: string;
  name: string;
  current: bigint;
  total: bigint;
  timestamp?: StatusTimestamp | undefined;
  started?: StatusTimestamp | undefined;
  completed?: StatusTimestamp | undefined;
}

export interface StatusLog {
  vertex: string;
  timestamp?: StatusTimestamp | undefined;
  stream: bigint;
  msg: Uint8Array;
}

export interface StatusWarning {
  vertex: string;
  level: bigint;
  short: Uint8Array;
  detail: Uint8Array[];
  url: string;
}

export interface StatusUpdate {
  vertexes: StatusVertex[];
  statuses: StatusProgress[];
  logs: StatusLog[];
  warnings: StatusWarning[];
}

/** Milliseconds since the epoch (fractional: sub-millisecond precision is kept for durations). */
export function timestampMs(ts: StatusTimestamp | undefined): number | undefined {
  if (!ts) return undefined;
  return Number(ts.seconds) * 1000 + ts.nanos / 1e6;
}

/** Go's time.Time JSON form (RFC 3339 with nanoseconds, trailing zeros dropped), in UTC. */
export function formatTimestamp(ts: StatusTimestamp): string {
  const base = new Date(Number(ts.seconds) * 1000).toISOString().slice(0, 19);
  const fraction = ts.nanos > 0 ? `.${String(ts.nanos).padStart(9, "0").replace(/0+$/, "")}` : "";
  return `${base}${fraction}Z`;
}

/** Parses an RFC 3339 timestamp with up to nanosecond precision (what formatTimestamp and Go write). */
export function parseTimestamp(text: string): StatusTimestamp {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(text);
  if (!m) throw new Error(`invalid timestamp ${JSON.stringify(text)}`);
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(ms)) throw new Error(`invalid timestamp ${JSON.stringify(text)}`);
  return { seconds: BigInt(Math.floor(ms / 1000)), nanos: Number((m[2] ?? "").padEnd(9, "0")) };
}

type Json = Record<string, unknown>;

function withoutEmpty(object: Json): Json {
  const out: Json = {};
  for (const [key, value] of Object.entries(object)) {
    if (value === undefined || value === "" || value === false || value === 0) continue;
    if (Array.isArray(value) && value.length === 0) continue;
    out[key] = value;
  }
  return out;
}

const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");

/**
 * One update as buildx's rawjson display writes it (BuildKit client.SolveStatus with its JSON tags):
 * omitempty everywhere except `id`, `current`, `timestamp` of statuses and `data`, `timestamp` of logs.
 */
export function toSolveStatusJson(update: StatusUpdate): Json {
  const time = (ts: StatusTimestamp | undefined) => (ts ? formatTimestamp(ts) : undefined);
  const zeroTime = "0001-01-01T00:00:00Z";
  return withoutEmpty({
    vertexes: update.vertexes.map((v) =>
      withoutEmpty({
        digest: v.digest,
        inputs: v.inputs,
        name: v.name,
        started: time(v.started),
        completed: time(v.completed),
        cached: v.cached,
        error: v.error,
        progressGroup: v.progressGroup ? withoutEmpty({ ...v.progressGroup }) : undefined,
      }),
    ),
    statuses: update.statuses.map((s) => ({
      id: s.ID,
      ...withoutEmpty({ vertex: s.vertex, name: s.name, total: Number(s.total) }),
      current: Number(s.current),
      timestamp: time(s.timestamp) ?? zeroTime,
      ...withoutEmpty({ started: time(s.started), completed: time(s.completed) }),
    })),
    logs: update.logs.map((l) => ({
      ...withoutEmpty({ vertex: l.vertex, stream: Number(l.stream) }),
      data: base64(l.msg),
      timestamp: time(l.timestamp) ?? zeroTime,
    })),
    warnings: update.warnings.map((w) =>
      withoutEmpty({
        vertex: w.vertex,
        level: Number(w.level),
        short: w.short.length > 0 ? base64(w.short) : undefined,
        detail: w.detail.map(base64),
        url: w.url,
      }),
    ),
  });
}

/** The inverse of toSolveStatusJson: reads one rawjson line back (recorded fixtures, replays). */
export function fromSolveStatusJson(json: Json): StatusUpdate {
  const list = (value: unknown) => (Array.isArray(value) ? (value as Json[]) : []);
  const str = (value: unknown) => (typeof value === "string" ? value : "");
  const time = (value: unknown) => (typeof value === "string" && !value.startsWith("0001-") ? parseTimestamp(value) : undefined);
  const bytes = (value: unknown) => (typeof value === "string" ? new Uint8Array(Buffer.from(value, "base64")) : new Uint8Array(0));
  return {
    vertexes: list(json.vertexes).map((v) => ({
      digest: str(v.digest),
      inputs: list(v.inputs).map(String),
      name: str(v.name),
      cached: v.cached === true,
      started: time(v.started),
      completed: time(v.completed),
      error: str(v.error),
      progressGroup: v.progressGroup
        ? { id: str((v.progressGroup as Json).id), name: str((v.progressGroup as Json).name), weak: (v.progressGroup as Json).weak === true }
        : undefined,
    })),
    statuses: list(json.statuses).map((s) => ({
      ID: str(s.id),
      vertex: str(s.vertex),
      name: str(s.name),
      current: BigInt(Number(s.current ?? 0)),
      total: BigInt(Number(s.total ?? 0)),
      timestamp: time(s.timestamp),
      started: time(s.started),
      completed: time(s.completed),
    })),
    logs: list(json.logs).map((l) => ({
      vertex: str(l.vertex),
      timestamp: time(l.timestamp),
      stream: BigInt(Number(l.stream ?? 0)),
      msg: bytes(l.data),
    })),
    warnings: list(json.warnings).map((w) => ({
      vertex: str(w.vertex),
      level: BigInt(Number(w.level ?? 0)),
      short: bytes(w.short),
      detail: list(w.detail).map(bytes),
      url: str(w.url),
    })),
  };
}
