/**
 * The stored form of an account, shared by every `Accounts` implementation:
 * what is kept (a verifier, never the key), the public view handed out for
 * it, the key id that lets the server notice a rotated key, and the reading
 * of records written before verifiers (which held the key itself).
 *
 * @module
 */
import { decodeHex, encodeHex } from "@std/encoding/hex";
import { createHash, randomBytes } from "node:crypto";
import { type Verifier, verifierOf } from "../../protocol/auth.ts";
import { RequestError } from "../errors.ts";
import { type Account, validUserName } from "./accounts.ts";

/**
 * One account as stored. `storedKey` and `serverKey` are the hex-encoded
 * verifier (PROTOCOL.md §4.3): neither reveals the key nor logs anyone in.
 */
export interface StoredAccount {
  name: string;
  storedKey: string;
  serverKey: string;
  admin: boolean;
  exec: boolean;
  created: string;
}

/** A stored record and the public view handed out for it (kept while the record is unchanged). */
export interface AccountEntry {
  stored: StoredAccount;
  account: Account;
}

/** The public, frozen view of a stored account: no secret, only the key's id. */
export function publicAccount(u: StoredAccount): Account {
  return Object.freeze({
    name: u.name,
    admin: Boolean(u.admin),
    exec: Boolean(u.exec),
    created: u.created,
    keyId: keyIdOf(u.storedKey),
  });
}

/** A short, one-way name for a key (from its stored key): changes with the key, reveals nothing. */
export function keyIdOf(storedKeyHex: string): string {
  return createHash("sha256").update("parley key id\0").update(storedKeyHex).digest("hex")
    .slice(0, 16);
}

/** The hex-encoded verifier of a hex-encoded key. */
export function storedVerifier(hexKey: string): { storedKey: string; serverKey: string } {
  const v = verifierOf(decodeHex(hexKey));
  return { storedKey: encodeHex(v.storedKey), serverKey: encodeHex(v.serverKey) };
}

/** The verifier a login proof is checked against. */
export function verifierOfStored(u: StoredAccount): Verifier {
  return { storedKey: decodeHex(u.storedKey), serverKey: decodeHex(u.serverKey) };
}

/** A fresh 256-bit key, hex-encoded, with its verifier. */
export function newAccountKey(): { key: string; storedKey: string; serverKey: string } {
  const key = randomBytes(32).toString("hex");
  return { key, ...storedVerifier(key) };
}

const _HEX64 = /^[0-9a-f]{64}$/;

/**
 * Reads a stored record, current or from before verifiers (`{key}`: the key
 * itself, which is replaced by its verifier here). `legacy` tells the caller
 * to write the record back. Throws a TypeError for anything else.
 */
export function readStoredAccount(v: unknown): { stored: StoredAccount; legacy: boolean } {
  const u = v as Record<string, unknown> | null;
  if (
    !u || typeof u !== "object" || typeof u.name !== "string" || !validUserName(u.name) ||
    typeof u.created !== "string"
  ) {
    throw new TypeError("not an account record");
  }
  let verifier: { storedKey: string; serverKey: string };
  let legacy = false;
  if (typeof u.storedKey === "string" && typeof u.serverKey === "string") {
    if (!_HEX64.test(u.storedKey) || !_HEX64.test(u.serverKey)) {
      throw new TypeError("not an account record");
    }
    verifier = { storedKey: u.storedKey, serverKey: u.serverKey };
  } else if (typeof u.key === "string" && _HEX64.test(u.key)) {
    verifier = storedVerifier(u.key);
    legacy = true;
  } else {
    throw new TypeError("not an account record");
  }
  return {
    stored: {
      name: u.name,
      ...verifier,
      admin: u.admin === true,
      exec: u.exec === true,
      created: u.created,
    },
    legacy,
  };
}

/** The notice logged once when a data dir's keys are replaced by verifiers. */
export function migrationNotice(count: number): string {
  return `replaced the stored keys of ${count} account(s) with verifiers; the keys themselves ` +
    "are no longer kept and still log in";
}

/** The error for a missing account. */
export function accountNotFound(name: string): RequestError {
  return new RequestError("not_found", `no user named ${name}`);
}
