/**
 * The stored form of an account, shared by every `Accounts` implementation:
 * what is kept (with the key), the public view handed out for it, and the
 * key id that lets the server notice a rotated key without seeing the key.
 *
 * @module
 */
import { createHash, randomBytes } from "node:crypto";
import { RequestError } from "../errors.ts";
import type { Account } from "./accounts.ts";

/** One account as stored. `key` is the hex-encoded 32-byte secret. */
export interface StoredAccount {
  name: string;
  key: string;
  admin: boolean;
  exec: boolean;
  created: string;
}

/** A stored record and the public view handed out for it (kept while the record is unchanged). */
export interface AccountEntry {
  stored: StoredAccount;
  account: Account;
}

/** The public, frozen view of a stored account: no key, only its id. */
export function publicAccount(u: StoredAccount): Account {
  return Object.freeze({
    name: u.name,
    admin: Boolean(u.admin),
    exec: Boolean(u.exec),
    created: u.created,
    keyId: keyIdOf(u.key),
  });
}

/** A short, one-way name for a key: changes with the key, reveals nothing of it. */
export function keyIdOf(hexKey: string): string {
  return createHash("sha256").update("parley key id\0").update(hexKey).digest("hex").slice(0, 16);
}

/** A fresh 256-bit key, hex-encoded. */
export function newAccountKey(): string {
  return randomBytes(32).toString("hex");
}

/** The error for a missing account. */
export function accountNotFound(name: string): RequestError {
  return new RequestError("not_found", `no user named ${name}`);
}
