/**
 * Login rate limiting per address and per (address, user) in a sliding
 * window. An attempt counts from the moment it is admitted, before its proof
 * is checked, so attempts in flight count as much as failed ones: parallel
 * guesses cannot all be evaluated against the same count. A successful
 * attempt (or one that ended before its proof was checked) is released; a
 * failed one stays counted for the window.
 *
 * @module
 */
import { RequestError } from "./errors.ts";

/** Options for {@linkcode LoginRateLimiter}. */
export interface RateLimitOptions {
  /** Attempts in flight plus failures allowed per address and user within the window. Default 5. */
  perUser?: number;
  /** Attempts in flight plus failures allowed per address within the window. Default 30. */
  perAddress?: number;
  /** Window length in ms. Default 60 000. */
  windowMs?: number;
  /** Most keys tracked at once (memory bound). Default 10 000. */
  maxKeys?: number;
}

/** An admitted login attempt (opaque); hand it to {@linkcode LoginRateLimiter.release} on success. */
export interface LoginAttempt {
  keys: string[];
  at: number;
}

/** Login attempt bookkeeping with bounded memory. */
export class LoginRateLimiter {
  #marks = new Map<string, number[]>();
  #o: Required<RateLimitOptions>;

  constructor(options: RateLimitOptions = {}) {
    this.#o = {
      perUser: options.perUser ?? 5,
      perAddress: options.perAddress ?? 30,
      windowMs: options.windowMs ?? 60_000,
      maxKeys: options.maxKeys ?? 10_000,
    };
  }

  /**
   * Admits one attempt by `user` from `host` and counts it at once; throws
   * `rate_limited` when the address, or the user from this address, has
   * used up its attempts (in flight or failed) for the window.
   */
  admit(host: string, user: string): LoginAttempt {
    const now = Date.now();
    const byAddress = `a:${host}`;
    const byUser = `u:${host}:${user}`;
    if (this.#count(byAddress, now) >= this.#o.perAddress) {
      throw new RequestError(
        "rate_limited",
        "too many failed or unfinished logins from your address; wait a minute",
      );
    }
    if (this.#count(byUser, now) >= this.#o.perUser) {
      throw new RequestError(
        "rate_limited",
        `too many failed or unfinished logins for ${user}; wait a minute`,
      );
    }
    this.#add(byAddress, now);
    this.#add(byUser, now);
    return { keys: [byAddress, byUser], at: now };
  }

  /**
   * Uncounts an attempt that succeeded or ended before its proof was
   * checked. A failed attempt is simply not released: it stays counted
   * until the window passes. Releasing twice is harmless.
   */
  release(attempt: LoginAttempt): void {
    for (const key of attempt.keys) {
      const list = this.#marks.get(key);
      if (!list) continue;
      const i = list.indexOf(attempt.at);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.#marks.delete(key);
    }
    attempt.keys = [];
  }

  #count(key: string, now: number): number {
    const list = this.#marks.get(key);
    if (!list) return 0;
    while (list.length > 0 && list[0]! <= now - this.#o.windowMs) list.shift();
    if (list.length === 0) this.#marks.delete(key);
    return list.length;
  }

  #add(key: string, now: number): void {
    if (!this.#marks.has(key) && this.#marks.size >= this.#o.maxKeys) {
      const oldest = this.#marks.keys().next().value;
      if (oldest !== undefined) this.#marks.delete(oldest);
    }
    const list = this.#marks.get(key) ?? [];
    list.push(now);
    if (list.length > 1000) list.shift();
    this.#marks.set(key, list);
  }
}
