// Signal parity with the real CLI: signals sent to the shim reach the container through docker's sig-proxy,
// and a Ctrl-C typed on a terminal reaches it exactly once (the terminal already signals the whole group).
import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadTestbed, makeShimDir, type ShimDir } from "./testbed.ts";

const tb = loadTestbed();
let shim: ShimDir;

beforeAll(() => {
  shim = makeShimDir({ docker: tb.TESTBED_DOCKER }, { DOCKER_HOST: tb.DOCKER_HOST });
});
afterAll(() => shim?.cleanup());

/**
 * A container that reports each signal it receives and exits 7 on SIGTERM. It polls in a busy loop so that two
 * deliveries a few milliseconds apart are reported twice instead of coalescing into one pending signal.
 */
function reporter(label: string): string[] {
  const script = [
    'for s in HUP USR1 USR2 INT QUIT; do trap "echo got $s" $s; done',
    'trap "echo got TERM; exit 7" TERM',
    "echo ready",
    "while :; do :; done",
  ].join("; ");
  return ["run", "--rm", "--init", "--label", label, tb.TESTBED_BASE_IMAGE, "sh", "-c", script];
}

interface Session {
  output(): string;
  send(signal: NodeJS.Signals): void;
  type(text: string): void;
  ended: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function start(cmd: string, args: string[], onTerminal: boolean): Session {
  // `script` gives the command a real terminal (a pty) as its controlling terminal, like a shell in tmux.
  const child = onTerminal
    ? spawn("script", ["-qfec", [cmd, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" "), "/dev/null"], { env: shim.env, stdio: ["pipe", "pipe", "pipe"] })
    : spawn(cmd, args, { env: shim.env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  return {
    output: () => out,
    send: (signal) => child.kill(signal),
    type: (text) => child.stdin!.write(text),
    ended: new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal }))),
  };
}

async function waitFor(session: Session, text: string, count = 1): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (session.output().split(text).length - 1 >= count) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${JSON.stringify(text)}; output so far: ${session.output()}`);
}

const settle = () => new Promise((r) => setTimeout(r, 1500));

describe("signals", () => {
  it.each(["SIGHUP", "SIGUSR1", "SIGUSR2", "SIGINT", "SIGQUIT"] as NodeJS.Signals[])(
    "%s sent to the shim reaches the container once, like docker",
    async (signal) => {
      const counts: number[] = [];
      for (const cmd of [tb.TESTBED_DOCKER, join(shim.dir, "docker")]) {
        const session = start(cmd, reporter(`shim-e2e=sig-${signal}`), false);
        await waitFor(session, "ready");
        session.send(signal);
        await waitFor(session, `got ${signal.slice(3)}`);
        await settle();
        session.send("SIGTERM");
        await session.ended;
        counts.push(session.output().split(`got ${signal.slice(3)}`).length - 1);
      }
      expect(counts).toEqual([1, 1]);
    },
    60_000,
  );

  it("a Ctrl-C typed on the terminal reaches the container exactly once", async () => {
    const counts: number[] = [];
    for (const cmd of [tb.TESTBED_DOCKER, join(shim.dir, "docker")]) {
      const session = start(cmd, reporter("shim-e2e=ctrl-c"), true);
      await waitFor(session, "ready");
      session.type("\x03");
      await waitFor(session, "got INT");
      await settle();
      session.send("SIGTERM");
      await Promise.race([session.ended, settle()]);
      counts.push(session.output().split("got INT").length - 1);
    }
    expect(counts).toEqual([1, 1]);
  }, 60_000);
});
