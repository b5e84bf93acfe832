// The one line printed after a tty/plain build: how long it took, how much came from the cache, what came out.
//   shim: built in 4.2s: 9 steps, 4 cached; cache hits 4/5 Dockerfile steps (80%); image sha256:0123456789ab (7.85MB)
import { formatBytes, formatSeconds } from "./format.ts";
import type { BuildTrace } from "./trace.ts";

/** A Dockerfile step is named `[stage i/n] …` or `[i/n] …`; `[internal] …`, `[auth] …`, exporting… are not. */
const DOCKERFILE_STEP = /^\[(?!internal\]|auth\])[^\]]*\d+\/\d+\] /;

export interface BuildStats {
  /** Every vertex of the build, and how many of them came from the cache. */
  steps: number;
  cached: number;
  /** Dockerfile steps (the ones a cache can save), and how many came from the cache. */
  cacheableSteps: number;
  cacheHits: number;
}

export function buildStats(trace: BuildTrace): BuildStats {
  let steps = 0;
  let cached = 0;
  let cacheableSteps = 0;
  let cacheHits = 0;
  for (const vertex of trace.byDigest.values()) {
    steps++;
    if (vertex.cached) cached++;
    if (DOCKERFILE_STEP.test(vertex.name)) {
      cacheableSteps++;
      if (vertex.cached) cacheHits++;
    }
  }
  return { steps, cached, cacheableSteps, cacheHits };
}

export interface SummaryFacts {
  durationMs: number;
  failed: boolean;
  /** Image id (config digest) or manifest digest, when the build produced an image. */
  imageId?: string;
  imageSizeBytes?: number;
}

export function summaryLine(trace: BuildTrace, facts: SummaryFacts): string {
  const stats = buildStats(trace);
  const parts = [`${facts.failed ? "build failed after" : "built in"} ${formatSeconds(facts.durationMs)}: ${stats.steps} steps, ${stats.cached} cached`];
  if (stats.cacheableSteps > 0) {
    const ratio = Math.round((100 * stats.cacheHits) / stats.cacheableSteps);
    parts.push(`cache hits ${stats.cacheHits}/${stats.cacheableSteps} Dockerfile steps (${ratio}%)`);
  }
  if (facts.imageId) {
    const short = facts.imageId.replace(/^(sha256:[0-9a-f]{12})[0-9a-f]*$/, "$1");
    parts.push(`image ${short}${facts.imageSizeBytes !== undefined ? ` (${formatBytes(facts.imageSizeBytes)})` : ""}`);
  }
  return `shim: ${parts.join("; ")}`;
}
