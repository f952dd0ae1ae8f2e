/**
 * Counts failed logins per address and per (address, user) in a sliding
 * window, and refuses new attempts from a key that has too many.
 *
 * @module
 */
import { RequestError } from "./errors.ts";

/** Options for {@linkcode LoginRateLimiter}. */
export interface RateLimitOptions {
  /** Failures allowed per address and user within the window. Default 5. */
  perUser?: number;
  /** Failures allowed per address within the window. Default 30. */
  perAddress?: number;
  /** Window length in ms. Default 60 000. */
  windowMs?: number;
  /** Most keys tracked at once (memory bound). Default 10 000. */
  maxKeys?: number;
}

/** Login failure bookkeeping with bounded memory. */
export class LoginRateLimiter {
  #fails = new Map<string, number[]>();
  #o: Required<RateLimitOptions>;

  constructor(options: RateLimitOptions = {}) {
    this.#o = {
      perUser: options.perUser ?? 5,
      perAddress: options.perAddress ?? 30,
      windowMs: options.windowMs ?? 60_000,
      maxKeys: options.maxKeys ?? 10_000,
    };
  }

  /** Throws `rate_limited` when `host` (or `host` for `user`) failed too often. */
  admit(host: string, user: string): void {
    const now = Date.now();
    if (this.#count(`a:${host}`, now) >= this.#o.perAddress) {
      throw new RequestError(
        "rate_limited",
        "too many failed logins from your address; wait a minute",
      );
    }
    if (this.#count(`u:${host}:${user}`, now) >= this.#o.perUser) {
      throw new RequestError("rate_limited", `too many failed logins for ${user}; wait a minute`);
    }
  }

  /** Records a failed login. */
  fail(host: string, user: string | undefined): void {
    const now = Date.now();
    this.#add(`a:${host}`, now);
    if (user !== undefined) this.#add(`u:${host}:${user}`, now);
  }

  #count(key: string, now: number): number {
    const list = this.#fails.get(key);
    if (!list) return 0;
    while (list.length > 0 && list[0]! <= now - this.#o.windowMs) list.shift();
    if (list.length === 0) this.#fails.delete(key);
    return list.length;
  }

  #add(key: string, now: number): void {
    if (!this.#fails.has(key) && this.#fails.size >= this.#o.maxKeys) {
      const oldest = this.#fails.keys().next().value;
      if (oldest !== undefined) this.#fails.delete(oldest);
    }
    const list = this.#fails.get(key) ?? [];
    list.push(now);
    if (list.length > 1000) list.shift();
    this.#fails.set(key, list);
  }
}
