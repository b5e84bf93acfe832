import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectToBuildkit } from "/work/main/src/buildkit/transport/connect.ts";
import { solve } from "/work/main/src/buildkit/solve/solve.ts";
import { toSolveRequest } from "/work/main/src/buildkit/solve/request.ts";
import { fileSyncAttachable } from "/work/main/src/buildkit/filesync/sender.ts";
const mb = Number(process.argv[2] ?? 20);
const t = performance.now();
const dir = await mkdtemp(join(tmpdir(), "bunprobe-"));
await writeFile(join(dir, "Dockerfile"), "FROM scratch\nCOPY . /ctx\n");
const n = Number(process.argv[3] ?? 0);
await writeFile(join(dir, "big.bin"), randomBytes(mb * 1024 * 1024));
for (let i = 0; i < n; i++) await writeFile(join(dir, `f${i}`), randomBytes(4096));
let pendingSends = 0, sends = 0, reqs = 0, lastReq = 0;
function wrap(a: any) {
  const methods: any = {};
  for (const [k, h] of Object.entries(a.methods)) methods[k] = (call: any) => (h as any)({
    ...call, method: call.method, metadata: call.metadata, signal: call.signal,
    requests: (async function* () { for await (const m of call.requests) { reqs++; lastReq = performance.now(); yield m; } })(),
    async send(m: Uint8Array) { pendingSends++; sends++; try { await call.send(m); } finally { pendingSends--; } },
  });
  return { methods };
}
setInterval(() => console.error(`[${(performance.now() - t).toFixed(0)}ms] pendingSends=${pendingSends} sends=${sends} reqs=${reqs} lastReqAgo=${(performance.now()-lastReq).toFixed(0)} bytes=${bytes}`), 3000).unref();
const connection = await connectToBuildkit({ address: process.env.ADDR ?? process.env.BUILDKIT_HOST, timeoutMs: 20000 });
let bytes = 0;
try {
  await solve(connection, toSolveRequest({}), {
    attachables: [wrap(fileSyncAttachable({ context: dir, dockerfile: dir }, { onFileData: (e) => (bytes += e.bytes) }))],
    sharedKey: `probe-${randomBytes(6).toString("hex")}`,
    debug: (l) => console.error(`[${(performance.now() - t).toFixed(0)}ms] ${l} (sent ${bytes})`),
  });
  console.log("ok", bytes, (performance.now() - t).toFixed(0), "ms");
} catch (e) { console.log("FAIL", (e as Error).message, "sent", bytes); }
finally { connection.close(); await rm(dir, { recursive: true, force: true }); }
