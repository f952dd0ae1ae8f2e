/**
 * Fixtures for the protocol tests: an in-memory transport pair, a bare
 * protocol server (handshake + Session, no Parley features) on port 0, a raw
 * authenticated peer that writes frames by hand, and a man-in-the-middle TCP
 * proxy that can rewrite, drop, inject or reorder frames between a real client
 * and a real server.
 *
 * @module
 */
import { decodeHex, encodeHex } from "@std/encoding/hex";
import { concat } from "@std/bytes/concat";
import { clientHandshake, serverHandshake } from "../../protocol/handshake.ts";
import { Session, type Windows } from "../../protocol/session.ts";
import type { IncomingRequest } from "../../protocol/session.ts";
import type { MuxStream } from "../../protocol/mux_stream.ts";
import {
  type DecodedFrame,
  encodeHeader,
  FrameDecoder,
  type OutHeader,
} from "../../protocol/frame_codec.ts";
import { type FrameMac, verifierOf } from "../../protocol/auth.ts";
import { type FrameReader, type Transport, writeAll } from "../../protocol/transport.ts";
import { MAC_LENGTH } from "../../protocol/limits.ts";
import { macCovered, StreamDigests } from "../../protocol/stream_digest.ts";

/** The key every fixture user has unless told otherwise: bytes 0x00..0x1f. */
export const TEST_KEY: Uint8Array = Uint8Array.from({ length: 32 }, (_, i) => i);

/** Lowercase hex of `b`. */
export function hex(b: Uint8Array): string {
  return encodeHex(b);
}

/** Bytes of a hex string (whitespace ignored). */
export function unhex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, "");
  if (clean.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(clean)) {
    throw new TypeError(`not hex: ${s.slice(0, 40)}`);
  }
  return decodeHex(clean);
}

export { concat } from "@std/bytes/concat";

/** Reads a stream to its end. */
export async function readAll(stream: MuxStream): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (let b = await stream.read(); b; b = await stream.read()) parts.push(b);
  return concat(parts);
}

/** SHA-256 of `data` as hex. */
export async function sha256(data: Uint8Array): Promise<string> {
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", data as BufferSource)));
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `cond` every few ms until it holds; throws after `ms`. */
export async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

// --- in-memory transport -----------------------------------------------------

class _PipeEnd implements Transport {
  #inbox: Uint8Array[] = [];
  #waiter: (() => void) | undefined;
  #closed = false;
  peer!: _PipeEnd;
  /** Every byte this end wrote, in order. */
  readonly written: Uint8Array[] = [];

  deliver(p: Uint8Array): void {
    this.#inbox.push(p);
    this.#wake();
  }

  shut(): void {
    this.#closed = true;
    this.#wake();
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (this.#inbox.length === 0) {
      if (this.#closed) return null;
      await new Promise<void>((r) => (this.#waiter = r));
    }
    const head = this.#inbox[0]!;
    const n = Math.min(p.byteLength, head.byteLength);
    p.set(head.subarray(0, n));
    if (n === head.byteLength) this.#inbox.shift();
    else this.#inbox[0] = head.subarray(n);
    return n;
  }

  write(p: Uint8Array): Promise<number> {
    if (this.#closed) return Promise.reject(new Deno.errors.BrokenPipe("pipe closed"));
    const copy = p.slice();
    this.written.push(copy);
    this.peer.deliver(copy);
    return Promise.resolve(p.byteLength);
  }

  close(): void {
    this.shut();
    this.peer.shut();
  }
}

/** Two connected in-memory transports; each records what it wrote in `written`. */
export function memoryPipe(): [_PipeEnd, _PipeEnd] {
  const a = new _PipeEnd();
  const b = new _PipeEnd();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

// --- a bare protocol server over TCP ----------------------------------------

/** Options for {@linkcode startProtocolServer}. */
export interface ProtocolServerOptions {
  /** Users and keys. Default: `ada` with {@linkcode TEST_KEY}. */
  users?: Record<string, Uint8Array>;
  /** Handles requests. Default: echoes args, and echoes a stream's bytes. */
  onRequest?: (req: IncomingRequest, session: Session) => Promise<unknown>;
  /** Windows the server grants. */
  window?: Windows;
  /** Stream cap. */
  maxStreams?: number;
  /** Body limit. */
  maxBody?: number;
  /** Fixed server nonce (tests of nonce reuse only). */
  nonce?: Uint8Array;
}

/** A running bare protocol server. */
export interface ProtocolServer extends AsyncDisposable {
  port: number;
  /** Sessions that completed the handshake, in order. */
  sessions: Session[];
  /** Errors of handshakes that failed, in order. */
  handshakeErrors: unknown[];
}

/** Echo handler used by default: args back, and a stream's bytes back. */
export async function echoHandler(req: IncomingRequest): Promise<unknown> {
  if (!req.stream) return req.args;
  let n = 0;
  for (let b = await req.stream.read(); b; b = await req.stream.read()) {
    n += b.byteLength;
    await req.stream.write(b);
  }
  return { bytes: n };
}

/** Starts a handshake + Session server on 127.0.0.1:0. */
export function startProtocolServer(options: ProtocolServerOptions = {}): ProtocolServer {
  const users = options.users ?? { ada: TEST_KEY };
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const sessions: Session[] = [];
  const handshakeErrors: unknown[] = [];
  const conns = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
  const serve = async (conn: Deno.Conn) => {
    conns.add(conn);
    try {
      const link = await serverHandshake(conn, {
        verifierFor: (u) => (users[u] ? verifierOf(users[u]) : undefined),
        timeoutMs: 5000,
        ...(options.window ? { window: options.window } : {}),
        ...(options.maxStreams ? { maxStreams: options.maxStreams } : {}),
        ...(options.maxBody ? { maxBody: options.maxBody } : {}),
        ...(options.nonce ? { nonce: options.nonce } : {}),
      });
      const handler = options.onRequest ?? echoHandler;
      const session: Session = new Session({
        ...link,
        onRequest: (req) => handler(req, session),
      });
      sessions.push(session);
      await session.closed;
    } catch (e) {
      handshakeErrors.push(e);
      try {
        conn.close();
      } catch {
        // closed by the handshake deadline already
      }
    } finally {
      conns.delete(conn);
    }
  };
  const accepting = (async () => {
    for await (const conn of listener) {
      const t = serve(conn);
      tasks.add(t);
      t.finally(() => tasks.delete(t));
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    sessions,
    handshakeErrors,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting.catch(() => {});
      await Promise.all(sessions.map((s) => s.close()));
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // the session closed it
        }
      }
      await Promise.allSettled([...tasks]);
    },
  };
}

/** A client Session over TCP; `await using` closes it. */
export async function connectSession(
  port: number,
  options: {
    user?: string;
    key?: Uint8Array;
    window?: Windows;
    onEvent?: (ev: string, d: unknown) => void;
  } = {},
): Promise<Session> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const link = await clientHandshake(conn, {
      user: options.user ?? "ada",
      key: options.key ?? TEST_KEY,
      timeoutMs: 5000,
      ...(options.window ? { window: options.window } : {}),
    });
    return new Session({ ...link, ...(options.onEvent ? { onEvent: options.onEvent } : {}) });
  } catch (e) {
    try {
      conn.close();
    } catch {
      // already closed
    }
    throw e;
  }
}

// --- a raw peer that writes frames by hand ----------------------------------

/** An authenticated client that sends and receives frames without a Session. */
export class RawPeer implements AsyncDisposable {
  readonly conn: Deno.Conn;
  readonly reader: FrameReader;
  #sendMac: FrameMac | undefined;
  #recvMac: FrameMac | undefined;
  /** Running stream digests when the `digest` feature is on (§4.7). */
  #sendDigests: StreamDigests | undefined;
  #recvDigests: StreamDigests | undefined;

  private constructor(
    conn: Deno.Conn,
    reader: FrameReader,
    sendMac: FrameMac | undefined,
    recvMac: FrameMac | undefined,
  ) {
    this.conn = conn;
    this.reader = reader;
    this.#sendMac = sendMac;
    this.#recvMac = recvMac;
  }

  /** Connects and runs the client handshake. */
  static async connect(
    port: number,
    options: {
      user?: string;
      key?: Uint8Array;
      window?: Windows;
      batch?: boolean;
      digest?: boolean;
    } = {},
  ): Promise<RawPeer> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    // By default it offers no feature (§4.4): frames one by one, each MAC over its body.
    const link = await clientHandshake(conn, {
      user: options.user ?? "ada",
      key: options.key ?? TEST_KEY,
      batch: options.batch ?? false,
      digest: options.digest ?? false,
      ...(options.window ? { window: options.window } : {}),
    });
    const peer = new RawPeer(conn, link.reader, link.sendMac, link.recvMac);
    if (link.digest) {
      peer.#sendDigests = new StreamDigests(256);
      peer.#recvDigests = new StreamDigests(256);
    }
    return peer;
  }

  /** Encodes one frame with a correct MAC (or `tag` when given). */
  frame(header: OutHeader, body: Uint8Array = new Uint8Array(0), tag?: Uint8Array): Uint8Array {
    const hb = encodeHeader(header, body.byteLength);
    const prefix = new Uint8Array(4);
    new DataView(prefix.buffer).setUint32(0, hb.byteLength);
    const covered = this.#sendDigests ? macCovered(this.#sendDigests, header, body) : body;
    const mac = tag ?? this.#sendMac!.next(hb, covered);
    return concat([prefix, hb, body, mac]);
  }

  /** A data frame tagged over its body, as without the `digest` feature (for tests of it). */
  frameTaggedOverBody(_h: OutHeader, body: Uint8Array, hb: Uint8Array): Uint8Array {
    const prefix = new Uint8Array(4);
    new DataView(prefix.buffer).setUint32(0, hb.byteLength);
    return concat([prefix, hb, body, this.#sendMac!.next(hb, body)]);
  }

  /** Sends one frame with a correct MAC. */
  async send(header: OutHeader, body?: Uint8Array): Promise<void> {
    await writeAll(this.conn, this.frame(header, body));
  }

  /** Next frame from the server (MAC checked), or null at end of stream. */
  async next(): Promise<DecodedFrame | null> {
    const f = await this.reader.next();
    if (f && this.#recvMac) {
      const covered = this.#recvDigests ? macCovered(this.#recvDigests, f.header, f.body) : f.body;
      this.#recvMac.verify(f.headerBytes, covered, f.tag);
    }
    return f;
  }

  /** Reads frames until an `error` frame arrives; returns it. Throws if the stream ends first. */
  async expectError(): Promise<{ code: string; msg: string }> {
    while (true) {
      const f = await this.next();
      if (f === null) throw new Error("connection closed without an error frame");
      if (f.header.t === "error") return f.header as unknown as { code: string; msg: string };
    }
  }

  /** Reads until the server closes the connection (errors count as closed). */
  async expectClosed(): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      while ((await this.conn.read(buf)) !== null) {
        // discard
      }
    } catch {
      // reset by peer also means closed
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    try {
      this.conn.close();
    } catch {
      // closed already
    }
    return Promise.resolve();
  }
}

// --- man in the middle ------------------------------------------------------

/** Direction of a frame through the proxy. */
export type Direction = "c2s" | "s2c";

/**
 * Decides what to forward for one frame. `index` counts frames per direction
 * from 0 (the hello and the challenge). Return the bytes to send instead
 * (several frames concatenated, or an empty array to drop it).
 */
export type FrameHook = (dir: Direction, index: number, bytes: Uint8Array) => Uint8Array;

/** A TCP proxy that parses frames in both directions and lets a hook rewrite them. */
export interface MitmProxy extends AsyncDisposable {
  port: number;
  /** Every frame seen, in order, per direction (as received, before the hook). */
  frames: Record<Direction, Uint8Array[]>;
}

/** Raw bytes of one decoded frame, as on the wire. */
function _frameBytes(f: DecodedFrame): Uint8Array {
  const prefix = new Uint8Array(4);
  new DataView(prefix.buffer).setUint32(0, f.headerBytes.byteLength);
  return concat([prefix, f.headerBytes, f.body, f.tag ?? new Uint8Array(0)]);
}

/**
 * Starts a proxy on 127.0.0.1:0 in front of `targetPort`. Frames after the
 * second in each direction (hello+auth, challenge+welcome) carry a MAC.
 */
export function startMitm(targetPort: number, hook: FrameHook = (_d, _i, b) => b): MitmProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const frames: Record<Direction, Uint8Array[]> = { c2s: [], s2c: [] };
  const conns = new Set<Deno.Conn>();
  const tasks: Promise<void>[] = [];
  const closeBoth = (a: Deno.Conn, b: Deno.Conn) => {
    for (const c of [a, b]) {
      try {
        c.close();
      } catch {
        // closed already
      }
      conns.delete(c);
    }
  };
  const relay = async (dir: Direction, from: Deno.Conn, to: Deno.Conn) => {
    const dec = new FrameDecoder({ maxBody: 16 * 1024 * 1024 });
    const buf = new Uint8Array(256 * 1024);
    let index = 0;
    try {
      while (true) {
        const n = await from.read(buf);
        if (n === null) break;
        dec.push(buf.slice(0, n));
        for (let f = dec.next(); f; f = dec.next()) {
          const bytes = _frameBytes(f);
          frames[dir].push(bytes);
          const out = hook(dir, index++, bytes);
          if (index === 2) dec.tagLength = MAC_LENGTH;
          if (out.byteLength > 0) await writeAll(to, out);
        }
      }
    } catch {
      // either side went away
    }
    closeBoth(from, to);
  };
  const accepting = (async () => {
    for await (const client of listener) {
      conns.add(client);
      let server: Deno.Conn;
      try {
        server = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
      } catch {
        closeBoth(client, client);
        continue;
      }
      conns.add(server);
      tasks.push(relay("c2s", client, server), relay("s2c", server, client));
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    frames,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting.catch(() => {});
      for (const c of [...conns]) closeBoth(c, c);
      await Promise.allSettled(tasks);
    },
  };
}

/**
 * Logs in through a proxy that adds `extra` to the server's `welcome` (a
 * feature the client did not offer) and returns the error code the client's
 * handshake fails with (undefined if it succeeds).
 */
export async function handshakeWithForgedWelcome(
  serverPort: number,
  extra: Record<string, unknown>,
  client: Omit<Parameters<typeof clientHandshake>[1], "user" | "key">,
): Promise<string | undefined> {
  const forge: FrameHook = (dir, i, bytes) => {
    if (dir !== "s2c" || i !== 1) return bytes;
    const h = JSON.parse(new TextDecoder().decode(bytes.subarray(4)));
    const hb = encodeHeader({ ...h, ...extra }, 0);
    const out = new Uint8Array(4 + hb.byteLength);
    new DataView(out.buffer).setUint32(0, hb.byteLength);
    out.set(hb, 4);
    return out;
  };
  await using mitm = startMitm(serverPort, forge);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: mitm.port });
  try {
    const err = await clientHandshake(conn, { user: "ada", key: TEST_KEY, ...client }).then(
      () => undefined,
      (e) => e,
    );
    return (err as { code?: string } | undefined)?.code;
  } finally {
    conn.close();
  }
}
