/**
 * The mutual challenge-response handshake (PROTOCOL.md §4), run over any
 * {@linkcode Transport}. Each side ends up with an {@linkcode AuthenticatedLink}
 * from which a {@linkcode Session} is built.
 *
 * @example
 * ```ts ignore
 * const link = await clientHandshake(conn, { user: "ada", key, channelBinding: certHash });
 * const session = new Session({ ...link, onEvent: console.log });
 * ```
 *
 * @module
 */
import { decodeHex, encodeHex } from "@std/encoding/hex";
import { randomBytes } from "node:crypto";
import {
  type AuthInput,
  clientKeyOf,
  clientProof,
  deriveSessionKeys,
  FrameMac,
  NO_CHANNEL_BINDING,
  serverSignature,
  type Verifier,
  verifierOf,
  verifyClientProof,
  verifyServerSignature,
} from "./auth.ts";
import { encodeFrame, type OutHeader, type RawHeader } from "./frame_codec.ts";
import { ProtocolError, RemoteError } from "./errors.ts";
import {
  DEFAULT_CONNECTION_WINDOW,
  DEFAULT_MAX_BODY,
  DEFAULT_MAX_STREAMS,
  DEFAULT_STREAM_WINDOW,
  KEY_LENGTH,
  MAC_LENGTH,
  MAX_BODY_CEILING,
  NONCE_LENGTH,
  PROTOCOL_VERSION,
} from "./limits.ts";
import { type HandshakeHeader, validateHandshake, type WelcomeHeader } from "./messages.ts";
import { FrameReader, type Transport, writeAll } from "./transport.ts";
import type { SessionOptions, Windows } from "./session.ts";

/** Everything a {@linkcode Session} needs from a completed handshake. */
export type AuthenticatedLink =
  & Pick<
    SessionOptions,
    | "role"
    | "transport"
    | "reader"
    | "sendMac"
    | "recvMac"
    | "maxBody"
    | "localWindow"
    | "peerWindow"
    | "maxStreams"
    | "batch"
    | "digest"
  >
  & {
    user: string;
    /** Whether the proofs were bound to a TLS certificate (and the frame MAC is off). */
    channelBound: boolean;
  };

/** Options for {@linkcode clientHandshake}. */
export interface ClientHandshakeOptions {
  /** User name. */
  user: string;
  /** The user's 32-byte key. */
  key: Uint8Array;
  /** Deadline for the whole handshake in ms. Default 10 000. */
  timeoutMs?: number;
  /** Largest body we accept. Default 1 MiB. */
  maxBody?: number;
  /** Windows we grant. Defaults: 4 MiB per stream, 16 MiB per connection. */
  window?: Windows;
  /** Fixed nonce, for test vectors only. */
  nonce?: Uint8Array;
  /** Offer batch frames (PROTOCOL.md §5.5). Default true. */
  batch?: boolean;
  /** Offer the `digest` feature (PROTOCOL.md §4.7). Default true. */
  digest?: boolean;
  /**
   * SHA-256 of the server certificate's DER bytes as the client received it
   * over TLS; absent on a plaintext connection. It is bound into both proofs,
   * and the frame MAC is off exactly when it is given.
   */
  channelBinding?: Uint8Array;
}

/** Options for {@linkcode serverHandshake}. */
export interface ServerHandshakeOptions {
  /** Looks up a user's verifier; undefined for an unknown user. */
  verifierFor: (user: string) => Verifier | undefined | Promise<Verifier | undefined>;
  /** Called with the user name before the proof is checked; may throw (e.g. rate limiting). */
  admit?: (user: string) => void;
  /** Deadline for the whole handshake in ms. Default 10 000. */
  timeoutMs?: number;
  /** Largest body we accept. Default 1 MiB. */
  maxBody?: number;
  /** Windows we grant. */
  window?: Windows;
  /** Cap on streams the client may open at once. Default 256. */
  maxStreams?: number;
  /** Fixed nonce, for test vectors only. */
  nonce?: Uint8Array;
  /** Agree to batch frames when the client offers them (PROTOCOL.md §5.5). Default true. */
  batch?: boolean;
  /** Agree to the `digest` feature when offered, on plaintext (PROTOCOL.md §4.7). Default true. */
  digest?: boolean;
  /**
   * SHA-256 of the DER bytes of the certificate this server presents over
   * TLS; absent on a plaintext listener. Bound into both proofs; the frame MAC
   * is off exactly when it is given.
   */
  channelBinding?: Uint8Array;
}

async function _withDeadline<T>(transport: Transport, ms: number, work: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new ProtocolError("timeout", `handshake not completed within ${ms} ms`));
      try {
        transport.close();
      } catch {
        // already closed
      }
    }, ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

async function _expect(reader: FrameReader, want: string): Promise<HandshakeHeader> {
  const frame = await reader.next();
  if (frame === null) throw new ProtocolError("closed", "connection closed during the handshake");
  const h = validateHandshake(frame.header as RawHeader, NONCE_LENGTH);
  if (h.t === "error") throw new RemoteError(h.code, h.msg);
  if (h.t !== want || frame.body.byteLength > 0) {
    throw new ProtocolError("bad_header", `expected a ${want} frame, got ${h.t}`);
  }
  return h;
}

async function _sendError(transport: Transport, e: unknown): Promise<void> {
  if (!(e instanceof ProtocolError) || e.code === "closed" || e.code === "timeout") return;
  try {
    await writeAll(transport, encodeFrame({ t: "error", code: e.code, msg: e.message }));
  } catch {
    // the peer is gone; the caller closes the transport
  }
}

/** Runs the client side of the handshake. Throws on failure (transport left open). */
export function clientHandshake(
  transport: Transport,
  options: ClientHandshakeOptions,
): Promise<AuthenticatedLink> {
  if (options.key.byteLength !== KEY_LENGTH) throw new RangeError("key must be 32 bytes");
  const maxBody = Math.min(options.maxBody ?? DEFAULT_MAX_BODY, MAX_BODY_CEILING);
  const window = options.window ?? { s: DEFAULT_STREAM_WINDOW, c: DEFAULT_CONNECTION_WINDOW };
  const reader = new FrameReader(transport, { maxBody });
  const run = async (): Promise<AuthenticatedLink> => {
    const cn = options.nonce ?? new Uint8Array(randomBytes(NONCE_LENGTH));
    const offerBatch = options.batch ?? true;
    const offerDigest = options.digest ?? true;
    const hello: OutHeader = {
      t: "hello",
      v: PROTOCOL_VERSION,
      user: options.user,
      nonce: encodeHex(cn),
      maxBody,
      win: window,
      ...(offerBatch ? { batch: true } : {}),
      ...(offerDigest ? { digest: true } : {}),
    };
    await writeAll(transport, encodeFrame(hello));
    const ch = await _expect(reader, "challenge") as { nonce: string };
    const sn = decodeHex(ch.nonce);
    const tls = options.channelBinding !== undefined;
    const input: AuthInput = {
      version: PROTOCOL_VERSION,
      user: options.user,
      clientNonce: cn,
      serverNonce: sn,
      channelBinding: options.channelBinding ?? NO_CHANNEL_BINDING,
    };
    const proof = clientProof(options.key, input);
    await writeAll(transport, encodeFrame({ t: "auth", proof: encodeHex(proof) }));
    const w = await _expect(reader, "welcome") as WelcomeHeader;
    if (!verifyServerSignature(decodeHex(w.proof), options.key, input)) {
      throw new ProtocolError("auth_failed", "the server could not prove it knows your key");
    }
    if (w.batch === true && !offerBatch) {
      throw new ProtocolError("bad_header", "the server turned on batch frames nobody offered");
    }
    if (w.digest === true && (!offerDigest || tls)) {
      throw new ProtocolError(
        "bad_header",
        "the server turned on the digest feature nobody offered",
      );
    }
    if (w.maxBody > maxBody || w.maxBody < 1024) {
      throw new ProtocolError("bad_header", `server chose an unusable body limit ${w.maxBody}`);
    }
    // The MAC is on exactly when the proofs are not bound to a certificate.
    if (w.mac === tls) {
      throw tls
        ? new ProtocolError("bad_header", "the server asked for frame MACs on a TLS connection")
        : new ProtocolError(
          "auth_failed",
          "the server turned frame authentication off on a plaintext connection",
        );
    }
    reader.decoder.maxBody = w.maxBody;
    const link: AuthenticatedLink = {
      role: "client",
      user: options.user,
      channelBound: tls,
      transport,
      reader,
      sendMac: undefined,
      recvMac: undefined,
      maxBody: w.maxBody,
      localWindow: window,
      peerWindow: w.win,
      maxStreams: w.maxStreams,
      batch: w.batch === true,
      digest: w.digest === true,
    };
    if (!tls) {
      const keys = deriveSessionKeys(clientKeyOf(options.key), options.user, cn, sn);
      reader.decoder.tagLength = MAC_LENGTH;
      link.sendMac = new FrameMac(keys.clientToServer);
      link.recvMac = new FrameMac(keys.serverToClient);
    }
    return link;
  };
  return _withDeadline(transport, options.timeoutMs ?? 10_000, run());
}

/** Runs the server side. On failure it sends an `error` frame and throws. */
export function serverHandshake(
  transport: Transport,
  options: ServerHandshakeOptions,
): Promise<AuthenticatedLink> {
  const ourMaxBody = Math.min(options.maxBody ?? DEFAULT_MAX_BODY, MAX_BODY_CEILING);
  const window = options.window ?? { s: DEFAULT_STREAM_WINDOW, c: DEFAULT_CONNECTION_WINDOW };
  const maxStreams = options.maxStreams ?? DEFAULT_MAX_STREAMS;
  const reader = new FrameReader(transport, { maxBody: 0 });
  const run = async (): Promise<AuthenticatedLink> => {
    // validateHandshake has already refused any version other than ours.
    const hello = await _expect(reader, "hello") as {
      user: string;
      nonce: string;
      maxBody?: number;
      win?: Windows;
      batch?: boolean;
      digest?: boolean;
    };
    options.admit?.(hello.user);
    const cn = decodeHex(hello.nonce);
    const sn = options.nonce ?? new Uint8Array(randomBytes(NONCE_LENGTH));
    await writeAll(
      transport,
      encodeFrame({ t: "challenge", v: PROTOCOL_VERSION, nonce: encodeHex(sn) }),
    );
    const auth = await _expect(reader, "auth") as { proof: string };
    // An unknown user is checked against a random verifier, so both failures look alike.
    const verifier = (await options.verifierFor(hello.user)) ??
      verifierOf(new Uint8Array(randomBytes(KEY_LENGTH)));
    const tls = options.channelBinding !== undefined;
    const input: AuthInput = {
      version: PROTOCOL_VERSION,
      user: hello.user,
      clientNonce: cn,
      serverNonce: sn,
      channelBinding: options.channelBinding ?? NO_CHANNEL_BINDING,
    };
    const clientKey = verifyClientProof(decodeHex(auth.proof), verifier, input);
    if (clientKey === undefined) {
      throw new ProtocolError("auth_failed", "authentication failed: unknown user or wrong key");
    }
    const maxBody = Math.max(1024, Math.min(ourMaxBody, hello.maxBody ?? DEFAULT_MAX_BODY));
    const peerWindow = hello.win ?? { s: DEFAULT_STREAM_WINDOW, c: DEFAULT_CONNECTION_WINDOW };
    const batch = hello.batch === true && (options.batch ?? true);
    // Only where frames carry a MAC: over TLS there is no tag to change (§4.7).
    const digest = hello.digest === true && !tls && (options.digest ?? true);
    const welcome: WelcomeHeader & OutHeader = {
      t: "welcome",
      proof: encodeHex(serverSignature(verifier.serverKey, input)),
      maxBody,
      win: window,
      maxStreams,
      mac: !tls,
      ...(batch ? { batch: true } : {}),
      ...(digest ? { digest: true } : {}),
    };
    await writeAll(transport, encodeFrame(welcome));
    reader.decoder.maxBody = maxBody;
    const link: AuthenticatedLink = {
      role: "server",
      user: hello.user,
      channelBound: tls,
      transport,
      reader,
      sendMac: undefined,
      recvMac: undefined,
      maxBody,
      localWindow: window,
      peerWindow,
      maxStreams,
      batch,
      digest,
    };
    if (!tls) {
      // The proof carried ClientKey: the session keys need no stored key.
      const keys = deriveSessionKeys(clientKey, hello.user, cn, sn);
      reader.decoder.tagLength = MAC_LENGTH;
      link.sendMac = new FrameMac(keys.serverToClient);
      link.recvMac = new FrameMac(keys.clientToServer);
    }
    return link;
  };
  return _withDeadline(
    transport,
    options.timeoutMs ?? 10_000,
    run().catch(async (e) => {
      await _sendError(transport, e);
      throw e;
    }),
  );
}
