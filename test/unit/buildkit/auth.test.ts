import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  credentialSources,
  lookupCredentials,
  parseHelperOutput,
  DOCKER_HUB_CONFIG_KEY,
} from "../../../src/buildkit/session/auth.ts";

const b64 = (s: string) => Buffer.from(s).toString("base64");

describe("credentialSources (pure)", () => {
  const config = {
    auths: {
      [DOCKER_HUB_CONFIG_KEY]: { auth: b64("hubuser:hubpass") },
      "https://reg.example:5000/v2/": { auth: b64("u:p:with:colons") },
      "tok.example": { identitytoken: "idtok", auth: b64("ignored:x") },
      "plain.example": { username: "pu", password: "pp" },
    },
    credHelpers: { "gcr.io": "gcloud" },
  };

  it("Docker Hub hosts use the https://index.docker.io/v1/ key", () => {
    for (const host of ["registry-1.docker.io", "docker.io", "index.docker.io"]) {
      expect(credentialSources(config, host)).toEqual([{ kind: "inline", credentials: { username: "hubuser", secret: "hubpass" } }]);
    }
  });

  it("matches keys by host name, ignoring scheme and path; splits user:pass at the first colon", () => {
    expect(credentialSources(config, "reg.example:5000")).toEqual([
      { kind: "inline", credentials: { username: "u", secret: "p:with:colons" } },
    ]);
  });

  it("an identity token is sent as the secret with no user name", () => {
    expect(credentialSources(config, "tok.example")).toEqual([{ kind: "inline", credentials: { username: "", secret: "idtok" } }]);
    expect(credentialSources(config, "plain.example")).toEqual([{ kind: "inline", credentials: { username: "pu", secret: "pp" } }]);
  });

  it("credHelpers per host, else credsStore, come before inline entries", () => {
    expect(credentialSources(config, "gcr.io")).toEqual([{ kind: "helper", helper: "gcloud", serverUrl: "gcr.io" }]);
    expect(credentialSources({ ...config, credsStore: "desktop" }, "docker.io")).toEqual([
      { kind: "helper", helper: "desktop", serverUrl: DOCKER_HUB_CONFIG_KEY },
      { kind: "inline", credentials: { username: "hubuser", secret: "hubpass" } },
    ]);
    expect(credentialSources({}, "unknown.example")).toEqual([]);
  });

  it("helper output: <token> marks an identity token", () => {
    expect(parseHelperOutput('{"ServerURL":"x","Username":"<token>","Secret":"t"}')).toEqual({ username: "", secret: "t" });
    expect(parseHelperOutput('{"ServerURL":"x","Username":"me","Secret":"s"}')).toEqual({ username: "me", secret: "s" });
  });
});

describe("lookupCredentials with a real helper process", () => {
  let dir: string;
  let env: Record<string, string>;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "shim-auth-"));
    // A fake credential helper: records its argument and stdin, knows one server, says "not found" otherwise.
    const helper = join(dir, "docker-credential-fake");
    writeFileSync(
      helper,
      `#!/bin/sh
read -r server
printf '%s %s\\n' "$1" "$server" >> "${dir}/calls.log"
case "$server" in
  https://index.docker.io/v1/) printf '{"ServerURL":"%s","Username":"hub","Secret":"from-helper"}' "$server" ;;
  broken.example) echo "boom" >&2; exit 3 ;;
  *) printf 'credentials not found in native keychain'; exit 1 ;;
esac
`,
    );
    chmodSync(helper, 0o755);
    writeFileSync(
      join(dir, "config.json"),
      JSON.stringify({
        credsStore: "fake",
        auths: { "fallback.example": { auth: b64("fb:secret") } },
      }),
    );
    env = { PATH: `${dir}:${process.env.PATH}`, DOCKER_CONFIG: dir, HOME: "/nonexistent" };
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("asks the helper with the Docker Hub key on stdin", async () => {
    expect(await lookupCredentials("registry-1.docker.io", env)).toEqual({ username: "hub", secret: "from-helper" });
    expect(readFileSync(join(dir, "calls.log"), "utf8")).toContain("get https://index.docker.io/v1/\n");
  });

  it("falls back to the inline entry when the helper has none, else anonymous", async () => {
    expect(await lookupCredentials("fallback.example", env)).toEqual({ username: "fb", secret: "secret" });
    expect(await lookupCredentials("nothing.example", env)).toEqual({ username: "", secret: "" });
  });

  it("a failing helper is an error, not silent anonymity", async () => {
    await expect(lookupCredentials("broken.example", env)).rejects.toThrow(/docker-credential-fake failed \(exit 3\)/);
  });

  it("no config file means anonymous", async () => {
    expect(await lookupCredentials("docker.io", { DOCKER_CONFIG: join(dir, "missing") })).toEqual({ username: "", secret: "" });
  });
});
