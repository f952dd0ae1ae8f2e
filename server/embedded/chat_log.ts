/**
 * The embedded {@linkcode ChatLog}: ids from the on-disk counter, history in
 * journals ({@linkcode ChatStore}), and every stored message handed to the
 * {@linkcode OrderedFeed} before its `append` resolves.
 *
 * Append keys are remembered in memory ({@linkcode SendKeys}), with the id
 * they got: for {@linkcode SEND_KEY_WINDOW_MS} and at most
 * {@linkcode SEND_KEYS_PER_USER} per sender. A restart forgets them.
 *
 * @module
 */
import type {
  Appended,
  ChatLog,
  ChatMessage,
  ChatWhere,
  HistoryPage,
  HistoryQuery,
  NewMessage,
} from "../backend/chat.ts";
import type { OrderedFeed } from "./chat_feed.ts";
import type { ChatStore } from "./chat_store.ts";

/** How long an append key is remembered (ms), as the cluster stream's `duplicate_window`. */
export const SEND_KEY_WINDOW_MS = 120_000;
/**
 * Most append keys remembered per sender; the oldest is forgotten first. A
 * client repeats only the sends it had in flight when its connection broke.
 */
export const SEND_KEYS_PER_USER = 64;
/** Appends between two sweeps of expired keys over all senders. */
const _SWEEP_EVERY = 1024;

interface _Sent {
  at: number;
  /** The id the first append with this key got (a rejected one is forgotten, so a retry stores). */
  id: Promise<string>;
}

/** Recent append keys per sender, bounded in time and count. */
export class SendKeys {
  #byUser = new Map<string, Map<string, _Sent>>();
  #adds = 0;
  #windowMs: number;
  #perUser: number;

  constructor(windowMs = SEND_KEY_WINDOW_MS, perUser = SEND_KEYS_PER_USER) {
    this.#windowMs = windowMs;
    this.#perUser = perUser;
  }

  /** The id of the first append of `user` with `key` within the window, if any. */
  get(user: string, key: string, now = Date.now()): Promise<string> | undefined {
    const keys = this.#byUser.get(user);
    if (!keys) return undefined;
    this.#expire(user, keys, now);
    return keys.get(key)?.id;
  }

  /** Remembers the append `result` of `user` with `key` (its id only); forgets it if it rejects. */
  add(user: string, key: string, result: Promise<ChatMessage>, now = Date.now()): void {
    let keys = this.#byUser.get(user);
    if (!keys) this.#byUser.set(user, keys = new Map());
    const sent = { at: now, id: result.then((m) => m.id) };
    keys.set(key, sent);
    while (keys.size > this.#perUser) keys.delete(keys.keys().next().value!);
    // floating-ok: only forgets the key; the caller handles the rejection
    sent.id.catch(() => {
      if (keys.get(key) === sent) keys.delete(key);
      if (keys.size === 0 && this.#byUser.get(user) === keys) this.#byUser.delete(user);
    });
    if (++this.#adds % _SWEEP_EVERY === 0) {
      for (const [u, k] of this.#byUser) this.#expire(u, k, now);
    }
  }

  /** Senders with remembered keys (for tests of the bound). */
  get users(): number {
    return this.#byUser.size;
  }

  #expire(user: string, keys: Map<string, _Sent>, now: number): void {
    // insertion order is time order
    for (const [k, s] of keys) {
      if (now - s.at < this.#windowMs) break;
      keys.delete(k);
    }
    if (keys.size === 0) this.#byUser.delete(user);
  }
}

/** History and ids of one data dir. */
export class EmbeddedChatLog implements ChatLog {
  #store: ChatStore;
  #feed: OrderedFeed;
  #epoch: string;
  #keys = new SendKeys();

  constructor(store: ChatStore, feed: OrderedFeed, epoch: string) {
    this.#store = store;
    this.#feed = feed;
    this.#epoch = epoch;
  }

  epoch(): string {
    return this.#epoch;
  }

  append(msg: NewMessage, key?: string): Promise<Appended> {
    if (key === undefined) return this.#append(msg);
    if (!/^[\x21-\x7e]{1,64}$/.test(key)) {
      return Promise.reject(new RangeError("an append key is 1 to 64 printable ASCII characters"));
    }
    const first = this.#keys.get(msg.from, key);
    if (first) {
      return first.then((id) => ({
        ...(this.#store.find(id, msg.from) ?? { id, ...msg }),
        duplicate: true as const,
      }));
    }
    const result = this.#append(msg);
    this.#keys.add(msg.from, key, result);
    return result;
  }

  #append(msg: NewMessage): Promise<ChatMessage> {
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
