/**
 * Telling quickly that a port does not speak Parley: a peer that fails the
 * TLS handshake, sends bytes that cannot start a frame, or says nothing
 * within a short hello timeout. The errors say what the peer sent, so
 * `parley connect parley://ada@127.0.0.1:22` answers in a moment with
 * "127.0.0.1:22 is not a Parley server: it sent "SSH-2.0-…"" instead of
 * waiting out the handshake deadline.
 *
 * @module
 */
import { encodeFrame } from "../protocol/frame_codec.ts";
import { MAX_HEADER } from "../protocol/limits.ts";
import type { Transport } from "../protocol/transport.ts";

/** How long a server may take to say its first bytes (ms). */
export const HELLO_TIMEOUT_MS = 3_000;

/** The peer does not speak Parley (or not the way the client dialled it). */
export class NotParleyError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "NotParleyError";
  }
}

/** Nothing listens on the port: the connection was refused. */
export class NothingListensError extends Deno.errors.ConnectionRefused {
  constructor(host: string, port: number, options: { cause?: unknown } = {}) {
    super(
      `nothing listens on ${_hostPort(host, port)}; is the server running? (parley serve)`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = "NothingListensError";
  }
}

function _hostPort(host: string, port: number): string {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/** What a peer that sent `bytes` instead of a Parley frame is told. */
function _sent(where: string, bytes: Uint8Array): string {
  return `${where} is not a Parley server: it sent ${describeBytes(bytes)}; is the port right?`;
}

/** What a peer that accepted the connection and then said nothing is told. */
function _silent(where: string, timeoutMs: number): string {
  return `${where} accepted the connection but answered nothing within ${timeoutMs / 1000} s: ` +
    "it is not a Parley server, or it is stuck; is the port right?";
}

/** `"SSH-2.0-OpenSSH_9.6"` for text, or hex bytes for binary, of the first bytes a peer sent. */
export function describeBytes(bytes: Uint8Array): string {
  const head = bytes.subarray(0, 64);
  const printable = head.filter((b) => (b >= 0x20 && b < 0x7f) || b === 9 || b === 10 || b === 13);
  if (head.byteLength > 0 && printable.byteLength >= head.byteLength * 0.9) {
    const line = new TextDecoder().decode(head).split(/\r?\n/)[0]!.replace(/[^\x20-\x7e]/g, "?");
    return JSON.stringify(line.length > 60 ? `${line.slice(0, 60)}…` : line);
  }
  const hex = [...head.subarray(0, 12)].map((b) => b.toString(16).padStart(2, "0")).join(" ");
  return `the bytes ${hex}${bytes.byteLength > 12 ? " …" : ""}`;
}

/** Whether `bytes` (at least 5) start like a TLS record (handshake or alert). */
function _tls(bytes: Uint8Array): boolean {
  return (bytes[0] === 0x15 || bytes[0] === 0x16) && bytes[1] === 0x03;
}

/** Whether `bytes` (at least 5) can start a Parley frame: a sane header length, then `{`. */
function _frameStart(bytes: Uint8Array): boolean {
  const len = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0);
  return len > 0 && len <= MAX_HEADER && bytes[4] === 0x7b;
}

/**
 * Wraps the transport of a connection in its handshake: the first read must
 * bring bytes that can start a frame within `timeoutMs`, or it fails with
 * {@linkcode NotParleyError}. After that it only passes reads through.
 */
export class HelloCheck implements Transport {
  #inner: Transport;
  #where: string;
  #tls: boolean;
  #timeoutMs: number;
  #checked = false;
  #held: Uint8Array | undefined;

  constructor(
    inner: Transport,
    options: { host: string; port: number; tls: boolean; timeoutMs?: number },
  ) {
    this.#inner = inner;
    this.#where = _hostPort(options.host, options.port);
    this.#tls = options.tls;
    this.#timeoutMs = options.timeoutMs ?? HELLO_TIMEOUT_MS;
  }

  read(p: Uint8Array): Promise<number | null> {
    if (this.#held) {
      const n = Math.min(p.byteLength, this.#held.byteLength);
      p.set(this.#held.subarray(0, n));
      this.#held = this.#held.byteLength > n ? this.#held.subarray(n) : undefined;
      return Promise.resolve(n);
    }
    if (this.#checked) return this.#inner.read(p);
    return this.#firstRead(p);
  }

  write(p: Uint8Array): Promise<number> {
    return this.#inner.write(p);
  }

  close(): void {
    this.#inner.close();
  }

  async #firstRead(p: Uint8Array): Promise<number | null> {
    let got = new Uint8Array(0);
    const deadline = Date.now() + this.#timeoutMs;
    const buf = new Uint8Array(4096);
    // Until five bytes (a header length and its first character) or the timeout.
    for (let i = 0; got.byteLength < 5 && i < 64; i++) {
      const n = await this.#readBefore(buf, deadline, got);
      if (n === null) {
        if (got.byteLength === 0) {
          throw new NotParleyError(
            `${this.#where} closed the connection without answering: it is not a Parley ` +
              `server${
                this.#tls
                  ? "; is the port right?"
                  : ", or it serves TLS (the default): then connect without --plain"
              }`,
          );
        }
        break;
      }
      const next = new Uint8Array(got.byteLength + n);
      next.set(got);
      next.set(buf.subarray(0, n), got.byteLength);
      got = next;
    }
    if (got.byteLength < 5 || !_frameStart(got)) {
      if (!this.#tls && got.byteLength >= 2 && _tls(got)) {
        throw new NotParleyError(
          `${this.#where} speaks TLS; Parley servers do unless started with --plain: ` +
            "connect without --plain (a parley:// address)",
        );
      }
      throw new NotParleyError(_sent(this.#where, got));
    }
    this.#checked = true;
    this.#held = got;
    return this.read(p);
  }

  async #readBefore(buf: Uint8Array, deadline: number, got: Uint8Array): Promise<number | null> {
    const read = this.#inner.read(buf);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(
          new NotParleyError(
            got.byteLength === 0 ? _silent(this.#where, this.#timeoutMs) : _sent(this.#where, got),
          ),
        );
      }, Math.max(0, deadline - Date.now()));
    });
    // The read outlives a timeout until the caller closes the transport.
    read.catch(() => {});
    try {
      return await Promise.race([read, late]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * After a TLS handshake failed (or timed out) on `host:port`: connects once
 * more without TLS, sends a Parley hello and reads for up to `timeoutMs`, and
 * returns the error that says what is there — a plaintext Parley server, or
 * something else and what it sent.
 */
export async function probeAfterTls(
  host: string,
  port: number,
  cause: Error,
  timeoutMs = 1_500,
): Promise<Error> {
  const where = _hostPort(host, port);
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: host, port });
  } catch {
    return new NotParleyError(
      `${where} is not a Parley server: it does not speak TLS (${cause.message}); ` +
        "is the port right?",
      { cause },
    );
  }
  let got = new Uint8Array(0);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const hello = encodeFrame({
      t: "hello",
      v: 1,
      user: "probe",
      nonce: "00".repeat(32),
    });
    const work = (async () => {
      await conn.write(hello).catch(() => 0);
      const buf = new Uint8Array(256);
      while (got.byteLength < 64) {
        const n = await conn.read(buf).catch(() => null);
        if (n === null) return;
        const next = new Uint8Array(got.byteLength + n);
        next.set(got);
        next.set(buf.subarray(0, n), got.byteLength);
        got = next;
        if (got.byteLength >= 5 && _frameStart(got)) return;
      }
    })();
    await Promise.race([work, new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    conn.close();
    await work;
  } finally {
    clearTimeout(timer);
  }
  if (got.byteLength >= 5 && _frameStart(got)) {
    return new NotParleyError(
      `${where} serves Parley without TLS (started with --plain); connect with --plain ` +
        "(or a parley+plain:// address)",
      { cause },
    );
  }
  return new NotParleyError(
    got.byteLength > 0
      ? _sent(where, got)
      : cause.message.startsWith("no TLS handshake")
      ? _silent(where, HELLO_TIMEOUT_MS)
      : `${where} is not a Parley server: it does not speak TLS and answered nothing; ` +
        "is the port right?",
    { cause },
  );
}
