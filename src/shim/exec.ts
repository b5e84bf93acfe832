// Runs the real binary so that users cannot tell the shim is there: inherited stdio (TTYs and byte-exact stdin
// belong to the child), the same exit status, death by the same signal, and forwarded signals.
import { isatty } from "node:tty";
import type { ChildResult, Effect, ExecPlan } from "./plan.ts";

/** Signals sent to the shim's pid only (kill, supervisors): always passed on. */
const FORWARDED: NodeJS.Signals[] = ["SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2"];
/**
 * Signals a terminal sends to the whole foreground process group. When the shim sits on a terminal the child
 * already received them, so forwarding would deliver Ctrl-C twice; without a terminal they came from a process
 * that addressed the shim alone, and are passed on.
 */
const TERMINAL_SIGNALS: NodeJS.Signals[] = ["SIGINT", "SIGQUIT"];

/** Checked on the descriptors: touching process.stdin would create a stream on the child's stdin. */
export function onTerminal(): boolean {
  return isatty(0) || isatty(1) || isatty(2);
}

export interface RunOptions {
  /** Path of the real binary. */
  readonly file: string;
  readonly plan: ExecPlan;
  readonly env: NodeJS.ProcessEnv;
}

/** Applies the plan's env changes to a copy of env. */
export function childEnv(env: NodeJS.ProcessEnv, changes: ExecPlan["env"]): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const [key, value] of Object.entries(changes ?? {})) {
    if (value === null) delete out[key];
    else out[key] = value;
  }
  return out;
}

/** Runs the child and resolves with how it ended; effects run around it. */
export async function runChild({ file, plan, env }: RunOptions): Promise<ChildResult> {
  const effects: readonly Effect[] = plan.effects ?? [];
  const prepared: Effect[] = [];
  const abortAll = () => {
    for (const effect of prepared) {
      try {
        effect.abort?.();
      } catch {
        // best effort while dying
      }
    }
  };
  try {
    for (const effect of effects) {
      prepared.push(effect);
      await effect.before?.();
    }
  } catch (err) {
    abortAll();
    throw err;
  }

  // Loaded here: the passthrough path replaces the process instead and never needs it.
  const { spawn } = await import("node:child_process");
  const child = spawn(file, plan.args, { stdio: "inherit", env: childEnv(env, plan.env), argv0: file });
  const forward = (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  const handlers = new Map<NodeJS.Signals, () => void>();
  const fromTerminal = onTerminal();
  for (const signal of [...FORWARDED, ...TERMINAL_SIGNALS]) {
    const handler = TERMINAL_SIGNALS.includes(signal) && fromTerminal ? () => {} : () => forward(signal);
    handlers.set(signal, handler);
    process.on(signal, handler);
  }

  const result = await new Promise<ChildResult>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code, signal) => resolve(signal ? { signal } : { code: code ?? 1 }));
  }).finally(() => {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  });

  for (const effect of prepared) await effect.after?.(result);
  return result;
}

type Execve = (file: string, args: string[], env: NodeJS.ProcessEnv) => never;

/**
 * Replaces the shim with the real binary when the runtime can (Bun; Node ≥ 22.15): nothing to forward, and the
 * exit status, signals, TTY and stdin are docker's own by construction. Returns false when it cannot.
 */
export function replaceProcess(file: string, args: readonly string[], env: NodeJS.ProcessEnv): boolean {
  const execve = (process as unknown as { execve?: Execve }).execve;
  if (typeof execve !== "function") return false;
  // The runtime ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored across exec (docker would then
  // get EPIPE instead of dying quietly in `docker ps | head -1`); a caught one reverts to the default action.
  for (const signal of ["SIGPIPE", "SIGXFSZ"] as const) process.on(signal, () => {});
  execve.call(process, file, [file, ...args], env);
  return true;
}

/** Ends the shim the way the child ended. */
export function exitLike(result: ChildResult): never {
  if (result.signal) {
    process.kill(process.pid, result.signal);
    // Signals whose default action does not terminate (none of the forwarded ones) or a race: fall back.
    process.exit(128 + (signalNumber(result.signal) ?? 1));
  }
  process.exit(result.code);
}

function signalNumber(signal: NodeJS.Signals): number | undefined {
  const numbers: Partial<Record<NodeJS.Signals, number>> = {
    SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGTERM: 15,
  };
  return numbers[signal];
}
