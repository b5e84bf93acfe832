// The Bun HTTP/2 initial-window workaround (src/buildkit/transport/h2-flow-fix.ts): golden bytes for the
// rewritten SETTINGS and the WINDOW_UPDATEs that replace a raise, across chunk boundaries, for both roles.
import { Duplex } from "node:stream";
import { describe, expect, it } from "vitest";
import { InitialWindowRewriter, withInitialWindowFix } from "../../../src/buildkit/transport/h2-flow-fix.ts";

const PREFACE = "505249202a20485454502f322e300d0a0d0a534d0d0a0d0a";
// Frames as hex: 3-byte length, type, flags, stream id, payload.
const SETTINGS_EMPTY = "000000" + "04" + "00" + "00000000";
const SETTINGS_ACK = "000000" + "04" + "01" + "00000000";
const SETTINGS_MAX_FRAME = "000006" + "04" + "00" + "00000000" + "0005" + "00008000";
/** INITIAL_WINDOW_SIZE = 262,144 (a raise of 196,609 over the default 65,535). */
const SETTINGS_RAISE = "00000c" + "04" + "00" + "00000000" + "0003" + "00000064" + "0004" + "00040000";
/** The same frame as the local stack gets it: the window entry keeps the value it already has. */
const SETTINGS_RAISE_HIDDEN = "00000c" + "04" + "00" + "00000000" + "0003" + "00000064" + "0004" + "0000ffff";
const headers = (stream: number, flags: string) => "000001" + "01" + flags + stream.toString(16).padStart(8, "0") + "82";
const continuation = (stream: number, flags: string) => "000001" + "09" + flags + stream.toString(16).padStart(8, "0") + "84";
const data = (stream: number, flags: string, payload: string) =>
  (payload.length / 2).toString(16).padStart(6, "0") + "00" + flags + stream.toString(16).padStart(8, "0") + payload;
const rstStream = (stream: number) => "000004" + "03" + "00" + stream.toString(16).padStart(8, "0") + "00000008";
const windowUpdate = (stream: number, increment: number) =>
  "000004" + "08" + "00" + stream.toString(16).padStart(8, "0") + increment.toString(16).padStart(8, "0");
const PING = "000008" + "06" + "00" + "00000000" + "0102030405060708";
const RAISE = 262_144 - 65_535;

const bytes = (hex: string) => Buffer.from(hex, "hex");
const hexOf = (parts: Buffer[]) => Buffer.concat(parts).toString("hex");

/** Feeds `hex` to fromPeer in pieces cut at `cuts` and returns everything handed to the local stack. */
function received(rewriter: InitialWindowRewriter, hex: string, cuts: number[] = []): string {
  const wire = bytes(hex);
  const out: Buffer[] = [];
  let start = 0;
  for (const cut of [...cuts, wire.length]) {
    out.push(...rewriter.fromPeer(wire.subarray(start, cut)));
    start = cut;
  }
  return hexOf(out);
}

describe("InitialWindowRewriter, server role (the daemon opens streams inside a session)", () => {
  it("hides a raise from the local stack and hands it to each open stream as a WINDOW_UPDATE", () => {
    const rewriter = new InitialWindowRewriter("server");
    const before = PREFACE + SETTINGS_EMPTY + headers(1, "04") + headers(3, "04");
    expect(received(rewriter, before)).toBe(before);
    expect(received(rewriter, SETTINGS_RAISE + PING)).toBe(
      SETTINGS_RAISE_HIDDEN + windowUpdate(1, RAISE) + windowUpdate(3, RAISE) + PING,
    );
  });

  it("gives the same bytes however the input is cut, one byte at a time included", () => {
    const wire =
      PREFACE + SETTINGS_EMPTY + headers(1, "04") + data(1, "00", "0000000001aa") + SETTINGS_RAISE + PING + headers(3, "04");
    const whole = received(new InitialWindowRewriter("server"), wire);
    expect(whole).toBe(
      PREFACE + SETTINGS_EMPTY + headers(1, "04") + data(1, "00", "0000000001aa") + SETTINGS_RAISE_HIDDEN +
        windowUpdate(1, RAISE) + PING + headers(3, "04") + windowUpdate(3, RAISE),
    );
    const length = wire.length / 2;
    for (let cut = 1; cut < length; cut++) expect(received(new InitialWindowRewriter("server"), wire, [cut])).toBe(whole);
    expect(received(new InitialWindowRewriter("server"), wire, Array.from({ length: length - 1 }, (_, i) => i + 1))).toBe(whole);
  });

  it("passes everything else through byte for byte: ACKs, other settings, data, pings, resets", () => {
    const rewriter = new InitialWindowRewriter("server");
    const wire =
      PREFACE + SETTINGS_MAX_FRAME + windowUpdate(0, 1000) + headers(1, "04") + SETTINGS_ACK + data(1, "01", "00000000020801") +
      PING + rstStream(1) + SETTINGS_EMPTY;
    expect(received(rewriter, wire, [5, 30, 31, 60])).toBe(wire);
  });

  it("leaves out streams it can no longer send on, and keeps those only the peer has half-closed", () => {
    const rewriter = new InitialWindowRewriter("server");
    received(rewriter, PREFACE + headers(1, "04") + headers(3, "04") + headers(5, "04") + headers(7, "05") + headers(9, "04"));
    rewriter.toPeer(bytes(headers(1, "04") + data(1, "01", "aa"))); // we ended stream 1
    rewriter.toPeer(bytes(rstStream(5))); // we reset stream 5
    rewriter.toPeer(bytes(headers(9, "04") + data(9, "00", "bb") + headers(9, "05"))); // trailers end stream 9
    expect(received(rewriter, rstStream(3) + SETTINGS_RAISE)).toBe(rstStream(3) + SETTINGS_RAISE_HIDDEN + windowUpdate(7, RAISE));
  });

  it("tops up streams opened after a raise right after their header block, never inside it", () => {
    const rewriter = new InitialWindowRewriter("server");
    received(rewriter, PREFACE + headers(1, "04") + SETTINGS_RAISE);
    expect(received(rewriter, headers(3, "00") + continuation(3, "00") + continuation(3, "04") + PING, [12, 20])).toBe(
      headers(3, "00") + continuation(3, "00") + continuation(3, "04") + windowUpdate(3, RAISE) + PING,
    );
    expect(received(rewriter, headers(5, "05"))).toBe(headers(5, "05") + windowUpdate(5, RAISE));
  });

  it("adds only the difference when the window grows again, for old and new streams alike", () => {
    const rewriter = new InitialWindowRewriter("server");
    received(rewriter, PREFACE + headers(1, "04") + SETTINGS_RAISE + headers(3, "04"));
    const higher = "000006" + "04" + "00" + "00000000" + "0004" + "00100000"; // 1 MiB
    const hidden = "000006" + "04" + "00" + "00000000" + "0004" + "0000ffff";
    expect(received(rewriter, higher)).toBe(hidden + windowUpdate(1, (1 << 20) - 262_144) + windowUpdate(3, (1 << 20) - 262_144));
    expect(received(rewriter, headers(5, "04"))).toBe(headers(5, "04") + windowUpdate(5, (1 << 20) - 65_535));
  });

  it("forwards the value untouched while no stream is open: the stack gives it to new streams itself", () => {
    const rewriter = new InitialWindowRewriter("server");
    expect(received(rewriter, PREFACE + SETTINGS_RAISE + headers(1, "04"))).toBe(PREFACE + SETTINGS_RAISE + headers(1, "04"));
    rewriter.toPeer(bytes(headers(1, "05")));
    expect(received(rewriter, SETTINGS_RAISE)).toBe(SETTINGS_RAISE);
  });

  it("hides a decrease too, without a WINDOW_UPDATE", () => {
    const rewriter = new InitialWindowRewriter("server");
    received(rewriter, PREFACE + headers(1, "04"));
    const lower = "000006" + "04" + "00" + "00000000" + "0004" + "00004000";
    expect(received(rewriter, lower + PING)).toBe("000006" + "04" + "00" + "00000000" + "0004" + "0000ffff" + PING);
  });
});

describe("InitialWindowRewriter, client role (our Control connection)", () => {
  it("tracks the streams we open and tops up new ones between received frames", () => {
    const rewriter = new InitialWindowRewriter("client");
    rewriter.toPeer(bytes(PREFACE + SETTINGS_EMPTY + headers(1, "04") + headers(3, "04") + data(3, "01", "aa")));
    expect(rewriter.takeInsertions()).toEqual([]);
    expect(received(rewriter, SETTINGS_EMPTY + SETTINGS_RAISE)).toBe(
      SETTINGS_EMPTY + SETTINGS_RAISE_HIDDEN + windowUpdate(1, RAISE),
    );

    rewriter.toPeer(bytes(headers(5, "04")));
    expect(hexOf(rewriter.takeInsertions())).toBe(windowUpdate(5, RAISE));

    // Mid-frame on the receiving side: the top-up waits for the frame's end.
    expect(received(rewriter, PING.slice(0, 20))).toBe(PING.slice(0, 20));
    rewriter.toPeer(bytes(headers(7, "04")));
    expect(rewriter.takeInsertions()).toEqual([]);
    expect(received(rewriter, PING.slice(20) + PING)).toBe(PING.slice(20) + windowUpdate(7, RAISE) + PING);

    // Inside a received header block (HEADERS without END_HEADERS) nothing may be inserted until it ends.
    expect(received(rewriter, headers(1, "00"))).toBe(headers(1, "00"));
    rewriter.toPeer(bytes(headers(11, "04")));
    expect(rewriter.takeInsertions()).toEqual([]);
    expect(received(rewriter, continuation(1, "00") + continuation(1, "04"))).toBe(
      continuation(1, "00") + continuation(1, "04") + windowUpdate(11, RAISE),
    );

    // A unary request ends with its first frames: nothing to top up.
    rewriter.toPeer(bytes(headers(9, "04") + data(9, "01", "00")));
    expect(rewriter.takeInsertions()).toEqual([]);
  });
});

describe("withInitialWindowFix", () => {
  it("returns the connection itself outside Bun", () => {
    const connection = new Duplex({ read() {}, write(_chunk, _encoding, callback) { callback(); } });
    expect(withInitialWindowFix(connection, "server", { node: "20.20.0" })).toBe(connection);
  });

  it("under Bun, hands the stack rewritten bytes and passes its writes, end and destroy to the connection", async () => {
    const written: Buffer[] = [];
    let ended = false;
    const connection = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        written.push(chunk);
        callback();
      },
      final(callback) {
        ended = true;
        callback();
      },
    });
    const wrapped = withInitialWindowFix(connection, "server", { bun: "1.4.5" });
    expect(wrapped).not.toBe(connection);
    const seen: Buffer[] = [];
    wrapped.on("data", (chunk: Buffer) => seen.push(chunk));

    connection.push(bytes(PREFACE + headers(1, "04")));
    connection.push(bytes(SETTINGS_RAISE));
    await new Promise((resolve) => setImmediate(resolve));
    expect(hexOf(seen)).toBe(PREFACE + headers(1, "04") + SETTINGS_RAISE_HIDDEN + windowUpdate(1, RAISE));

    wrapped.write(bytes(SETTINGS_ACK));
    await new Promise<void>((resolve) => wrapped.end(resolve));
    expect(hexOf(written)).toBe(SETTINGS_ACK);
    expect(ended).toBe(true);

    wrapped.destroy();
    await new Promise((resolve) => setImmediate(resolve));
    expect(connection.destroyed).toBe(true);
  });
});
