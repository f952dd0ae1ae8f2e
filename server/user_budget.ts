/**
 * Per-user budgets shared by all of a user's connections, so that one
 * account, however many connections it opens, cannot take the server from
 * everyone else: requests in flight (per connection and per user; the excess
 * is answered `busy` at once) and receive credit, which bounds the stream
 * bytes the server may have to buffer for the user (docs/limits.md).
 *
 * @example
 * ```ts ignore
 * const budgets = new UserBudgets(config.limits);
 * const conn = budgets.open("ada");
 * const done = conn.admit(); // throws RequestError("busy") past a cap
 * try { await handle(); } finally { done(); }
 * conn.close();
 * ```
 *
 * @module
 */
import type { CreditPool } from "../protocol/session.ts";
import { RequestError } from "./errors.ts";

/**
 * Connection credit granted in the handshake, before the session draws on
 * its user's budget (64 KiB): a connection whose peer sends nothing holds
 * only this much.
 */
export const INITIAL_CONNECTION_CREDIT = 64 * 1024;

/** The limits a {@linkcode UserBudgets} enforces (keys of `limits` in config.json). */
export interface BudgetLimits {
  /** Most requests one connection may have waiting for their reply. */
  maxRequestsPerConnection: number;
  /** Most requests all of one user's connections may have waiting together. */
  maxRequestsPerUser: number;
  /** Most receive credit (bytes the server may have to buffer) for one user. */
  maxBufferedPerUser: number;
}

/** What one user's connections share. */
class _UserShare implements CreditPool {
  readonly name: string;
  #limit: number;
  /** Credit held by the user's sessions; above `#limit` only through {@linkcode charge}. */
  held = 0;
  requests = 0;
  connections = 0;

  constructor(name: string, limit: number) {
    this.name = name;
    this.#limit = limit;
  }

  take(n: number): number {
    const got = Math.max(0, Math.min(n, this.#limit - this.held));
    this.held += got;
    return got;
  }

  charge(n: number): void {
    this.held += n;
  }

  give(n: number): void {
    this.held = Math.max(0, this.held - n);
  }

  fairShare(): number {
    return Math.floor(this.#limit / Math.max(1, this.connections));
  }
}

/** One connection's view of its user's budget. Close it when the connection ends. */
export class ConnectionBudget {
  #share: _UserShare;
  #limits: BudgetLimits;
  #settle: () => void;
  #requests = 0;
  #closed = false;

  /** @internal created by {@linkcode UserBudgets.open}. */
  constructor(share: _UserShare, limits: BudgetLimits, settle: () => void) {
    this.#share = share;
    this.#limits = limits;
    this.#settle = settle;
  }

  /** The user's receive-credit pool, for the session's `creditPool` option. */
  get credit(): CreditPool {
    return this.#share;
  }

  /** Requests of this connection waiting for their reply. */
  get requests(): number {
    return this.#requests;
  }

  /**
   * Counts one request in flight; returns the function that ends it (call it
   * once, when the reply is decided). Throws `busy` when the connection or
   * the user is at its cap.
   */
  admit(): () => void {
    const { maxRequestsPerConnection: perConn, maxRequestsPerUser: perUser } = this.#limits;
    if (this.#requests >= perConn) {
      throw new RequestError(
        "busy",
        `too many requests in flight on this connection (limit ${perConn}); wait for replies`,
      );
    }
    if (this.#share.requests >= perUser) {
      throw new RequestError(
        "busy",
        `too many requests in flight for user ${this.#share.name} across connections (limit ${perUser}); wait for replies`,
      );
    }
    this.#requests++;
    this.#share.requests++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#requests--;
      this.#share.requests--;
      this.#settle();
    };
  }

  /**
   * Leaves the user's share. Idempotent. Requests of this connection still
   * running keep counting for the user until they end, so reconnecting does
   * not reset the user's count.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#share.connections--;
    this.#settle();
  }
}

/** Budgets of every user with a live connection. */
export class UserBudgets {
  #limits: BudgetLimits;
  #users = new Map<string, _UserShare>();

  constructor(limits: BudgetLimits) {
    this.#limits = limits;
  }

  /** Receive credit all connections of `user` hold now (0 when none is open). */
  heldBy(user: string): number {
    return this.#users.get(user)?.held ?? 0;
  }

  /** Requests all connections of `user` have in flight. */
  requestsOf(user: string): number {
    return this.#users.get(user)?.requests ?? 0;
  }

  /**
   * A connection of `user` starts. The user's share lives while a connection
   * or a request of the user is alive.
   */
  open(user: string): ConnectionBudget {
    let share = this.#users.get(user);
    if (!share) {
      this.#users.set(user, share = new _UserShare(user, this.#limits.maxBufferedPerUser));
    }
    share.connections++;
    const s = share;
    return new ConnectionBudget(s, this.#limits, () => {
      if (s.connections === 0 && s.requests === 0 && this.#users.get(user) === s) {
        this.#users.delete(user);
      }
    });
  }
}
