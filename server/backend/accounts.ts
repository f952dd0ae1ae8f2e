/**
 * The accounts seam: names, rights and login secrets, shared by every node
 * and by `parley user` (a local admin tool that opens the embedded
 * implementation on the data dir).
 *
 * Implementations:
 * - embedded (`../embedded/user_store.ts`): `users.json` under the data dir,
 *   replaced atomically, changes by other processes seen through a
 *   file-system watch and a periodic check;
 * - NATS (CLUSTER.md §3.9): one KV bucket, key = user name; every node
 *   watches it into a local cache (which serves {@linkcode Accounts.peek});
 *   `add` is a KV `create` (refused when the key exists), rights and key
 *   changes are `update(rev)` retried on a stale revision.
 *
 * @module
 */
import type { Verifier } from "../../protocol/auth.ts";
import { USER_NAME } from "../../protocol/ops/chat.ts";

/** Rights an account may hold. Left undefined: unchanged (update) or false (add). */
export interface Rights {
  /** May moderate chat (kick, ban, mute). */
  admin?: boolean;
  /** May run remote commands when the server enables exec. */
  exec?: boolean;
}

/**
 * One account as features and the server see it. Holds no secret; safe to
 * log or print. Records are replaced, never modified: a new object means a
 * new state of the account.
 */
export interface Account {
  /** The user name ({@linkcode validUserName}). */
  readonly name: string;
  /** May moderate chat. */
  readonly admin: boolean;
  /** May run remote commands. */
  readonly exec: boolean;
  /** When the account was created (ISO 8601). */
  readonly created: string;
  /**
   * Names the account's current login secret without revealing it: it
   * changes exactly when the secret changes ({@linkcode Accounts.rotate}),
   * so a session can tell that the key it logged in with is no longer valid.
   */
  readonly keyId: string;
}

/** What a login proof is checked against: the verifier and the account it belongs to. */
export interface LoginVerifier {
  /** The account as it was when the verifier was read. */
  readonly account: Account;
  /** StoredKey and ServerKey (PROTOCOL.md §4.3); the key itself is never stored. */
  readonly verifier: Verifier;
}

/** One account changed: added, rights or key changed (`account` is the new record), or removed. */
export interface AccountChange {
  readonly name: string;
  /** The record now, or undefined when the account was removed. */
  readonly account: Account | undefined;
}

/**
 * The account store. Every implementation keeps these guarantees:
 *
 * - **Read your writes.** Once `add`, `setRights`, `rotate` or `remove`
 *   resolves, `get`, `peek`, `list` and `verifierFor` in the same process return
 *   the new state, and every subscriber has been told (before the call
 *   resolved).
 * - **Others' writes.** A change made by another process or node (e.g.
 *   `parley user` on the data dir, or another cluster node) reaches `peek`
 *   and the subscribers within 2000 ms; `get`, `list` and `verifierFor` see any
 *   change completed before they were called.
 * - **One change at a time per account.** A change is applied to the
 *   account as it stands when it is written (compare-and-set): concurrent
 *   changes, from any process, never silently undo one another; `add` of a
 *   name that exists is refused.
 * - **Errors.** Refusals are `RequestError`s (`../errors.ts`):
 *   `bad_request` for a name {@linkcode validUserName} rejects, `exists`
 *   when adding a taken name, `not_found` when changing or removing a
 *   missing account. Any other rejection is an I/O failure.
 * - **Secrets.** Only `add` and `rotate` return a key (once, for the
 *   operator to hand on); it is not stored. The store keeps a verifier
 *   (`verifierFor`, for the login handshake), which neither reveals the key
 *   nor lets anyone log in.
 */
export interface Accounts {
  /** The account named `name`, as it is now (sees every completed change). */
  get(name: string): Promise<Account | undefined>;

  /**
   * The account named `name` as this node last saw it, synchronously: for
   * checks that may not wait (admitting a login, revising live sessions on a
   * change). Lags a change from elsewhere by at most the bound above.
   */
  peek(name: string): Account | undefined;

  /** Every account, sorted by name. */
  list(): Promise<Account[]>;

  /**
   * Creates an account with `rights` (absent rights are false) and a new
   * random key. Resolves to the key, hex-encoded: the only time it is shown.
   */
  add(name: string, rights?: Rights): Promise<string>;

  /** Changes an account's rights; a right left undefined stays as it is. Resolves to the new record. */
  setRights(name: string, rights: Rights): Promise<Account>;

  /** Gives an account a new random key and resolves to it (hex); the old key stops working. */
  rotate(name: string): Promise<string>;

  /** Deletes an account. */
  remove(name: string): Promise<void>;

  /**
   * The verifier a login proof for `name` is checked against, with the
   * account it belongs to; undefined when there is no such account. Sees
   * every completed change. Only the handshake calls this.
   */
  verifierFor(name: string): Promise<LoginVerifier | undefined>;

  /**
   * Calls `listener` synchronously for each account that changed, whether
   * this process changed it or another one did, after `peek` returns the new
   * state. Changes made before subscribing are not replayed. A listener that
   * throws does not stop the others. Returns a function that unsubscribes.
   */
  subscribe(listener: (change: AccountChange) => void): () => void;
}

/** Checks a user name: 1–32 of `a-z 0-9 _ . -`, not starting with `.` or `-`. */
export function validUserName(name: string): boolean {
  return USER_NAME.test(name);
}
