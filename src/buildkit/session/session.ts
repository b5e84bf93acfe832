// A BuildKit session: the tunnel through which the daemon calls back into shim (context upload, exports,
// cache store, credentials, secrets). Inside it the roles flip — the daemon is the HTTP/2 client and we serve.
import { randomBytes } from "node:crypto";
import type { Duplex } from "node:stream";
import type { BuildkitConnection } from "../transport/connect.ts";
import { methodTable, serveGrpc } from "../transport/server.ts";
import type { MetadataPairs } from "../transport/client.ts";
import type { Attachable } from "./attachable.ts";
import { healthAttachable } from "./health.ts";

export const SessionHeader = {
  uuid: "x-docker-expose-session-uuid",
  sharedKey: "x-docker-expose-session-sharedkey",
  name: "x-docker-expose-session-name",
  method: "x-docker-expose-session-grpc-method",
} as const;

/**
 * A fresh id like BuildKit's identity.NewID: 25 base-36 characters from 128 random bits. Never contains ':'
 * (the daemon's session lookup splits on it).
 */
export function newBuildkitId(): string {
  return BigInt(`0x${randomBytes(16).toString("hex")}`).toString(36).padStart(25, "0");
}

/**
 * The session metadata: id, shared key, optional name, then one `x-docker-expose-session-grpc-method` pair per
 * method of every attachable (sent as separate header fields, never joined).
 */
export function sessionMetadata(id: string, sharedKey: string, methods: Iterable<string>, name?: string): MetadataPairs {
  if (id.includes(":")) throw new Error(`session id ${id} must not contain ':'`);
  const pairs: [string, string][] = [
    [SessionHeader.uuid, id],
    [SessionHeader.sharedKey, sharedKey],
  ];
  if (name) pairs.push([SessionHeader.name, name]);
  for (const method of methods) pairs.push([SessionHeader.method, method]);
  return pairs;
}

export interface SessionOptions {
  /** Stable per build context (e.g. a hash of its path): lets the daemon reuse the previous upload. */
  sharedKey: string;
  /** Services offered to the daemon; Health is always added. */
  attachables: readonly Attachable[];
  /** Sent as x-docker-expose-session-name (v0.15 and older record it; newer daemons ignore it). */
  name?: string;
  /** Handler failures and protocol errors inside the session. */
  onError?: (error: Error, method?: string) => void;
  /** Each call the daemon makes into the session (method path), e.g. for --debug. */
  onCall?: (method: string) => void;
  signal?: AbortSignal;
}

export interface Session {
  readonly id: string;
  /** Resolves when the daemon's side of the session is gone. */
  readonly done: Promise<void>;
  /**
   * Ends the session: GOAWAY to the daemon's HTTP/2 client, then half-close our side of the tunnel (as the Go
   * client's CloseSend does) and wait, bounded, for the daemon's EOF.
   */
  close(timeoutMs?: number): Promise<void>;
}

export async function startSession(connection: BuildkitConnection, options: SessionOptions): Promise<Session> {
  const methods = methodTable([healthAttachable(), ...options.attachables]);
  const id = newBuildkitId();
  const tunnel: Duplex = await connection.openSessionTunnel(
    sessionMetadata(id, options.sharedKey, methods.keys(), options.name),
    options.signal,
  );
  const served = serveGrpc(tunnel, methods, {
    ...(options.onError ? { onError: options.onError } : {}),
    ...(options.onCall ? { onCall: options.onCall } : {}),
  });
  const tunnelClosed = new Promise<void>((resolve) => {
    if (tunnel.destroyed) resolve();
    tunnel.once("close", () => resolve());
  });
  const done = Promise.race([served.closed, tunnelClosed]);
  let closing: Promise<void> | undefined;
  return {
    id,
    done,
    close(timeoutMs = 2000) {
      closing ??= (async () => {
        served.close();
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([tunnelClosed, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
        clearTimeout(timer);
        served.destroy();
      })();
      return closing;
    },
  };
}
