// `docker exec -i <container> <cmd>` through the Engine API: create the exec, start it on an upgraded
// connection, and expose the process's stdin/stdout as one Duplex (stderr is kept for error messages).
import { Duplex } from "node:stream";
import { engineJson, engineUpgrade } from "./client.ts";
import type { DockerHost } from "./host.ts";

/** Stream ids in the Engine's multiplexed ("stdcopy") output when the exec has no TTY. */
export const StdStream = { stdin: 0, stdout: 1, stderr: 2, systemError: 3 } as const;

export interface StdFrame {
  stream: number;
  data: Buffer;
}

/** Splits the multiplexed output: each frame is [stream, 0, 0, 0, length (u32 BE)] then `length` bytes. */
export class StdcopyDemuxer {
  private buffer: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): StdFrame[] {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const frames: StdFrame[] = [];
    while (this.buffer.length >= 8) {
      const length = this.buffer.readUInt32BE(4);
      if (this.buffer.length < 8 + length) break;
      frames.push({ stream: this.buffer[0]!, data: this.buffer.subarray(8, 8 + length) });
      this.buffer = this.buffer.subarray(8 + length);
    }
    return frames;
  }
}

const KEEP_BYTES = 4096;

/** The process's stdin (writes) and stdout (reads); `failureText()` explains a process that did not start. */
export class ExecStream extends Duplex {
  private stderrTail = "";
  private stdoutHead = Buffer.alloc(0);
  private readonly demuxer = new StdcopyDemuxer();

  constructor(private readonly socket: Duplex) {
    super({ allowHalfOpen: true });
    socket.on("data", (chunk: Buffer) => {
      for (const frame of this.demuxer.push(chunk)) {
        if (frame.stream === StdStream.stdout) {
          if (this.stdoutHead.length < KEEP_BYTES) this.stdoutHead = Buffer.concat([this.stdoutHead, frame.data]).subarray(0, KEEP_BYTES);
          if (!this.push(frame.data)) socket.pause();
        } else {
          this.stderrTail = (this.stderrTail + frame.data.toString("utf8")).slice(-KEEP_BYTES);
        }
      }
    });
    socket.on("end", () => this.push(null));
    socket.on("error", (err: Error) => this.destroy(err));
    socket.on("close", () => {
      if (!this.destroyed && !this.readableEnded) this.push(null);
    });
  }

  /**
   * What the process or the daemon said when things went wrong: stderr, or else stdout when it is plain text
   * (dockerd reports "OCI runtime exec failed: … executable file not found" as a stdout frame).
   */
  failureText(): string {
    if (this.stderrTail.trim()) return this.stderrTail.trim();
    const head = this.stdoutHead.toString("utf8");
    return /^[\x20-\x7e\t\r\n]+$/.test(head) ? head.trim() : "";
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.socket.write(chunk, callback);
  }

  /** Closing our write side closes the process's stdin (the daemon forwards the half-close). */
  override _final(callback: (error?: Error | null) => void): void {
    this.socket.end(callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.socket.destroy();
    callback(error);
  }
}

/** Runs `cmd` in a running container with stdin attached, like `docker exec -i`. */
export async function execAttached(host: DockerHost, container: string, cmd: readonly string[], signal?: AbortSignal): Promise<ExecStream> {
  const created = await engineJson<{ Id: string }>(host, {
    method: "POST",
    path: `/containers/${encodeURIComponent(container)}/exec`,
    body: { AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: false, Cmd: cmd },
    ...(signal ? { signal } : {}),
  });
  const socket = await engineUpgrade(
    host,
    { method: "POST", path: `/exec/${created.Id}/start`, body: { Detach: false, Tty: false }, ...(signal ? { signal } : {}) },
    "tcp",
  );
  const stream = new ExecStream(socket);
  socket.resume();
  return stream;
}
