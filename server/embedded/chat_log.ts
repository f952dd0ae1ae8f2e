/**
 * The embedded {@linkcode ChatLog}: ids from the on-disk counter, history in
 * journals ({@linkcode ChatStore}), and every stored message handed to the
 * {@linkcode OrderedFeed} before its `append` resolves.
 *
 * @module
 */
import type {
  ChatLog,
  ChatMessage,
  ChatWhere,
  HistoryPage,
  HistoryQuery,
  NewMessage,
} from "../backend/chat.ts";
import type { OrderedFeed } from "./chat_feed.ts";
import type { ChatStore } from "./chat_store.ts";

/** History and ids of one data dir. */
export class EmbeddedChatLog implements ChatLog {
  #store: ChatStore;
  #feed: OrderedFeed;
  #epoch: string;

  constructor(store: ChatStore, feed: OrderedFeed, epoch: string) {
    this.#store = store;
    this.#feed = feed;
    this.#epoch = epoch;
  }

  epoch(): string {
    return this.#epoch;
  }

  append(msg: NewMessage): Promise<ChatMessage> {
    let full: ChatMessage;
    try {
      // synchronous, so ids follow the order of calls
      full = { id: this.#store.nextId(), ...msg };
    } catch (e) {
      return Promise.reject(e);
    }
    const n = Number(full.id);
    this.#feed.begin(n);
    const writes = full.room !== undefined ? [this.#store.addRoomMessage(full)] : [
      this.#store.addDm(full, full.to!),
      ...(full.to !== full.from ? [this.#store.addDm(full, full.from)] : []),
    ];
    return Promise.allSettled(writes).then((results) => {
      const failed = results.find((r) => r.status === "rejected");
      this.#feed.settle(n, failed ? null : full);
      if (failed) throw failed.reason;
      return full;
    });
  }

  page(where: ChatWhere, q: HistoryQuery): Promise<HistoryPage> {
    return Promise.resolve(
      "room" in where ? this.#store.roomHistory(where.room, q) : this.#store.dmHistory(where.dm, q),
    );
  }

  get(id: string, user: string): Promise<ChatMessage | undefined> {
    return Promise.resolve(this.#store.find(id, user));
  }

  gap(room: string, after: number): Promise<boolean> {
    return Promise.resolve(this.#store.roomGap(room, after));
  }

  rooms(): string[] {
    return this.#store.rooms();
  }

  hasRoom(room: string): boolean {
    return this.#store.hasRoom(room);
  }
}
