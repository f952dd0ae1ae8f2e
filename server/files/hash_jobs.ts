/**
 * Caps the work of reading whole files to hash them (`file.stat --sha256`,
 * `file.ls --sha256`, `file.share`, checking a shared file before serving it,
 * the resumed prefix of an upload or download): at most `perUser` jobs of one
 * user and `total` jobs server-wide run at once; up to `queuePerUser` more of
 * one user wait their turn in order, and anything beyond that is refused at
 * once with `busy`. A job reads its file in fixed 256 KiB chunks, so memory
 * stays at `total` buffers whatever the clients send.
 *
 * @module
 */
import { RequestError } from "../errors.ts";

/** Limits for {@linkcode HashJobs}. */
export interface HashJobLimits {
  /** Jobs of one user running at once. */
  perUser: number;
  /** Jobs running at once server-wide. */
  total: number;
  /** Jobs of one user waiting for a slot. */
  queuePerUser: number;
}

interface _Waiter {
  user: string;
  start: () => void;
}

/** A fair, bounded gate for hashing work. */
export class HashJobs {
  #limits: HashJobLimits;
  #running = new Map<string, number>();
  #waiting = new Map<string, number>();
  #queue: _Waiter[] = [];
  #total = 0;

  constructor(limits: HashJobLimits) {
    this.#limits = limits;
  }

  /** Jobs running now (all users). */
  get running(): number {
    return this.#total;
  }

  /** Runs `fn` once a slot is free; `busy` when the user already has too many jobs waiting. */
  async run<T>(user: string, fn: () => Promise<T>): Promise<T> {
    if (!this.#canStart(user)) {
      const waiting = this.#waiting.get(user) ?? 0;
      if (waiting >= this.#limits.queuePerUser) {
        throw new RequestError(
          "busy",
          `too many checksums requested at once (at most ${this.#limits.perUser} run and ${this.#limits.queuePerUser} wait per user); retry later`,
        );
      }
      this.#waiting.set(user, waiting + 1);
      await new Promise<void>((start) => this.#queue.push({ user, start }));
    } else {
      this.#take(user);
    }
    try {
      return await fn();
    } finally {
      this.#release(user);
    }
  }

  #canStart(user: string): boolean {
    return this.#total < this.#limits.total &&
      (this.#running.get(user) ?? 0) < this.#limits.perUser;
  }

  #take(user: string): void {
    this.#total++;
    this.#running.set(user, (this.#running.get(user) ?? 0) + 1);
  }

  #release(user: string): void {
    this.#total--;
    const n = (this.#running.get(user) ?? 1) - 1;
    if (n <= 0) this.#running.delete(user);
    else this.#running.set(user, n);
    // Start the oldest waiter whose user is under its own cap.
    for (let i = 0; i < this.#queue.length && this.#total < this.#limits.total; i++) {
      const w = this.#queue[i]!;
      if (!this.#canStart(w.user)) continue;
      this.#queue.splice(i, 1);
      i--;
      const left = (this.#waiting.get(w.user) ?? 1) - 1;
      if (left <= 0) this.#waiting.delete(w.user);
      else this.#waiting.set(w.user, left);
      this.#take(w.user);
      w.start();
    }
  }
}
