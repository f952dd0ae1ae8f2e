/**
 * Handshake cryptography (PROTOCOL.md §4): proofs, session keys and the
 * per-frame MAC. Pure functions over bytes; no I/O.
 *
 * @example
 * ```ts
 * import { computeProof, verifyProof } from "./auth.ts";
 * const key = new Uint8Array(32), cn = new Uint8Array(32), sn = new Uint8Array(32).fill(1);
 * const proof = computeProof({ key, role: "client", version: 1, user: "ada", clientNonce: cn, serverNonce: sn });
 * if (!verifyProof(proof, { key, role: "client", version: 1, user: "ada", clientNonce: cn, serverNonce: sn })) {
 *   throw new Error("proof should verify");
 * }
 * ```
 *
 * @module
 */
import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto";
import { ProtocolError } from "./errors.ts";
import { MAC_LENGTH } from "./limits.ts";
import { HmacSha256 } from "./hmac_sha256.ts";

/** Frames up to this size are MACed in TypeScript (less fixed cost), longer ones natively. */
const _SMALL_FRAME = 640;

const _encoder = new TextEncoder();

/** Which side of the connection speaks. */
export type Role = "client" | "server";

/** Inputs bound into a handshake proof. */
export interface ProofInput {
  /** The user's 32-byte key. */
  key: Uint8Array;
  /** Who produces the proof. */
  role: Role;
  /** Protocol version agreed in the hello. */
  version: number;
  /** User name as sent in the hello. */
  user: string;
  /** The client's 32-byte nonce. */
  clientNonce: Uint8Array;
  /** The server's 32-byte nonce. */
  serverNonce: Uint8Array;
}

/** Role bytes: ASCII "C" for the client, "S" for the server. */
export const ROLE_BYTE: Record<Role, number> = { client: 0x43, server: 0x53 };

/**
 * The exact bytes a proof's HMAC covers:
 * `"parley-auth" 0x00 | u8 version | u8 role | u16be len(user) | user | cn | sn`.
 */
export function proofMessage(input: Omit<ProofInput, "key">): Uint8Array {
  const label = _encoder.encode("parley-auth\0");
  const user = _encoder.encode(input.user);
  if (user.byteLength > 0xffff) throw new RangeError("user name too long");
  const out = new Uint8Array(
    label.byteLength + 4 + user.byteLength + input.clientNonce.byteLength +
      input.serverNonce.byteLength,
  );
  let off = 0;
  out.set(label, off);
  off += label.byteLength;
  out[off++] = input.version & 0xff;
  out[off++] = ROLE_BYTE[input.role];
  out[off++] = user.byteLength >> 8;
  out[off++] = user.byteLength & 0xff;
  out.set(user, off);
  off += user.byteLength;
  out.set(input.clientNonce, off);
  off += input.clientNonce.byteLength;
  out.set(input.serverNonce, off);
  return out;
}

/** HMAC-SHA256(key, proofMessage(input)). */
export function computeProof(input: ProofInput): Uint8Array {
  return new Uint8Array(createHmac("sha256", input.key).update(proofMessage(input)).digest());
}

/** Checks a proof in constant time. */
export function verifyProof(proof: Uint8Array, input: ProofInput): boolean {
  const expected = computeProof(input);
  return proof.byteLength === expected.byteLength && timingSafeEqual(proof, expected);
}

/** Per-direction session keys. */
export interface SessionKeys {
  /** Key for frames the client sends. */
  clientToServer: Uint8Array;
  /** Key for frames the server sends. */
  serverToClient: Uint8Array;
}

/**
 * HKDF-SHA256 with ikm = user key, salt = cn | sn and
 * info = `"parley-c2s" 0x00 user` (or `"parley-s2c"`), 32 bytes each.
 */
export function deriveSessionKeys(
  key: Uint8Array,
  user: string,
  clientNonce: Uint8Array,
  serverNonce: Uint8Array,
): SessionKeys {
  const salt = new Uint8Array(clientNonce.byteLength + serverNonce.byteLength);
  salt.set(clientNonce, 0);
  salt.set(serverNonce, clientNonce.byteLength);
  const derive = (label: string) =>
    new Uint8Array(hkdfSync("sha256", key, salt, _encoder.encode(`${label}\0${user}`), 32));
  return { clientToServer: derive("parley-c2s"), serverToClient: derive("parley-s2c") };
}

/**
 * Computes frame MACs for one direction:
 * `HMAC-SHA256(k, u64be seq | u32be len(header) | header | body)`.
 * The sequence number starts at 0 and increases by one per frame.
 */
export class FrameMac {
  #key: Uint8Array;
  #small: HmacSha256;
  #seq = 0n;
  #seqBytes = new Uint8Array(12);
  #view = new DataView(this.#seqBytes.buffer);

  constructor(key: Uint8Array) {
    this.#key = key;
    this.#small = new HmacSha256(key);
  }

  /** Sequence number of the next frame. */
  get seq(): bigint {
    return this.#seq;
  }

  /** Returns the tag for the next frame and advances the sequence number. */
  next(headerBytes: Uint8Array, body: Uint8Array): Uint8Array {
    this.#view.setBigUint64(0, this.#seq);
    this.#view.setUint32(8, headerBytes.byteLength);
    this.#seq++;
    if (headerBytes.byteLength + body.byteLength <= _SMALL_FRAME) {
      return this.#small.digest([this.#seqBytes, headerBytes, body]);
    }
    const h = createHmac("sha256", this.#key).update(this.#seqBytes).update(headerBytes);
    if (body.byteLength > 0) h.update(body);
    return new Uint8Array(h.digest());
  }

  /** Verifies the tag of the next frame in constant time and advances. */
  verify(headerBytes: Uint8Array, body: Uint8Array, tag: Uint8Array | undefined): void {
    const expected = this.next(headerBytes, body);
    if (tag === undefined || tag.byteLength !== MAC_LENGTH || !timingSafeEqual(tag, expected)) {
      throw new ProtocolError("bad_mac", "frame authentication failed");
    }
  }
}
