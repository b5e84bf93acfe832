// What the shim decided to do with one invocation. Planners build it without I/O; the executor (exec.ts)
// is the only place that starts processes.

export type RealBinaryKind = "docker" | "compose";

/** How the child ended: an exit code, or the signal that killed it. */
export type ChildResult = { code: number; signal?: undefined } | { code?: undefined; signal: NodeJS.Signals };

/**
 * Work done around the child: prepared before it starts, finished after it ends, and aborted
 * (synchronously, best effort) when the shim itself is killed by a signal.
 */
export interface Effect {
  readonly describe: string;
  before?(): Promise<void>;
  after?(result: ChildResult): Promise<void>;
  abort?(): void;
}

export interface ExecPlan {
  readonly binary: RealBinaryKind;
  /** Arguments for the real binary (its argv[1..]). */
  readonly args: readonly string[];
  /** Environment changes for the child; null unsets a variable. */
  readonly env?: Readonly<Record<string, string | null>>;
  /** Lines shown to the user on stderr before the child starts (already prefixed "shim: "). */
  readonly notices?: readonly string[];
  /** Why the plan looks like this; printed only with SHIM_DEBUG=1. */
  readonly debug?: readonly string[];
  readonly effects?: readonly Effect[];
  /**
   * Work the shim does itself instead of running the real binary (the direct BuildKit route of `docker build`
   * when buildx is missing); resolves with the exit status.
   */
  readonly inProcess?: { readonly describe: string; run(): Promise<number> };
}

export function passthrough(binary: RealBinaryKind, args: readonly string[], debug: readonly string[] = []): ExecPlan {
  return { binary, args, debug };
}
