// "Processed once, never twice": docker mode processes `docker … compose …` and marks the Docker CLI's environment;
// the shim as the compose plugin recognises exactly that argv and passes it through. Uses a small fake compose.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { planComposeCommand } from "../../../src/compose/compose-mode.ts";
import { planDockerCompose } from "../../../src/compose/docker-mode.ts";
import { PLANNED_VAR, plannedFingerprint } from "../../../src/compose/invocation.ts";
import { parseDockerArgv } from "../../../src/shim/argv.ts";
import { PLUGIN_ENV } from "../../../src/shim/compose-mode.ts";
import type { DockerInvocation } from "../../../src/shim/context.ts";

let dir: string;
let env: NodeJS.ProcessEnv;
let fakeCompose: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "shim-unit-once-"));
  fakeCompose = join(dir, "fake-compose");
  writeFileSync(fakeCompose, '#!/bin/sh\ncase "$*" in *"version --short"*) echo 2.40.3;; *) echo "unexpected: $*" >&2; exit 9;; esac\n');
  chmodSync(fakeCompose, 0o755);
  mkdirSync(join(dir, "proj"));
  writeFileSync(join(dir, "proj", "compose.yaml"), "services:\n  web:\n    image: x\n");
  mkdirSync(join(dir, "config", "cli-plugins"), { recursive: true });
  env = { PATH: process.env.PATH, HOME: dir, XDG_CACHE_HOME: join(dir, "cache"), DOCKER_CONFIG: join(dir, "config"), SHIM_SESSION_ID: "s1" };
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function dockerInvocation(args: string[], extraEnv: NodeJS.ProcessEnv = {}): DockerInvocation {
  const e = { ...env, ...extraEnv };
  return { args, parsed: parseDockerArgv(args), env: e, settings: { sessionId: "s1", realCompose: e.SHIM_REAL_COMPOSE }, cwd: join(dir, "proj"), realDocker: "/nonexistent/docker", envChanges: {} };
}

function pluginInvocation(args: readonly string[], extraEnv: NodeJS.ProcessEnv) {
  return { args, env: { ...env, [PLUGIN_ENV]: "docker", ...extraEnv }, settings: { sessionId: "s1" }, cwd: join(dir, "proj"), realCompose: fakeCompose, envChanges: {} };
}

describe("processed once", () => {
  it("docker mode processes `docker compose ps` (real plugin) and marks the argv it planned", async () => {
    const plugin = join(dir, "config", "cli-plugins", "docker-compose");
    symlinkSync(fakeCompose, plugin);
    try {
      const plan = await planDockerCompose(dockerInvocation(["--log-level", "warn", "compose", "ps"]), []);
      expect(plan.binary).toBe("docker");
      expect(plan.args).toEqual(["--log-level", "warn", "compose", "-p", "proj-s1", "ps"]);
      expect(plan.env?.[PLANNED_VAR]).toBe(plannedFingerprint(plan.args));

      // The shim as the plugin receives that argv with the mark: passed through, mark removed.
      const again = await planComposeCommand(pluginInvocation(plan.args, { [PLANNED_VAR]: plan.env![PLANNED_VAR]! }));
      expect(again.args).toEqual(plan.args);
      expect(again.env?.[PLANNED_VAR]).toBeNull();
    } finally {
      rmSync(plugin);
    }
  });

  it("the shim as the plugin processes a command docker mode did not (unshimmed docker), or a different one", async () => {
    const fresh = await planComposeCommand(pluginInvocation(["compose", "ps"], {}));
    expect(fresh.args).toEqual(["compose", "-p", "proj-s1", "ps"]);
    const stray = await planComposeCommand(pluginInvocation(["compose", "ps"], { [PLANNED_VAR]: plannedFingerprint(["compose", "logs"]) }));
    expect(stray.args).toEqual(["compose", "-p", "proj-s1", "ps"]);
    expect(stray.env?.[PLANNED_VAR]).toBeNull();
  });

  it("docker mode asks the real compose behind a shimmed plugin", async () => {
    const plugin = join(dir, "config", "cli-plugins", "docker-compose");
    // Under vitest the running "shim" is node itself.
    symlinkSync(process.execPath, plugin);
    try {
      const plan = await planDockerCompose(dockerInvocation(["compose", "ps"], { SHIM_REAL_COMPOSE: fakeCompose }), []);
      expect(plan.args).toEqual(["compose", "-p", "proj-s1", "ps"]);
      expect(plan.debug?.some((l) => l.includes(`real compose ${fakeCompose}`))).toBe(true);
    } finally {
      rmSync(plugin);
    }
  });

  it("a compose whose version cannot be read runs untouched, after one clear line", async () => {
    const odd = join(dir, "odd-compose");
    writeFileSync(odd, "#!/bin/sh\necho 'not a version'\n");
    chmodSync(odd, 0o755);
    const plan = await planComposeCommand({ ...pluginInvocation(["compose", "up"], {}), realCompose: odd });
    expect(plan.args).toEqual(["compose", "up"]);
    expect(plan.notices).toEqual([`shim: cannot tell the version of ${odd} (unrecognised version "not a version"); running it without the shim's compose handling`]);
  });

  it("passes through when there is no compose plugin at all (docker reports it)", async () => {
    const plan = await planDockerCompose(dockerInvocation(["compose", "ps"]), []);
    expect(plan.args).toEqual(["compose", "ps"]);
    expect(plan.env?.[PLANNED_VAR]).toBeUndefined();
  });
});
