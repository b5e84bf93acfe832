/** Exit status docker itself uses for "the CLI failed before running anything". */
export const SHIM_EXIT = 125;

/**
 * An error that belongs to the shim (bad input, bad config, missing real binary…).
 * It is reported as exactly one line, `shim: <message>`, and ends the process with `exitCode`.
 */
export class ShimError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = SHIM_EXIT,
  ) {
    super(message);
    this.name = "ShimError";
  }
}

/** The one line printed for a shim failure (no stack, no multi-line dumps). */
export function formatShimError(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return `shim: ${text.replace(/\s*\n\s*/g, " ").trim()}`;
}
