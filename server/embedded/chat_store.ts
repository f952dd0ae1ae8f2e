/**
 * Chat history on disk and in memory: one journal per room
 * (`chat/rooms/ROOM.jsonl`) and one per user for direct messages
 * (`chat/dm/USER.jsonl`, holding DMs sent and received). Each keeps at most
 * its configured number of messages; a journal is compacted when it holds
 * twice that. A message enters the in-memory history only once its journal
 * line is durable, so history never shows a message whose `chat.send`
 * failed. {@linkcode EmbeddedChatLog} (chat_log.ts) puts it behind `ChatLog`.
 *
 * @module
 */
import { join } from "@std/path";
import type { HistoryPage, HistoryQuery } from "../backend/chat.ts";
import type { Logger } from "../log.ts";
import { type ChatMessage, idNum, parseStoredMessage, ROOM_NAME } from "../chat/chat_message.ts";
import { firstAfter, pageOf } from "../chat/chat_pager.ts";
import { IdSequence } from "./chat_id_sequence.ts";
import { Journal } from "./chat_journal.ts";

interface _Log {
  list: ChatMessage[];
  journal: Journal<ChatMessage>;
  limit: number;
  compacting: boolean;
  /** Lines the journal must exceed before the next compaction (raised after a failed one). */
  compactAt: number;
}

/** Room and DM history. */
export class ChatStore {
  #dir: string;
  #rooms = new Map<string, _Log>();
  #dms = new Map<string, _Log>();
  #seq!: IdSequence;
  #roomLimit: number;
  #dmLimit: number;
  #compactions = new Set<Promise<void>>();
  #log: Logger;
  #highest = 0;

  private constructor(dir: string, roomLimit: number, dmLimit: number, log: Logger) {
    this.#dir = dir;
    this.#roomLimit = roomLimit;
    this.#dmLimit = dmLimit;
    this.#log = log;
  }

  /** Loads every journal under `dir`. */
  static async open(
    dir: string,
    options: { roomLimit: number; dmLimit: number; log: Logger },
  ): Promise<ChatStore> {
    const store = new ChatStore(dir, options.roomLimit, options.dmLimit, options.log);
    await Deno.mkdir(join(dir, "rooms"), { recursive: true, mode: 0o700 });
    await Deno.mkdir(join(dir, "dm"), { recursive: true, mode: 0o700 });
    let maxId = 0;
    for (
      const [sub, map, limit] of [["rooms", store.#rooms, store.#roomLimit], [
        "dm",
        store.#dms,
        store.#dmLimit,
      ]] as const
    ) {
      for await (const e of Deno.readDir(join(dir, sub))) {
        const m = /^(.+)\.jsonl$/.exec(e.name);
        if (!e.isFile || !m || !ROOM_NAME.test(m[1]!)) continue;
        const name = m[1]!;
        const load = await Journal.open(join(dir, sub, e.name), parseStoredMessage, {
          onCommit: (msgs) => store.#committed(map, name, msgs),
        });
        if (load.skipped || load.truncated) {
          options.log.warn("chat journal repaired", {
            file: load.journal.path,
            skipped: load.skipped,
            truncatedBytes: load.truncated,
          });
        }
        const list = load.entries.sort((a, b) => idNum(a.id) - idNum(b.id));
        for (const msg of list) maxId = Math.max(maxId, idNum(msg.id));
        if (list.length > limit) list.splice(0, list.length - limit);
        map.set(name, {
          list,
          journal: load.journal,
          limit,
          compacting: false,
          compactAt: 2 * limit,
        });
      }
    }
    store.#seq = await IdSequence.open(join(dir, "seq"), maxId);
    store.#highest = maxId;
    return store;
  }

  /** The highest id found in the journals when they were loaded (0 if none). */
  get highestLoadedId(): number {
    return this.#highest;
  }

  /**
   * A fresh message id (synchronous, so ids follow the order of calls).
   * Throws when no id could be reserved on disk (the cause says why).
   */
  nextId(): string {
    return this.#seq.next();
  }

  /** Rooms that have history. */
  rooms(): string[] {
    return [...this.#rooms.keys()];
  }

  /** Whether `room` has ever had a message. */
  hasRoom(room: string): boolean {
    return this.#rooms.has(room);
  }

  /** Stores a room message; resolves once it is on disk. */
  addRoomMessage(msg: ChatMessage): Promise<void> {
    return this.#add(this.#rooms, "rooms", msg.room!, msg, this.#roomLimit);
  }

  /**
   * Stores a direct message in `user`'s log (call it for the recipient and,
   * if another user, the sender); resolves once it is on disk.
   */
  addDm(msg: ChatMessage, user: string): Promise<void> {
    return this.#add(this.#dms, "dm", user, msg, this.#dmLimit);
  }

  /** A page of a room's history. */
  roomHistory(room: string, q: HistoryQuery): HistoryPage {
    return pageOf(this.#rooms.get(room)?.list ?? [], q);
  }

  /** Whether messages after `after` in `room` were dropped by the history bound. */
  roomGap(room: string, after: number): boolean {
    const log = this.#rooms.get(room);
    const first = log?.list[0];
    return !!log && !!first && log.list.length >= log.limit && idNum(first.id) > after + 1;
  }

  /** A page of `user`'s direct messages (sent and received). */
  dmHistory(user: string, q: HistoryQuery): HistoryPage {
    return pageOf(this.#dms.get(user)?.list ?? [], q);
  }

  /** Finds a message by id among rooms and `user`'s direct messages. */
  find(id: string, user: string): ChatMessage | undefined {
    const n = idNum(id);
    for (const log of [...this.#rooms.values(), this.#dms.get(user)]) {
      if (!log) continue;
      const i = firstAfter(log.list, n - 1);
      const msg = log.list[i];
      if (msg && idNum(msg.id) === n) return msg;
    }
    return undefined;
  }

  /** Waits for writes and closes every journal. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#compactions]);
    await this.#seq?.settle();
    for (const log of [...this.#rooms.values(), ...this.#dms.values()]) await log.journal.close();
  }

  #add(
    map: Map<string, _Log>,
    sub: string,
    name: string,
    msg: ChatMessage,
    limit: number,
  ): Promise<void> {
    let log = map.get(name);
    if (!log) {
      log = {
        list: [],
        journal: Journal.create(join(this.#dir, sub, `${name}.jsonl`), {
          onCommit: (msgs) => this.#committed(map, name, msgs),
        }),
        limit,
        compacting: false,
        compactAt: 2 * limit,
      };
      map.set(name, log);
    }
    const written = log.journal.append(msg);
    if (log.journal.lines > log.compactAt && !log.compacting) {
      const l = log;
      l.compacting = true;
      const c = l.journal.rewrite(() => l.list).then(
        () => {
          l.compacting = false;
          l.compactAt = 2 * l.limit;
        },
        (e: unknown) => {
          l.compacting = false;
          // not again with every message while the disk stays full
          l.compactAt = l.journal.lines + Math.ceil(l.limit / 10);
          this.#log.error("chat journal compaction failed", {
            file: l.journal.path,
            error: (e as Error).message,
          });
        },
      );
      this.#compactions.add(c);
      // floating-ok: c never rejects (both outcomes are handled above)
      void c.then(() => this.#compactions.delete(c));
    }
    return written;
  }

  #committed(map: Map<string, _Log>, name: string, msgs: ChatMessage[]): void {
    const log = map.get(name);
    if (!log) return;
    log.list.push(...msgs);
    if (log.list.length > log.limit) log.list.splice(0, log.list.length - log.limit);
  }
}
