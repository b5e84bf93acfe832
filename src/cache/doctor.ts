// Placeholder until the shared-cache diagnosis lands (issue 3).
import type { Settings } from "../shim/config.ts";

export interface CacheDiagnosis {
  readonly info: string[];
  readonly problems: string[];
}

export async function diagnoseCache(_ctx: { env: NodeJS.ProcessEnv; settings: Settings; realDocker: string }): Promise<CacheDiagnosis> {
  return { info: [], problems: [] };
}
