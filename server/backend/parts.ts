/**
 * The lifecycle a backend shares with its parts: parts are opened one after
 * another and closed last first, every one of them even when one fails, once.
 *
 * @module
 */

/** Something a backend opened and must close. */
export interface Closable {
  close(): Promise<void>;
}

/** The parts a backend has opened so far. */
export class BackendParts {
  #parts: Closable[] = [];
  #closing: Promise<void> | undefined;

  /** Waits for `part` and remembers it for {@linkcode close}. */
  async open<T extends Closable>(part: Promise<T>): Promise<T> {
    const p = await part;
    this.#parts.push(p);
    return p;
  }

  /**
   * Closes every part, last opened first, then runs `after` (e.g. closing the
   * connection the parts used). Rejects with the first failure. Idempotent.
   */
  close(after?: () => Promise<void>): Promise<void> {
    return this.#closing ??= (async () => {
      const results = await Promise.allSettled([...this.#parts].reverse().map((p) => p.close()));
      await after?.();
      const failed = results.find((r) => r.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
    })();
  }
}
