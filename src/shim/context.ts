import type { DockerArgv } from "./argv.ts";
import type { Settings } from "./config.ts";

/** Everything a planner may know about one docker-mode invocation. */
export interface DockerInvocation {
  /** The user's arguments (argv[1..]). */
  readonly args: readonly string[];
  readonly parsed: DockerArgv;
  readonly env: NodeJS.ProcessEnv;
  readonly settings: Settings;
  readonly cwd: string;
  /** Path of the real docker CLI (for planners that must ask it something, e.g. the buildx builder). */
  readonly realDocker: string;
  /** Environment changes already decided for the child (socket routing). */
  readonly envChanges: Readonly<Record<string, string | null>>;
}
