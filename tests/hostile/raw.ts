/**
 * Raw-socket tools for attacking a server: hand-built frames, a real
 * handshake followed by forged frames, and reading what the server answers
 * until it closes the connection.
 *
 * @module
 */
import { concat as concatBytes } from "@std/bytes/concat";
import {
  encodeHeader,
  FrameDecoder,
  type OutHeader,
  type RawHeader,
} from "../../protocol/frame_codec.ts";
import { type AuthenticatedLink, clientHandshake } from "../../protocol/handshake.ts";
import type { FrameMac } from "../../protocol/auth.ts";
import { MAC_LENGTH, MAX_HEADER } from "../../protocol/limits.ts";
import { keyBytes } from "../helpers.ts";

/** Bytes of a frame whose header is exactly `headerBytes` (no MAC). */
export function rawFrame(
  headerBytes: Uint8Array,
  body: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const out = new Uint8Array(4 + headerBytes.byteLength + body.byteLength);
  new DataView(out.buffer).setUint32(0, headerBytes.byteLength);
  out.set(headerBytes, 4);
  out.set(body, 4 + headerBytes.byteLength);
  return out;
}

/** A bare u32 length prefix announcing a header of `n` bytes. */
export function lengthPrefix(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  return concatBytes(parts);
}

/** A frame with a valid MAC from `mac` (which advances its sequence number). */
export function macFrame(
  mac: FrameMac,
  header: OutHeader,
  body: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const headerBytes = encodeHeader(header, body.byteLength);
  return concat(rawFrame(headerBytes, body), mac.next(headerBytes, body));
}

/** Opens a plain TCP connection to the test server. */
export function dial(port: number): Promise<Deno.TcpConn> {
  return Deno.connect({ hostname: "127.0.0.1", port });
}

/** Writes every byte; resolves false if the peer closed the connection first. */
export async function send(conn: Deno.Conn, bytes: Uint8Array): Promise<boolean> {
  try {
    let off = 0;
    while (off < bytes.byteLength) off += await conn.write(bytes.subarray(off));
    return true;
  } catch (e) {
    if (_isGone(e)) return false;
    throw e;
  }
}

function _isGone(e: unknown): boolean {
  return e instanceof Deno.errors.ConnectionReset || e instanceof Deno.errors.BrokenPipe ||
    e instanceof Deno.errors.BadResource || e instanceof Deno.errors.ConnectionAborted ||
    e instanceof Deno.errors.NotConnected;
}

/** What a server said before it closed a connection. */
export interface Outcome {
  /** Headers of the frames received, in order. */
  frames: RawHeader[];
  /** The code of the first `error` frame, if any. */
  error: string | undefined;
  /** Whether the server closed the connection (EOF or reset) within the deadline. */
  closed: boolean;
}

/**
 * Reads frames until the server closes the connection or `timeoutMs` passes
 * (then `closed` is false). Closes `conn` in every case.
 */
export async function readUntilClosed(
  conn: Deno.Conn,
  options: { tagLength?: number; timeoutMs?: number; decoder?: FrameDecoder } = {},
): Promise<Outcome> {
  const decoder = options.decoder ??
    new FrameDecoder({ maxBody: 16 * 1024 * 1024, tagLength: options.tagLength ?? 0 });
  const frames: RawHeader[] = [];
  let closed = false;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    _close(conn);
  }, options.timeoutMs ?? 15_000);
  const buf = new Uint8Array(64 * 1024);
  try {
    while (true) {
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch (e) {
        if (!_isGone(e) && !(e instanceof Deno.errors.Interrupted)) throw e;
        n = null;
      }
      if (n === null) {
        closed = !timedOut;
        break;
      }
      decoder.push(buf.slice(0, n));
      for (let f = decoder.next(); f; f = decoder.next()) frames.push(f.header);
    }
  } finally {
    clearTimeout(timer);
    _close(conn);
  }
  const err = frames.find((f) => f.t === "error");
  return { frames, error: err?.code as string | undefined, closed };
}

function _close(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch (e) {
    if (!(e instanceof Deno.errors.BadResource)) throw e;
  }
}

/** A logged-in raw connection: forge frames with `mac`, read with `decoder`. */
export interface RawSession {
  conn: Deno.TcpConn;
  link: AuthenticatedLink;
  /** The MAC for frames we send (valid sequence numbers as long as we use it in order). */
  mac: FrameMac;
  /** Sends a frame with a valid MAC. */
  sendFrame(header: OutHeader, body?: Uint8Array): Promise<boolean>;
  /** Reads what the server says until it closes (and closes our side). */
  outcome(timeoutMs?: number): Promise<Outcome>;
}

/** Connects and runs a real handshake, then hands back the raw socket. */
export async function rawLogin(
  port: number,
  user: string,
  keyHex: string,
  options: { maxBody?: number; window?: { s: number; c: number } } = {},
): Promise<RawSession> {
  const conn = await dial(port);
  let link: AuthenticatedLink;
  try {
    // No feature offered (PROTOCOL.md §4.4): frames one by one, each MAC over its body.
    link = await clientHandshake(conn, {
      user,
      key: keyBytes(keyHex),
      batch: false,
      digest: false,
      ...(options.maxBody ? { maxBody: options.maxBody } : {}),
      ...(options.window ? { window: options.window } : {}),
    });
  } catch (e) {
    _close(conn);
    throw e;
  }
  const mac = link.sendMac!;
  return {
    conn,
    link,
    mac,
    sendFrame: (header, body) => send(conn, macFrame(mac, header, body)),
    outcome: (timeoutMs) =>
      readUntilClosed(conn, { decoder: link.reader.decoder, ...(timeoutMs ? { timeoutMs } : {}) }),
  };
}

/** Largest header length the server accepts. */
export const HEADER_LIMIT = MAX_HEADER;
/** MAC trailer length. */
export const TAG = MAC_LENGTH;
