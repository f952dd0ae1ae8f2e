/**
 * Message ids: one increasing counter for the whole server. The counter's
 * high-water mark is reserved on disk in blocks before ids from a block are
 * handed out, so ids are never reused after a crash or restart, even if the
 * messages that carried them were never written.
 *
 * @module
 */

const _BLOCK = 10_000;

/**
 * The id counter. `next()` is synchronous, so ids follow call order. The
 * next block is reserved in the background once half the current one is
 * used; a failed reservation (a full disk) is kept, not thrown into the
 * void, and retried on the following call. Only when the block is used up
 * does `next()` throw, with that failure as the cause.
 */
export class IdSequence {
  readonly path: string;
  #next: number;
  #reserved: number;
  #reserving: Promise<void> | undefined;
  #failure: unknown;

  private constructor(path: string, next: number, reserved: number) {
    this.path = path;
    this.#next = next;
    this.#reserved = reserved;
  }

  /** Opens the counter at `path`, starting above `floor` (the highest id found in journals). */
  static async open(path: string, floor: number): Promise<IdSequence> {
    let mark = 0;
    try {
      const n = Number((await Deno.readTextFile(path)).trim());
      if (Number.isSafeInteger(n) && n > 0) mark = n;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    const start = Math.max(mark, floor + 1, 1);
    const seq = new IdSequence(path, start, start);
    await seq.#reserve();
    return seq;
  }

  /** Ids left in the reserved block. */
  get left(): number {
    return this.#reserved - this.#next;
  }

  /**
   * The next id. Throws an `Error` whose `cause` is the last reservation
   * failure when no reserved id is left.
   */
  next(): string {
    if (this.#next >= this.#reserved) {
      this.#renew();
      throw new Error("no message id is reserved: the id counter cannot be saved", {
        cause: this.#failure,
      });
    }
    const id = this.#next++;
    if (this.#next > this.#reserved - _BLOCK / 2) this.#renew();
    return String(id);
  }

  /** Waits for a reservation in progress. */
  async settle(): Promise<void> {
    await this.#reserving;
  }

  #renew(): void {
    if (this.#reserving) return;
    this.#reserving = this.#reserve().then(
      () => {
        this.#failure = undefined;
      },
      (e: unknown) => {
        // kept for next(); the reservation is retried on the next call
        this.#failure = e;
      },
    ).finally(() => (this.#reserving = undefined));
  }

  async #reserve(): Promise<void> {
    const mark = Math.max(this.#reserved, this.#next) + _BLOCK;
    const tmp = `${this.path}.tmp`;
    await Deno.writeTextFile(tmp, `${mark}\n`, { mode: 0o600 });
    await Deno.rename(tmp, this.path);
    this.#reserved = mark;
  }
}
