/**
 * TLS dialling for the client. Every connection goes through `node:tls`,
 * which shows the peer certificate (Deno's own `connectTls` does not): its
 * SHA-256 is the channel binding of the login proofs (PROTOCOL.md §4.3) and
 * the fingerprint the server is trusted by. The certificate is accepted when
 * a CA given with `--ca` vouches for it, when it matches a pin
 * (`--pin`/`PARLEY_PIN`), or else when the `trust` callback accepts its
 * fingerprint (trust on first use, ./known_servers.ts). The TLS handshake
 * proves the server holds the certificate's private key, so a fingerprint
 * check is as strong as a CA check for a certificate one has seen before.
 *
 * @example
 * ```ts ignore
 * const { transport, channelBinding } = await dialTls({ host: "127.0.0.1", port: 7878, pin: "sha256:49db…" });
 * ```
 *
 * @module
 */
import { connect as nodeConnect, type TLSSocket } from "node:tls";
import { createHash } from "node:crypto";
import type { Transport } from "../protocol/transport.ts";
import { HELLO_TIMEOUT_MS, HelloCheck, NothingListensError, probeAfterTls } from "./not_parley.ts";

/** Options for {@linkcode dialTls}. */
export interface TlsDialOptions {
  host: string;
  port: number;
  /** PEM CA certificates to trust instead of the system roots. */
  caCerts?: string[] | undefined;
  /** `sha256:<hex>` of the server certificate's DER bytes. */
  pin?: string | undefined;
  /** Name to verify in the certificate (default: `host`). */
  serverName?: string | undefined;
  /**
   * Decides on a certificate that neither a CA nor a pin vouches for, by its
   * fingerprint; throws to refuse. Without it such a certificate is refused.
   */
  trust?: ((fingerprint: string) => Promise<void>) | undefined;
  /**
   * How long the TLS handshake, and then the server's first Parley bytes, may
   * take before the peer is taken for something else (ms; default 3 000).
   */
  helloTimeoutMs?: number | undefined;
}

/** A TLS connection and what the login binds to. */
export interface TlsDialed {
  transport: Transport;
  /** SHA-256 of the server certificate's DER bytes as received. */
  channelBinding: Uint8Array;
  /** `sha256:<hex>` of the same. */
  fingerprint: string;
}

/** The TLS handshake failed before any certificate was seen (e.g. a plaintext server). */
export class TlsHandshakeError extends Error {
  constructor(host: string, port: number, cause: Error) {
    super(
      `TLS with ${host}:${port} failed (${cause.message}); if that server runs with ` +
        "--plain, connect with --plain (or a parley+plain:// address)",
      { cause },
    );
    this.name = "TlsHandshakeError";
  }
}

/** The server certificate did not match the pin. */
export class PinMismatchError extends Error {
  /** `sha256:<hex>` the server actually presented. */
  readonly actual: string;

  constructor(expected: string, actual: string) {
    super(
      `the server's certificate is ${actual}, not the pinned ${expected}; ` +
        "refusing to talk to it (if the certificate was replaced on purpose, update the pin)",
    );
    this.name = "PinMismatchError";
    this.actual = actual;
  }
}

/**
 * Normalises a pin to `sha256:<64 lowercase hex>`. Accepts upper case and
 * colon-separated bytes (as `openssl x509 -fingerprint -sha256` prints).
 */
export function parsePin(text: string): string {
  const m = /^sha256[:/](.+)$/i.exec(text.trim());
  const hex = m?.[1]?.replaceAll(":", "").toLowerCase();
  if (!hex || !/^[0-9a-f]{64}$/.test(hex)) {
    throw new TypeError(
      `cannot read certificate pin ${JSON.stringify(text)}; use sha256:<64 hex digits>, e.g. ` +
        "from: openssl x509 -in cert.pem -outform der | sha256sum",
    );
  }
  return `sha256:${hex}`;
}

/** `sha256:<hex>` of a DER certificate. */
export function fingerprint(der: Uint8Array): string {
  return `sha256:${createHash("sha256").update(der).digest("hex")}`;
}

/** Connects with TLS, checks the server certificate, and returns a transport for the handshake. */
export async function dialTls(options: TlsDialOptions): Promise<TlsDialed> {
  const pin = options.pin === undefined ? undefined : parsePin(options.pin);
  const socket = await _nodeTls(options);
  try {
    const cert = socket.getPeerCertificate(false);
    if (!cert?.raw) throw new Error(`${options.host}:${options.port} presented no certificate`);
    const der = new Uint8Array(cert.raw);
    const channelBinding = new Uint8Array(createHash("sha256").update(der).digest());
    const actual = fingerprint(der);
    if (pin !== undefined && actual !== pin) throw new PinMismatchError(pin, actual);
    if (pin === undefined && options.caCerts === undefined) {
      if (!options.trust) {
        throw new Error(
          `cannot check the certificate of ${options.host}:${options.port} (${actual}): ` +
            "give --pin, --ca or a known-servers file",
        );
      }
      await options.trust(actual);
    }
    socket.setNoDelay(true);
    // A TLS server that is not Parley (HTTPS, say) is told apart by its first bytes.
    const transport = new HelloCheck(new NodeSocketTransport(socket), {
      host: options.host,
      port: options.port,
      tls: true,
      ...(options.helloTimeoutMs === undefined ? {} : { timeoutMs: options.helloTimeoutMs }),
    });
    return { transport, channelBinding, fingerprint: actual };
  } catch (e) {
    socket.destroy();
    throw e;
  }
}

function _isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(":");
}

async function _nodeTls(options: TlsDialOptions): Promise<TLSSocket> {
  try {
    return await _nodeTlsOnce(options);
  } catch (e) {
    // Not TLS, or silent: find out what is there (a plaintext Parley server, SSH, …).
    if (e instanceof TlsHandshakeError) {
      throw await probeAfterTls(options.host, options.port, e.cause as Error);
    }
    throw e;
  }
}

function _nodeTlsOnce(options: TlsDialOptions): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const name = options.serverName ?? options.host;
    const socket = nodeConnect({
      host: options.host,
      port: options.port,
      ...(_isIp(name) ? {} : { servername: name }),
      // Without a CA the certificate is checked by fingerprint (pin or trust);
      // a CA, when given, must vouch for it (name included).
      rejectUnauthorized: options.caCerts !== undefined,
      ...(options.caCerts ? { ca: options.caCerts } : {}),
    });
    const timeoutMs = options.helloTimeoutMs ?? HELLO_TIMEOUT_MS;
    const timer = setTimeout(() => {
      fail(new Error(`no TLS handshake within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    const fail = (e: Error) => {
      clearTimeout(timer);
      socket.destroy();
      const code = String((e as { code?: unknown }).code ?? "");
      if (code === "ECONNREFUSED" || e instanceof Deno.errors.ConnectionRefused) {
        // Reported like a refused plain connection ("is the server running?").
        reject(new NothingListensError(options.host, options.port, { cause: e }));
      } else if (/CERT|SELF_SIGNED|HOSTNAME|ALTNAME|ERR_TLS/.test(code)) {
        reject(e);
      } else {
        reject(new TlsHandshakeError(options.host, options.port, e));
      }
    };
    socket.once("error", fail);
    socket.once("secureConnect", () => {
      clearTimeout(timer);
      socket.off("error", fail);
      resolve(socket);
    });
  });
}

const _HIGH_WATER = 1024 * 1024;

/** Adapts a `node:net`-style socket to {@linkcode Transport}, with backpressure both ways. */
export class NodeSocketTransport implements Transport {
  #socket: TLSSocket;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;
  #closed = false;

  constructor(socket: TLSSocket) {
    this.#socket = socket;
    socket.on("data", (b: Uint8Array) => {
      this.#chunks.push(new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
      this.#buffered += b.byteLength;
      if (this.#buffered > _HIGH_WATER) socket.pause();
      this.#notify();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#notify();
    });
    socket.on("error", (e: Error) => {
      this.#error = e;
      this.#notify();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#notify();
    });
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#error) throw this.#error;
      if (this.#ended || this.#closed) return null;
      await new Promise<void>((r) => (this.#wake = r));
    }
    let n = 0;
    while (n < p.byteLength && this.#chunks.length > 0) {
      const c = this.#chunks[0]!;
      const take = Math.min(c.byteLength, p.byteLength - n);
      p.set(c.subarray(0, take), n);
      n += take;
      if (take === c.byteLength) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(take);
    }
    this.#buffered -= n;
    if (this.#buffered <= _HIGH_WATER / 2 && this.#socket.isPaused()) this.#socket.resume();
    return n;
  }

  write(p: Uint8Array): Promise<number> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("transport closed"));
    if (this.#error) return Promise.reject(this.#error);
    // No copy: the socket calls back once it has handed `p` on (encrypted and
    // written), and only then may the caller reuse it.
    return new Promise((resolve, reject) => {
      this.#socket.write(p, (e?: Error | null) => (e ? reject(e) : resolve(p.byteLength)));
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.destroy();
    this.#notify();
  }
}
