/**
 * Rate limit for logging refused exec requests: a token bucket per user
 * (`perMinute` tokens, refilled evenly over a minute). A refusal that finds
 * no token is not logged but counted; the count rides on that user's next
 * logged entry (`suppressed`), and {@linkcode RefusalThrottle.drain} hands
 * out what is left at shutdown. Memory is bounded by `maxUsers`.
 *
 * @module
 */

/** Per-user token buckets for refusal logging. */
export class RefusalThrottle {
  readonly perMinute: number;
  readonly maxUsers: number;
  #buckets = new Map<string, { tokens: number; at: number; suppressed: number }>();
  #now: () => number;

  constructor(
    perMinute: number,
    options: { maxUsers?: number; now?: () => number } = {},
  ) {
    this.perMinute = perMinute;
    this.maxUsers = options.maxUsers ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Takes a token for one refusal by `user`. Returns null when it must not
   * be logged (counted instead), else the number of refusals suppressed
   * since the user's last logged one.
   */
  take(user: string): number | null {
    const now = this.#now();
    let b = this.#buckets.get(user);
    if (!b) {
      if (this.#buckets.size >= this.maxUsers) this.#evict(now);
      b = { tokens: this.perMinute, at: now, suppressed: 0 };
      this.#buckets.set(user, b);
    }
    b.tokens = Math.min(this.perMinute, b.tokens + ((now - b.at) * this.perMinute) / 60_000);
    b.at = now;
    if (b.tokens < 1) {
      b.suppressed++;
      return null;
    }
    b.tokens -= 1;
    const n = b.suppressed;
    b.suppressed = 0;
    return n;
  }

  /** Suppressed counts not yet reported, by user; resets them. */
  drain(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [user, b] of this.#buckets) {
      if (b.suppressed > 0) out.set(user, b.suppressed);
      b.suppressed = 0;
    }
    return out;
  }

  /** Drops full buckets with nothing to report (they equal a fresh one), else the oldest. */
  #evict(now: number): void {
    for (const [user, b] of this.#buckets) {
      const full = b.tokens + ((now - b.at) * this.perMinute) / 60_000 >= this.perMinute;
      if (full && b.suppressed === 0) this.#buckets.delete(user);
    }
    if (this.#buckets.size >= this.maxUsers) {
      const oldest = this.#buckets.keys().next().value;
      if (oldest !== undefined) this.#buckets.delete(oldest);
    }
  }
}
