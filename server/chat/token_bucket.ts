/**
 * A token bucket: `rate` tokens per second refill up to `burst`; each
 * message takes one. Used for per-user flood control.
 *
 * @module
 */

/** One bucket. */
export class TokenBucket {
  #rate: number;
  #burst: number;
  #tokens: number;
  #last: number;

  constructor(rate: number, burst: number, now: number = Date.now()) {
    if (!(rate > 0) || !(burst >= 1)) throw new RangeError("rate must be > 0 and burst >= 1");
    this.#rate = rate;
    this.#burst = burst;
    this.#tokens = burst;
    this.#last = now;
  }

  /** Takes a token if one is available; returns whether it did. */
  take(now: number = Date.now()): boolean {
    this.#refill(now);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Milliseconds until the next token is available (0 if one is). */
  waitMs(now: number = Date.now()): number {
    this.#refill(now);
    return this.#tokens >= 1 ? 0 : Math.ceil(((1 - this.#tokens) / this.#rate) * 1000);
  }

  /** Whether the bucket is full (so it can be forgotten). */
  full(now: number = Date.now()): boolean {
    this.#refill(now);
    return this.#tokens >= this.#burst;
  }

  #refill(now: number): void {
    const dt = Math.max(0, now - this.#last) / 1000;
    this.#last = now;
    this.#tokens = Math.min(this.#burst, this.#tokens + dt * this.#rate);
  }
}
