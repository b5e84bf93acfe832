// Workaround for a Bun node:http2 flow-control bug (fix proposed in oven-sh/bun#41329, not in Bun 1.4.5): when the peer
// raises SETTINGS_INITIAL_WINDOW_SIZE mid-connection, Bun does not add the difference to the send windows of
// streams that are already open (RFC 9113 §6.9.2); it only lifts a window that is still below the new value.
// grpc-go's BDP estimator does exactly that while it receives our uploads (SETTINGS + a connection
// WINDOW_UPDATE), and then sends a stream WINDOW_UPDATE only after a quarter of the larger window arrived:
// once the new value exceeds 4 × 65,535, Bun waits for window it was already given and the upload hangs.
//
// The fix sits between the connection and Bun's HTTP/2 stack. Bun is never told about a change of the
// initial window while streams it can send on exist: the value in the peer's SETTINGS is rewritten to the
// one Bun already has, and the difference is handed over as WINDOW_UPDATE frames instead — for each open
// stream right after the SETTINGS frame, and for each stream opened later right after its headers. WINDOW_UPDATE
// is the one part of flow control Bun gets right, so this stays correct when Bun fixes SETTINGS handling
// (a fixed Bun would see no change to apply).
//
// Being a plain Duplex, the wrapper also keeps Bun's HTTP/2 off native sockets, and that matters on its own:
// with the Control connection on a native socket, uploads through the session tunnel arrived shifted or
// corrupted now and then (see README.md). Before removing this for a fixed Bun, rerun
// test/e2e/bun-upload.test.ts many times without it.
import { Duplex } from "node:stream";

/** Our side of the HTTP/2 connection: "server" inside a session tunnel, "client" for Control. */
export type Http2Role = "client" | "server";

const FRAME_HEADER_BYTES = 9;
const CLIENT_PREFACE_BYTES = 24; // "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
const DEFAULT_INITIAL_WINDOW = 65_535;
const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
const SETTING_BYTES = 6;

const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;
const Flag = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;

interface FrameHeader {
  length: number;
  type: number;
  flags: number;
  streamId: number;
}

/** One direction of the connection, cut into frames across arbitrary chunk boundaries. */
class FrameCursor {
  private readonly header = Buffer.alloc(FRAME_HEADER_BYTES);
  private headerFill = 0;
  /** The frame whose payload is being read, and how much of it is still to come. */
  frame: FrameHeader | undefined;
  payloadLeft = 0;

  constructor(private prefaceLeft: number) {}

  /** True between frames (not inside the preface, a frame header or a payload). */
  get atBoundary(): boolean {
    return this.prefaceLeft === 0 && this.headerFill === 0 && this.frame === undefined;
  }

  /**
   * Consumes bytes of `chunk` from `pos`: the preface, header bytes, or payload bytes of the current frame.
   * Returns the new position; `started` is set when a frame header was just completed.
   */
  advance(chunk: Buffer, pos: number): { pos: number; started: boolean } {
    if (this.prefaceLeft > 0) {
      const n = Math.min(this.prefaceLeft, chunk.length - pos);
      this.prefaceLeft -= n;
      return { pos: pos + n, started: false };
    }
    if (this.frame === undefined) {
      const n = Math.min(FRAME_HEADER_BYTES - this.headerFill, chunk.length - pos);
      chunk.copy(this.header, this.headerFill, pos, pos + n);
      this.headerFill += n;
      if (this.headerFill < FRAME_HEADER_BYTES) return { pos: pos + n, started: false };
      this.headerFill = 0;
      this.frame = {
        length: this.header.readUIntBE(0, 3),
        type: this.header[3]!,
        flags: this.header[4]!,
        streamId: this.header.readUInt32BE(5) & 0x7fffffff,
      };
      this.payloadLeft = this.frame.length;
      return { pos: pos + n, started: true };
    }
    const n = Math.min(this.payloadLeft, chunk.length - pos);
    this.payloadLeft -= n;
    return { pos: pos + n, started: false };
  }

  /** The current frame once its payload is complete (then the cursor moves past it), else undefined. */
  takeFinished(): FrameHeader | undefined {
    const frame = this.frame;
    if (frame === undefined || this.payloadLeft > 0) return undefined;
    this.frame = undefined;
    return frame;
  }
}

function windowUpdateFrame(streamId: number, increment: number): Buffer {
  const frame = Buffer.alloc(FRAME_HEADER_BYTES + 4);
  frame.writeUIntBE(4, 0, 3);
  frame[3] = FrameType.WINDOW_UPDATE;
  frame.writeUInt32BE(streamId, 5);
  frame.writeUInt32BE(increment, 9);
  return frame;
}

/**
 * The byte-level part of the workaround, free of I/O: `fromPeer` turns received bytes into the bytes for the
 * local HTTP/2 stack (identical, except for rewritten SETTINGS values and inserted WINDOW_UPDATEs), `toPeer`
 * watches what the local stack sends (to learn which streams it may still send DATA on).
 */
export class InitialWindowRewriter {
  private readonly inbound: FrameCursor;
  private readonly outbound: FrameCursor;
  /** The peer's real SETTINGS_INITIAL_WINDOW_SIZE, and the value the local stack believes. */
  private peerInitialWindow = DEFAULT_INITIAL_WINDOW;
  private localViewInitialWindow = DEFAULT_INITIAL_WINDOW;
  /** Streams the local stack may still send DATA on: opened, not ended by it, not reset by either side. */
  private readonly sendable = new Set<number>();
  private highestOpenedStream = 0;
  /** A received header block (HEADERS/PUSH_PROMISE then CONTINUATIONs) is unfinished: nothing may be inserted. */
  private inboundHeaderBlockOpen = false;
  /** Server role: the peer's new stream whose header block is still arriving. */
  private peerStreamAwaitingHeaders: number | undefined;
  private settingsPayload: Buffer[] | undefined;
  /** WINDOW_UPDATEs waiting for a frame boundary in the received byte stream. */
  private pending: { streamId: number; increment: number }[] = [];

  constructor(private readonly role: Http2Role) {
    this.inbound = new FrameCursor(role === "server" ? CLIENT_PREFACE_BYTES : 0);
    this.outbound = new FrameCursor(role === "client" ? CLIENT_PREFACE_BYTES : 0);
  }

  /** Bytes received from the peer → bytes to hand to the local HTTP/2 stack, in order. */
  fromPeer(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let passFrom = 0;
    let pos = 0;
    const passUntil = (end: number) => {
      if (end > passFrom) out.push(chunk.subarray(passFrom, end));
      passFrom = end;
    };
    while (pos < chunk.length) {
      const before = pos;
      const step = this.inbound.advance(chunk, pos);
      pos = step.pos;
      const frame = this.inbound.frame;
      if (step.started && frame && this.isChangeableSettings(frame)) {
        passUntil(pos);
        this.settingsPayload = [];
      } else if (!step.started && this.settingsPayload && frame) {
        this.settingsPayload.push(chunk.subarray(before, pos));
        passFrom = pos;
      }
      const finished = this.inbound.takeFinished();
      if (!finished) continue;
      if (this.settingsPayload) {
        out.push(this.rewriteSettings(Buffer.concat(this.settingsPayload)));
        this.settingsPayload = undefined;
      } else {
        this.observeReceived(finished);
      }
      if (this.pending.length > 0 && !this.inboundHeaderBlockOpen) {
        passUntil(pos);
        out.push(...this.takePending());
      }
    }
    passUntil(chunk.length);
    return out;
  }

  /** Bytes the local stack sends to the peer; they go out unchanged. */
  toPeer(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      pos = this.outbound.advance(chunk, pos).pos;
      const frame = this.outbound.takeFinished();
      if (frame) this.observeSent(frame);
    }
  }

  /**
   * WINDOW_UPDATEs for streams the local stack opened since the last call, if they can go to it now (the
   * received byte stream is between frames); otherwise `fromPeer` delivers them at the next frame boundary.
   */
  takeInsertions(): Buffer[] {
    if (this.pending.length === 0 || !this.inbound.atBoundary || this.inboundHeaderBlockOpen) return [];
    return this.takePending();
  }

  /** The queued WINDOW_UPDATEs as frames, leaving out streams that meanwhile ended or were reset. */
  private takePending(): Buffer[] {
    const frames = this.pending
      .filter(({ streamId }) => this.sendable.has(streamId))
      .map(({ streamId, increment }) => windowUpdateFrame(streamId, increment));
    this.pending = [];
    return frames;
  }

  private isChangeableSettings(frame: FrameHeader): boolean {
    return (
      frame.type === FrameType.SETTINGS &&
      (frame.flags & Flag.ACK) === 0 &&
      frame.streamId === 0 &&
      frame.length > 0 &&
      frame.length % SETTING_BYTES === 0
    );
  }

  /** Returns the SETTINGS payload for the local stack and queues the WINDOW_UPDATEs that replace a raise. */
  private rewriteSettings(payload: Buffer): Buffer {
    let newValue: number | undefined;
    for (let offset = 0; offset < payload.length; offset += SETTING_BYTES) {
      if (payload.readUInt16BE(offset) === SETTINGS_INITIAL_WINDOW_SIZE) newValue = payload.readUInt32BE(offset + 2);
    }
    if (newValue === undefined) return payload;
    const raise = newValue - this.peerInitialWindow;
    this.peerInitialWindow = newValue;
    if (this.sendable.size === 0) {
      // No stream to correct: the local stack may take the value as it is and give it to new streams itself.
      this.localViewInitialWindow = newValue;
      return payload;
    }
    const rewritten = Buffer.from(payload);
    for (let offset = 0; offset < rewritten.length; offset += SETTING_BYTES) {
      if (rewritten.readUInt16BE(offset) !== SETTINGS_INITIAL_WINDOW_SIZE) continue;
      rewritten.writeUInt32BE(this.localViewInitialWindow, offset + 2);
    }
    // A lowered window cannot be expressed with WINDOW_UPDATE; grpc-go only ever raises it, so a decrease is
    // left unapplied (as Bun itself would leave it).
    if (raise > 0) for (const streamId of this.sendable) this.pending.push({ streamId, increment: raise });
    return rewritten;
  }

  /** What the stack believes a new stream's window is, versus what the peer granted. */
  private queueNewStreamTopUp(streamId: number): void {
    const missing = this.peerInitialWindow - this.localViewInitialWindow;
    if (missing > 0) this.pending.push({ streamId, increment: missing });
  }

  private observeReceived(frame: FrameHeader): void {
    const endsHeaders = (frame.flags & Flag.END_HEADERS) !== 0;
    switch (frame.type) {
      case FrameType.HEADERS:
      case FrameType.PUSH_PROMISE:
        this.inboundHeaderBlockOpen = !endsHeaders;
        if (frame.type === FrameType.HEADERS && this.role === "server" && this.opensStream(frame.streamId)) {
          this.sendable.add(frame.streamId);
          if (endsHeaders) this.queueNewStreamTopUp(frame.streamId);
          else this.peerStreamAwaitingHeaders = frame.streamId;
        }
        break;
      case FrameType.CONTINUATION:
        if (!endsHeaders) break;
        this.inboundHeaderBlockOpen = false;
        if (this.peerStreamAwaitingHeaders === frame.streamId) {
          this.peerStreamAwaitingHeaders = undefined;
          if (this.sendable.has(frame.streamId)) this.queueNewStreamTopUp(frame.streamId);
        }
        break;
      case FrameType.RST_STREAM:
        this.sendable.delete(frame.streamId);
        break;
    }
  }

  private observeSent(frame: FrameHeader): void {
    switch (frame.type) {
      case FrameType.HEADERS:
        if (frame.flags & Flag.END_STREAM) this.sendable.delete(frame.streamId);
        else if (this.role === "client" && this.opensStream(frame.streamId)) {
          this.sendable.add(frame.streamId);
          this.queueNewStreamTopUp(frame.streamId);
        }
        break;
      case FrameType.DATA:
        if (frame.flags & Flag.END_STREAM) this.sendable.delete(frame.streamId);
        break;
      case FrameType.RST_STREAM:
        this.sendable.delete(frame.streamId);
        break;
    }
  }

  /** Client-initiated streams have odd ids that only grow; the first HEADERS of a new one opens it. */
  private opensStream(streamId: number): boolean {
    if (streamId % 2 === 0 || streamId <= this.highestOpenedStream) return false;
    this.highestOpenedStream = streamId;
    return true;
  }
}

/** The Duplex given to the HTTP/2 stack: `connection`'s bytes, passed through an InitialWindowRewriter. */
class RewrittenConnection extends Duplex {
  constructor(
    private readonly connection: Duplex,
    private readonly rewriter: InitialWindowRewriter,
  ) {
    super({ allowHalfOpen: true });
    connection.on("data", (chunk: Buffer) => {
      let wantsMore = true;
      for (const part of rewriter.fromPeer(chunk)) wantsMore = this.push(part) && wantsMore;
      if (!wantsMore) connection.pause();
    });
    connection.on("end", () => this.push(null));
    connection.on("error", (err: Error) => this.destroy(err));
    connection.on("close", () => this.destroy());
  }

  override _read(): void {
    this.connection.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.rewriter.toPeer(chunk);
    for (const frame of this.rewriter.takeInsertions()) this.push(frame);
    if (this.connection.write(chunk)) callback();
    else this.connection.once("drain", () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.connection.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.connection.destroyed) this.connection.destroy();
    callback(error);
  }
}

/**
 * The connection to hand to node:http2 as `role`: under Bun, wrapped so the peer's initial-window raises reach
 * open streams (see the top of this file); under Node, `connection` itself, untouched.
 */
export function withInitialWindowFix(
  connection: Duplex,
  role: Http2Role,
  runtime: Readonly<Record<string, string | undefined>> = process.versions,
): Duplex {
  return runtime.bun ? new RewrittenConnection(connection, new InitialWindowRewriter(role)) : connection;
}
