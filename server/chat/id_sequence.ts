/**
 * Message ids: one increasing counter for the whole server. The counter's
 * high-water mark is reserved on disk in blocks before ids from a block are
 * handed out, so ids are never reused after a crash or restart, even if the
 * messages that carried them were never written.
 *
 * @module
 */

const _BLOCK = 10_000;

/** The id counter. `next()` is synchronous, so ids follow call order. */
export class IdSequence {
  readonly path: string;
  #next: number;
  #reserved: number;
  #reserving: Promise<void> | undefined;

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

  /** The next id. */
  next(): string {
    const id = this.#next++;
    if (this.#next > this.#reserved - _BLOCK / 2 && !this.#reserving) {
      this.#reserving = this.#reserve().finally(() => (this.#reserving = undefined));
    }
    return String(id);
  }

  /** Waits for a reservation in progress. */
  async settle(): Promise<void> {
    await this.#reserving;
  }

  async #reserve(): Promise<void> {
    const mark = Math.max(this.#reserved, this.#next) + _BLOCK;
    const tmp = `${this.path}.tmp`;
    await Deno.writeTextFile(tmp, `${mark}\n`, { mode: 0o600 });
    await Deno.rename(tmp, this.path);
    this.#reserved = mark;
  }
}
