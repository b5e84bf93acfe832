// `shim build [OPTIONS] PATH | -`: the embedded BuildKit client's command line (see build/flags.ts for the options).
import { BUILD_USAGE, parseBuildFlags } from "./build/flags.ts";
import { runBuild } from "./build/run.ts";

export async function runBuildCommand(args: readonly string[]): Promise<number> {
  const flags = parseBuildFlags(args, process.env, "buildx");
  if (flags.help) {
    process.stdout.write(BUILD_USAGE);
    return 0;
  }
  const code = await runBuild(flags, {
    env: process.env,
    cwd: process.cwd(),
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    handleSignals: true,
  });
  await flushed(process.stdout);
  await flushed(process.stderr);
  return code;
}

/** Resolves once everything written so far has been handed to the OS (process.exit follows). */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => stream.write("", () => resolve()));
}
