/**
 * Running SHA-256 of each stream's data, one set per direction, for the
 * `digest` feature (PROTOCOL.md §4.7): on plaintext the MAC of a `data` frame
 * covers its stream's running SHA-256 instead of its body, so each byte is
 * hashed once, and that one hash is also the SHA-256 of what the stream
 * carried (a file's checksum, when the stream is a transfer from byte 0).
 *
 * @example
 * ```ts
 * import { StreamDigests } from "./stream_digest.ts";
 * const d = new StreamDigests(4);
 * d.absorb(1, new TextEncoder().encode("hel"), false);
 * const all = d.absorb(1, new TextEncoder().encode("lo"), true);
 * if (all.byteLength !== 32) throw new Error("a SHA-256 is 32 bytes");
 * ```
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";

/** The running SHA-256 states of one direction of a connection, by stream id. */
export class StreamDigests {
  #live = new Map<number, Hash>();
  /** States of streams gone on this side while the peer may still send; oldest first. */
  #gone = new Map<number, Hash>();
  #keepGone: number;

  /** `keepGone`: how many states of gone streams to keep for late data (§4.7). */
  constructor(keepGone: number) {
    this.#keepGone = keepGone;
  }

  /**
   * Hashes `body` into stream `id`'s running state (a new state at its first
   * data frame) and returns the SHA-256 of all its data so far. `fin` ends the
   * state. One update per byte, one copy of the state per frame.
   */
  absorb(id: number, body: Uint8Array, fin: boolean): Uint8Array {
    return this.absorbKeeping(id, body, fin).digest;
  }

  /**
   * As {@linkcode absorb}, and also returns a copy of the state before
   * `body` (`before`), from which a reader can take the SHA-256 through any
   * prefix of `body` by hashing just that prefix.
   */
  absorbKeeping(
    id: number,
    body: Uint8Array,
    fin: boolean,
    keep = false,
  ): { digest: Uint8Array; before: Hash | undefined } {
    let h = this.#live.get(id) ?? this.#gone.get(id);
    if (h === undefined) {
      h = createHash("sha256");
      this.#live.set(id, h);
    }
    const before = keep ? h.copy() : undefined;
    if (body.byteLength > 0) h.update(body);
    if (fin) {
      this.forget(id);
      return { digest: new Uint8Array(h.digest()), before };
    }
    return { digest: new Uint8Array(h.copy().digest()), before };
  }

  /** Drops stream `id`'s state: no more data will come for it in this direction. */
  forget(id: number): void {
    this.#live.delete(id);
    this.#gone.delete(id);
  }

  /**
   * Stream `id` is gone on this side (reset, refused) but the peer may still
   * send data it must verify: keep its state among the last `keepGone`.
   */
  retire(id: number): void {
    const h = this.#live.get(id);
    if (h === undefined) return;
    this.#live.delete(id);
    this.#gone.set(id, h);
    if (this.#gone.size > this.#keepGone) {
      this.#gone.delete(this.#gone.keys().next().value!);
    }
  }

  /** States held, live and gone (for tests and memory checks). */
  get size(): number {
    return this.#live.size + this.#gone.size;
  }
}

/**
 * What a frame's MAC covers after its header under the `digest` feature
 * (§4.7): the stream's running SHA-256 for a `data` frame (hashing `body`
 * into `digests`), the body itself for every other frame. For peers that
 * build frames by hand; the session does the same inline.
 */
export function macCovered(
  digests: StreamDigests,
  header: { t?: unknown; s?: unknown; fin?: unknown },
  body: Uint8Array,
): Uint8Array {
  if (header.t !== "data" || typeof header.s !== "number") return body;
  return digests.absorb(header.s, body, header.fin === true);
}
