// Placeholder until the embedded BuildKit client's CLI lands (issue 5).
import { ShimError } from "../shim/errors.ts";

export async function runBuildCommand(_args: readonly string[]): Promise<number> {
  throw new ShimError("shim build is not available yet");
}
