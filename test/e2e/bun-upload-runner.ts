// Run by test/e2e/bun-upload.test.ts under Bun (the runtime of dist/shim): builds one context several times
// through a real daemon with a fresh shared key each time, so the whole context is uploaded by our FileSync
// sender every run. The build checks the md5 of every uploaded file against EXPECTED. Prints one JSON line per run.
//   bun run bun-upload-runner.ts <address> <runs> <context dir> <expected checksum>
import { randomBytes } from "node:crypto";
import { connectToBuildkit } from "../../src/buildkit/transport/connect.ts";
import { solve } from "../../src/buildkit/solve/solve.ts";
import { toSolveRequest } from "../../src/buildkit/solve/request.ts";
import { fileSyncAttachable } from "../../src/buildkit/filesync/sender.ts";

/** A healthy run takes a few seconds; the daemon would drop a hung session only after ~42 s. */
const RUN_DEADLINE_MS = 30_000;

const [address, runsText, context, expected] = process.argv.slice(2);
if (!address || !runsText || !context || !expected) {
  throw new Error("usage: bun-upload-runner.ts <address> <runs> <context> <expected>");
}

for (let run = 0; run < Number(runsText); run++) {
  const started = Date.now();
  let uploadedBytes = 0;
  const deadline = AbortSignal.timeout(RUN_DEADLINE_MS);
  const connection = await connectToBuildkit({ address, timeoutMs: 20_000 });
  try {
    const fileSync = fileSyncAttachable({ context, dockerfile: context }, { onFileData: ({ bytes }) => (uploadedBytes += bytes) });
    await solve(connection, toSolveRequest({ noCache: true, buildArgs: { EXPECTED: expected } }), {
      attachables: [fileSync],
      sharedKey: `shim-e2e-bun-upload-${randomBytes(6).toString("hex")}`,
      signal: deadline,
    });
    console.log(JSON.stringify({ run, ok: true, uploadedBytes, ms: Date.now() - started }));
  } catch (err) {
    const error = deadline.aborted ? `no result within ${RUN_DEADLINE_MS} ms` : (err as Error).message;
    console.log(JSON.stringify({ run, ok: false, uploadedBytes, ms: Date.now() - started, error }));
  } finally {
    connection.close();
  }
}
process.exit(0);
