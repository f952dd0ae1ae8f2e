/**
 * The embedded chat feed: hands appended messages to subscribers in id
 * order. Ids are taken in call order, but journals of different rooms and
 * users commit independently, so a later id can become durable first; the
 * feed holds it until every smaller id has settled (stored or failed).
 *
 * @module
 */
import type { ChatFeed, ChatMessage } from "../backend/chat.ts";

/** One id between being taken and being handed out. */
interface _Slot {
  id: number;
  /** undefined while unsettled; null when the append failed. */
  msg: ChatMessage | null | undefined;
}

/** The in-process {@linkcode ChatFeed}; the log calls {@linkcode OrderedFeed.begin} and `settle`. */
export class OrderedFeed implements ChatFeed {
  #watermark: number;
  /** Taken ids not yet handed out, in increasing order. */
  #slots: _Slot[] = [];
  #head = 0;
  #subs = new Set<(msg: ChatMessage) => void>();

  /** A feed whose watermark starts at `watermark` (the highest stored id). */
  constructor(watermark = 0) {
    this.#watermark = watermark;
  }

  watermark(): number {
    return this.#watermark;
  }

  subscribe(fn: (msg: ChatMessage) => void): () => void {
    const sub = (m: ChatMessage): void => fn(m);
    this.#subs.add(sub);
    return () => void this.#subs.delete(sub);
  }

  /** Records that `id` was taken (ids must be taken in increasing order). */
  begin(id: number): void {
    const last = this.#slots.at(-1)?.id ?? this.#watermark;
    if (!(id > last)) throw new RangeError(`feed id ${id} is not above ${last}`);
    this.#slots.push({ id, msg: undefined });
  }

  /** Settles `id`: `msg` when it is stored, null when its append failed. */
  settle(id: number, msg: ChatMessage | null): void {
    let lo = this.#head, hi = this.#slots.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#slots[mid]!.id < id) lo = mid + 1;
      else hi = mid;
    }
    const slot = this.#slots[lo]?.id === id ? this.#slots[lo] : undefined;
    if (!slot || slot.msg !== undefined) throw new RangeError(`feed id ${id} is not pending`);
    slot.msg = msg;
    this.#drain();
  }

  #drain(): void {
    while (this.#head < this.#slots.length) {
      const slot = this.#slots[this.#head]!;
      if (slot.msg === undefined) break;
      this.#head++;
      this.#watermark = slot.id;
      if (slot.msg) { for (const fn of this.#subs) fn(slot.msg); }
    }
    if (this.#head > 64 && this.#head * 2 > this.#slots.length) {
      this.#slots = this.#slots.slice(this.#head);
      this.#head = 0;
    }
  }
}
