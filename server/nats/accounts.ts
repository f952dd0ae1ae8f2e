/**
 * The NATS {@linkcode Accounts} (CLUSTER.md §3.9): one KV bucket,
 * `parley_users`, one key per user (the name as one key token, see
 * {@linkcode encodeKeyToken}), value
 * `{name, storedKey, serverKey, admin, exec, created}`: the key's verifier
 * (PROTOCOL.md §4.3), never the key. Records from before verifiers (`key`)
 * are read as verifiers and rewritten when the bucket is opened. Every node watches the bucket
 * into a local copy, which serves {@linkcode Accounts.peek} and tells the
 * subscribers; a change made on another node reaches them within the
 * watch's delivery time (milliseconds here; the interface allows 2000 ms).
 * `add` is a KV create (refused when the key exists), rights and key changes
 * are updates on the revision read, retried when another node changed the
 * account first. `get` and `verifierFor` read from the stream's leader;
 * `list` waits until the copy holds every change stored before it.
 *
 * **The bucket holds every user's verifier.** Reading it does not let
 * anyone log in, but together with a recorded plaintext login it would, and
 * it lets a reader pose as the server to clients; anyone who can publish
 * there can create accounts: NATS must be authenticated, with a NATS account used by Parley only, and TLS when the
 * NATS servers are not on the same host (CLUSTER.md §6.13).
 *
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import {
  type AccountChange,
  type Accounts,
  type LoginVerifier,
  type Rights,
  validUserName,
} from "../backend/accounts.ts";
import { RequestError } from "../errors.ts";
import {
  type AccountEntry,
  accountNotFound,
  migrationNotice,
  newAccountKey,
  publicAccount,
  readStoredAccount,
  type StoredAccount,
  verifierOfStored,
} from "../backend/account_record.ts";
import type { Logger } from "../log.ts";
import { KvMirror } from "./kv_mirror.ts";
import { withNats } from "./connection.ts";
import { decodeKeyToken, encodeKeyToken, openRecordBucket } from "./kv_watch.ts";

/** The accounts bucket. */
export const USERS_BUCKET = "parley_users";

/** Options of {@linkcode openNatsAccounts}. */
export interface NatsAccountsOptions {
  /** This node's name (for log lines). */
  node: string;
  /** Replicas of the bucket when this call creates it: 1 for one server, 3 for a cluster. Default 1. */
  replicas?: number;
  /** Bucket name (tests use their own). Default {@linkcode USERS_BUCKET}. */
  bucket?: string;
  /** Where watch troubles and unreadable records are reported. */
  log?: Logger;
}

/** The NATS accounts, plus `close` (stops the watch; the connection stays open). */
export type NatsAccounts = Accounts & AsyncDisposable & { close(): Promise<void> };

/**
 * Opens (creating when absent: file storage, history 1) the accounts bucket
 * and loads it into the local copy before resolving.
 */
export async function openNatsAccounts(
  nc: NatsConnection,
  options: NatsAccountsOptions,
): Promise<NatsAccounts> {
  const bucket = options.bucket ?? USERS_BUCKET;
  const js = jetstream(nc);
  const kv = await openRecordBucket(js, bucket, options.replicas);
  const listeners = new Set<(change: AccountChange) => void>();
  /** Accounts whose record still holds a key (from before verifiers). */
  const legacyNames = new Set<string>();
  const mirror = await KvMirror.open<AccountEntry>(js, kv, bucket, {
    decode: (key, v) => {
      const { stored, legacy } = readStoredAccount(v);
      if (legacy) legacyNames.add(decodeKeyToken(key));
      return { stored, account: publicAccount(stored) };
    },
    encode: (e) => e.stored,
    onChange: (key, _before, after) => {
      const change = { name: decodeKeyToken(key), account: after?.account };
      for (const listener of [...listeners]) {
        try {
          listener(change);
        } catch {
          // A listener's failure is its own; the copy is already consistent.
        }
      }
    },
    onError: (e) => options.log?.warn("accounts bucket", { node: options.node, error: e.message }),
  });

  const change = async (
    name: string,
    fn: (u: StoredAccount) => StoredAccount,
  ): Promise<AccountEntry> => {
    const out = await withNats("accounts", () =>
      mirror.change(encodeKeyToken(name), (cur) => {
        if (!cur) throw accountNotFound(name);
        const stored = fn(cur.stored);
        return { stored, account: publicAccount(stored) };
      }));
    if (!out) throw accountNotFound(name);
    return out;
  };

  // Records from before verifiers are rewritten once (the decoded copy
  // already holds their verifier, so logins work before and after).
  let migrated = 0;
  for (const name of [...legacyNames]) {
    legacyNames.delete(name);
    try {
      await change(name, (u) => ({ ...u }));
      migrated++;
    } catch (e) {
      options.log?.warn("could not rewrite an account record", {
        node: options.node,
        user: name,
        error: (e as Error).message,
      });
    }
  }
  if (migrated > 0) options.log?.info(migrationNotice(migrated), { node: options.node });

  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    listeners.clear();
    await mirror.close();
  };

  return {
    async get(name) {
      if (!validUserName(name)) return undefined;
      return (await withNats("accounts", () => mirror.read(encodeKeyToken(name))))?.value?.account;
    },
    peek(name) {
      return mirror.get(encodeKeyToken(name))?.value?.account;
    },
    async list() {
      await withNats("accounts", () => mirror.sync());
      return [...mirror.values()].map(([, e]) => e.account)
        .sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    },
    async add(name, rights: Rights = {}) {
      if (!validUserName(name)) {
        throw new RequestError(
          "bad_request",
          `invalid user name ${JSON.stringify(name)}: use 1-32 of a-z 0-9 _ . - (lower case)`,
        );
      }
      const { key, storedKey, serverKey } = newAccountKey();
      const stored: StoredAccount = {
        name,
        storedKey,
        serverKey,
        admin: rights.admin ?? false,
        exec: rights.exec ?? false,
        created: new Date().toISOString(),
      };
      await withNats("accounts", () =>
        mirror.change(encodeKeyToken(name), (cur) => {
          if (cur) throw new RequestError("exists", `user ${name} already exists`);
          return { stored, account: publicAccount(stored) };
        }));
      return key;
    },
    async setRights(name, rights) {
      if (!validUserName(name)) throw accountNotFound(name);
      const e = await change(name, (u) => ({
        ...u,
        admin: rights.admin ?? u.admin,
        exec: rights.exec ?? u.exec,
      }));
      return e.account;
    },
    async rotate(name) {
      if (!validUserName(name)) throw accountNotFound(name);
      const { key, storedKey, serverKey } = newAccountKey();
      await change(name, (u) => ({ ...u, storedKey, serverKey }));
      return key;
    },
    async remove(name) {
      if (!validUserName(name)) throw accountNotFound(name);
      await withNats("accounts", () =>
        mirror.change(encodeKeyToken(name), (cur) => {
          if (!cur) throw accountNotFound(name);
          return undefined;
        }));
    },
    async verifierFor(name): Promise<LoginVerifier | undefined> {
      if (!validUserName(name)) return undefined;
      const e = (await withNats("logging in", () => mirror.read(encodeKeyToken(name))))?.value;
      return e ? { account: e.account, verifier: verifierOfStored(e.stored) } : undefined;
    },
    subscribe(listener) {
      const l = (c: AccountChange): void => listener(c);
      listeners.add(l);
      return () => void listeners.delete(l);
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
