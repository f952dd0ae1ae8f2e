/**
 * A chat client on top of {@linkcode ParleyClient}: joins rooms, sends,
 * and delivers messages to listeners exactly once and in order. It records
 * the last message id seen per room and for direct messages; after a
 * reconnect it rejoins its rooms asking for everything after those ids.
 * Live messages that arrive while a room is being synced are held back and
 * released after the history, and ids already seen are dropped, so there are
 * no gaps and no duplicates. Server replies are cut to fit one frame; the
 * client follows `more` pages wherever it needs the whole set.
 *
 * Ids are numbered within an epoch, which join and history replies name.
 * When the server reports another epoch than before (its message store was
 * recreated and ids started over), the client forgets its last-seen ids and
 * fetches recent history instead of asking for ids after a stale one.
 *
 * Every send carries a random idempotency key. When the connection is lost
 * before the reply (the node died, or the store was unavailable), the send
 * is repeated with the same key once the client has reconnected, on
 * whichever node it reached: the server stores the message once and the
 * reply is that message's id ({@linkcode ChatClient.send}).
 *
 * With {@linkcode ChatClient.setPacing} on (the REPL turns it on), sends go
 * out one after another in order, under the server's message rate (learnt
 * from `chat.rooms`), a `rate_limited` refusal is retried after its wait,
 * and a text over the server's size limit is split into several messages on
 * code-point boundaries: a pasted block arrives whole and in order.
 *
 * @example
 * ```ts ignore
 * const client = await ParleyClient.connect({ ...creds, reconnect: true });
 * const chat = await ChatClient.start(client);
 * chat.onEvent((e) => { if (e.kind === "msg") console.log(e.msg.from, e.msg.text); });
 * await chat.join("lobby");
 * await chat.send({ room: "lobby" }, "hello");
 * ```
 *
 * @module
 */
import type { ParleyClient } from "../client.ts";
import { RemoteError } from "../../protocol/errors.ts";
import type { ChatEvent, ChatFile, ChatMessage, ChatTarget } from "./chat_types.ts";
import {
  CHAT_GET,
  CHAT_HISTORY,
  CHAT_INBOX,
  CHAT_JOIN,
  CHAT_JOINED,
  CHAT_KICKED,
  CHAT_LEAVE,
  CHAT_LEFT,
  CHAT_MSG,
  CHAT_NOTICE,
  CHAT_ROOMS,
  CHAT_SEND,
  CHAT_TOPIC,
  CHAT_TOPIC_EVENT,
  CHAT_WHO,
  type ChatGetReply,
  type ChatJoinedEvent,
  type ChatJoinReply,
  type ChatKickedEvent,
  type ChatLeftEvent,
  type ChatLimits,
  type ChatNoticeEvent,
  type ChatPage,
  type ChatRoomInfo,
  type ChatRoomsReply,
  type ChatSendReply,
  type ChatTopic,
  type ChatTopicEvent,
  type ChatTopicReply,
  type ChatWhoInfo,
  type ChatWhoReply,
} from "../../protocol/ops/chat.ts";

const _SEEN_CAP = 5000;
/**
 * How long a send is repeated across reconnects (ms). Below the servers'
 * dedupe window (2 minutes), so a repeat never stores a second copy.
 */
const _SEND_RETRY_MS = 60_000;
/** Most attempts of one send. */
const _SEND_ATTEMPTS = 8;
const _RECENT_CAP = 2000;
/** Limits assumed until the server names its own (the server defaults). */
const _DEFAULT_LIMITS: ChatLimits = { ratePerSecond: 5, rateBurst: 10, maxTextBytes: 4096 };
/** Most `rate_limited` refusals one paced message waits out before it fails. */
const _RATE_RETRIES = 30;
const _ENC = new TextEncoder();
const _DM = "@";

interface _Track {
  last: number;
  seen: Set<string>;
  syncing: number;
  held: ChatMessage[];
  users: Set<string>;
}

/** A room in {@linkcode ChatClient.roomList}. */
export type RoomInfo = ChatRoomInfo;

/** A user in {@linkcode ChatClient.who}. */
export type WhoInfo = ChatWhoInfo;

/** Most pages a listing follows (a bound on the loop, far above any real list). */
const _PAGE_CAP = 10_000;

/** Options for {@linkcode ChatClient.start}. */
export interface ChatClientOptions {
  /** Fetch direct messages that arrived while offline. Default true. */
  inbox?: boolean;
}

/** Reply of {@linkcode ChatClient.join}. */
export interface JoinResult {
  room: string;
  users: string[];
  history: ChatMessage[];
  /** The room's topic, if it has one. */
  topic?: ChatTopic;
}

/** Chat over one (reconnecting) connection. */
export class ChatClient {
  readonly client: ParleyClient;
  #tracks = new Map<string, _Track>();
  #rooms = new Set<string>();
  #recent = new Map<string, ChatMessage>();
  #listeners = new Set<(e: ChatEvent) => void>();
  #off: (() => void)[] = [];
  #closed = false;
  /** The id epoch of the server's replies so far (undefined before the first). */
  #epoch: string | undefined;
  #pacing = false;
  /** The paced sends, one after another. */
  #paceChain: Promise<unknown> = Promise.resolve();
  #paceQueued = 0;
  #paceNoticed = false;
  /** The client's own bucket under the server's rate: tokens and when counted. */
  #tokens = { n: -1, at: 0 };
  #info: Promise<void> | undefined;
  /** What the server said about its chat limits and the user (`chat.rooms`). */
  #known: { limits: ChatLimits; admin?: boolean } | undefined;

  private constructor(client: ParleyClient) {
    this.client = client;
  }

  /** Subscribes to chat events and, by default, fetches undelivered direct messages. */
  static async start(client: ParleyClient, options: ChatClientOptions = {}): Promise<ChatClient> {
    const chat = new ChatClient(client);
    chat.#subscribe();
    if (options.inbox ?? true) await chat.#syncDms(false);
    return chat;
  }

  /** The server's chat limits (its defaults until it said otherwise). */
  get limits(): ChatLimits {
    return this.#known?.limits ?? _DEFAULT_LIMITS;
  }

  /** Whether the user is an admin (undefined: the server did not say). */
  get admin(): boolean | undefined {
    return this.#known?.admin;
  }

  /**
   * Turns pacing on or off. Paced sends go out one at a time in order,
   * under the server's rate; a `rate_limited` refusal is retried after its
   * wait; a text over the size limit is sent as several messages. Turning it
   * on asks the server for its limits and whether the user is an admin
   * ({@linkcode ChatClient.limits}, {@linkcode ChatClient.admin}); they are
   * asked again after each reconnect.
   */
  setPacing(on: boolean): void {
    this.#pacing = on;
    // the limits (and whether the user is an admin) are asked for once pacing is wanted
    if (on) this.#info ??= this.#fetchInfo();
  }

  async #fetchInfo(): Promise<void> {
    try {
      const r = await this.client.call(CHAT_ROOMS, {}) as ChatRoomsReply;
      this.#known = {
        limits: r.limits ?? _DEFAULT_LIMITS,
        ...(r.admin === undefined ? {} : { admin: r.admin }),
      };
    } catch {
      // an older server, or offline: the defaults hold
    }
  }

  /** Rooms joined (rejoined after a reconnect). */
  get rooms(): string[] {
    return [...this.#rooms];
  }

  /** Users known to be in `room`. */
  usersIn(room: string): string[] {
    return [...(this.#tracks.get(room)?.users ?? [])].sort();
  }

  /** The last message id seen in `room` (or `@` for direct messages), 0 if none. */
  lastId(room: string): number {
    return this.#tracks.get(room)?.last ?? 0;
  }

  /** A recently seen message by id. */
  message(id: string): ChatMessage | undefined {
    return this.#recent.get(id);
  }

  /** Recently seen messages, oldest first. */
  recent(): ChatMessage[] {
    return [...this.#recent.values()];
  }

  /** Listens to chat events; returns an unsubscribe function. */
  onEvent(fn: (e: ChatEvent) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /**
   * Joins `room`. The first time, the reply's recent history is delivered
   * as replayed messages; on a later join, only messages not yet seen.
   */
  async join(room: string): Promise<JoinResult> {
    const r = await this.#syncRoom(room);
    this.#rooms.add(room);
    return r;
  }

  /** The topic of `room` (undefined: it has none); `not_found` for a room that does not exist. */
  async topic(room: string): Promise<ChatTopic | undefined> {
    const r = await this.client.call(CHAT_TOPIC, { room }) as ChatTopicReply;
    return r.topic;
  }

  /**
   * Sets the topic of `room` (an empty text clears it); resolves with the
   * topic now set. The room's members, this connection included when it is
   * in the room, get a `topic` event.
   */
  async setTopic(room: string, text: string): Promise<ChatTopic | undefined> {
    const r = await this.client.call(CHAT_TOPIC, { room, text }) as ChatTopicReply;
    return r.topic;
  }

  /** Leaves `room`. */
  async leave(room: string): Promise<void> {
    this.#rooms.delete(room);
    await this.client.call(CHAT_LEAVE, { room });
  }

  /** The id epoch the server named last (undefined before a join or history reply). */
  get epoch(): string | undefined {
    return this.#epoch;
  }

  /**
   * Sends a message; resolves with its id once the server stored it.
   *
   * The request carries `options.key` or a random key. If the connection is
   * lost before the reply, or the server answers `unavailable`, and the
   * client reconnects, the request is repeated with the same key (for up to
   * a minute): the message is stored once, and `dup: true` in the reply says
   * an earlier attempt had stored it. Any other error rejects at once.
   */
  send(
    target: ChatTarget,
    text: string,
    options: { me?: boolean; file?: ChatFile; key?: string } = {},
  ): Promise<ChatSendReply> {
    if (!this.#pacing) return this.#sendNow(target, text, options);
    this.#paceQueued++;
    const p = this.#paceChain.then(() => this.#sendPaced(target, text, options));
    const done = p.finally(() => {
      if (--this.#paceQueued === 0) this.#paceNoticed = false;
    });
    this.#paceChain = done.catch(() => {});
    return done;
  }

  /** Sends `text` (split if it is over the limit) under the rate, waiting out refusals. */
  async #sendPaced(
    target: ChatTarget,
    text: string,
    options: { me?: boolean; file?: ChatFile; key?: string },
  ): Promise<ChatSendReply> {
    await this.#info;
    const parts = splitText(text, this.limits.maxTextBytes);
    if (parts.length > 1) {
      this.#emit({
        kind: "notice",
        text: `a long line was sent as ${parts.length} messages ` +
          `(the server takes at most ${this.limits.maxTextBytes} bytes in one)`,
      });
    }
    let reply: ChatSendReply | undefined;
    for (const [i, part] of parts.entries()) {
      // the first piece carries the file and the caller's key; the others their own keys
      const opts = i === 0 ? options : options.me ? { me: true } : {};
      for (let attempt = 1;; attempt++) {
        await this.#takeToken();
        try {
          reply = await this.#sendNow(target, part, opts);
          break;
        } catch (e) {
          if (
            !(e instanceof RemoteError && e.code === "rate_limited") || attempt >= _RATE_RETRIES
          ) {
            throw e;
          }
          const ms = Number(/in (\d+) ms/.exec(e.message)?.[1] ?? NaN);
          const wait = Number.isFinite(ms) ? ms : 1000 / this.limits.ratePerSecond;
          this.#tokens = { n: 0, at: Date.now() + Math.min(wait, 10_000) };
        }
      }
    }
    return reply!;
  }

  /** Waits for a token of the client's bucket (a little under the server's rate). */
  async #takeToken(): Promise<void> {
    const { ratePerSecond, rateBurst } = this.limits;
    const rate = ratePerSecond * 0.9;
    const burst = Math.max(1, rateBurst - 1);
    const t = this.#tokens;
    if (t.n < 0) this.#tokens = { n: burst, at: Date.now() };
    for (let i = 0; i < 100; i++) {
      const now = Date.now();
      const cur = this.#tokens;
      const n = Math.min(burst, cur.n + Math.max(0, now - cur.at) * rate / 1000);
      if (n >= 1) {
        this.#tokens = { n: n - 1, at: Math.max(now, cur.at) };
        return;
      }
      const wait = Math.max(cur.at - now, 0) + Math.ceil((1 - n) * 1000 / rate);
      if (!this.#paceNoticed) {
        // said once while lines wait (again only after the queue ran empty)
        this.#paceNoticed = true;
        const n = this.#paceQueued;
        this.#emit({
          kind: "notice",
          text: `${n === 1 ? "1 message waits" : `${n} messages wait`}: sending in order, ` +
            `at most ${ratePerSecond} a second (the server's limit)`,
        });
      }
      await new Promise((r) => setTimeout(r, Math.min(wait, 10_000)));
    }
  }

  async #sendNow(
    target: ChatTarget,
    text: string,
    options: { me?: boolean; file?: ChatFile; key?: string },
  ): Promise<ChatSendReply> {
    const args = {
      ...target,
      text,
      ...(options.me ? { me: true } : {}),
      ...(options.file ? { file: { ...options.file } } : {}),
      key: options.key ?? crypto.randomUUID(),
    };
    const deadline = Date.now() + _SEND_RETRY_MS;
    for (let attempt = 1;; attempt++) {
      try {
        return await this.client.call(CHAT_SEND, args) as ChatSendReply;
      } catch (e) {
        if (!this.#mayResend(e) || attempt >= _SEND_ATTEMPTS || Date.now() >= deadline) throw e;
        await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)));
        if (!(await _openBefore(this.client, deadline))) throw e;
      }
    }
  }

  /** Whether a send that failed with `e` may have been lost with the connection. */
  #mayResend(e: unknown): boolean {
    if (this.#closed || !this.client.options.reconnect || this.client.state === "closed") {
      return false;
    }
    // a reply from the server is final, except "try again"; anything else lost the request
    return !(e instanceof RemoteError) || e.code === "unavailable";
  }

  /** Fetches a message by id (recent cache first, then the server). */
  async get(id: string): Promise<ChatMessage> {
    const m = this.#recent.get(id);
    if (m) return m;
    const r = await this.client.call(CHAT_GET, { id }) as ChatGetReply;
    return r.message;
  }

  /**
   * The last `n` messages of `room` (oldest first), following `before`
   * pages until there are `n` or the history ends.
   */
  async history(room: string, n: number): Promise<ChatMessage[]> {
    const out: ChatMessage[] = [];
    let before: string | undefined;
    for (let i = 0; i < _PAGE_CAP && out.length < n; i++) {
      const h = await this.client.call(CHAT_HISTORY, {
        room,
        limit: Math.min(1000, n - out.length),
        ...(before ? { before } : {}),
      }) as ChatPage;
      out.unshift(...h.messages);
      before = h.more ? h.before ?? h.messages[0]?.id : undefined;
      if (before === undefined) break;
    }
    return out;
  }

  /** Every room on the server (all `chat.rooms` pages). */
  async roomList(): Promise<{ rooms: RoomInfo[]; defaultRoom: string }> {
    const rooms: RoomInfo[] = [];
    let after: string | undefined;
    let defaultRoom = "";
    for (let i = 0; i < _PAGE_CAP; i++) {
      const r = await this.client.call(CHAT_ROOMS, after ? { after } : {}) as ChatRoomsReply;
      rooms.push(...r.rooms);
      defaultRoom = r.defaultRoom;
      after = r.more ? r.after : undefined;
      if (after === undefined) break;
    }
    return { rooms, defaultRoom };
  }

  /** Everyone online, or in `room` (all `chat.who` pages). */
  async who(room?: string): Promise<WhoInfo[]> {
    const users: WhoInfo[] = [];
    let after: string | undefined;
    for (let i = 0; i < _PAGE_CAP; i++) {
      const r = await this.client.call(CHAT_WHO, {
        ...(room ? { room } : {}),
        ...(after ? { after } : {}),
      }) as ChatWhoReply;
      users.push(...r.users);
      after = r.more ? r.after : undefined;
      if (after === undefined) break;
    }
    return users;
  }

  /** Stops listening (does not close the connection). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const off of this.#off) off();
    this.#listeners.clear();
  }

  #track(key: string): _Track {
    let t = this.#tracks.get(key);
    if (!t) {
      t = { last: 0, seen: new Set(), syncing: 0, held: [], users: new Set() };
      this.#tracks.set(key, t);
    }
    return t;
  }

  #subscribe(): void {
    const c = this.client;
    this.#off.push(
      c.on(CHAT_MSG, (d) => {
        const msg = d as ChatMessage;
        const t = this.#track(msg.room ?? _DM);
        if (t.syncing > 0) t.held.push(msg);
        else this.#accept(t, msg, false);
      }),
      c.on(CHAT_JOINED, (d) => {
        const e = d as ChatJoinedEvent;
        this.#track(e.room).users.add(e.user);
        this.#emit({ kind: "joined", room: e.room, user: e.user });
      }),
      c.on(CHAT_LEFT, (d) => {
        const e = d as ChatLeftEvent;
        this.#track(e.room).users.delete(e.user);
        this.#emit({ kind: "left", ...e });
      }),
      c.on(CHAT_KICKED, (d) => {
        const e = d as ChatKickedEvent;
        this.#rooms.delete(e.room);
        this.#emit({ kind: "kicked", ...e });
      }),
      c.on(CHAT_TOPIC_EVENT, (d) => {
        const e = d as ChatTopicEvent;
        this.#emit({ kind: "topic", room: e.room, text: e.text, by: e.by, ts: e.ts });
      }),
      c.on(
        CHAT_NOTICE,
        (d) => this.#emit({ kind: "notice", text: (d as ChatNoticeEvent).text }),
      ),
      c.onState((s, why) => {
        if (s === "reconnecting") {
          this.#emit({
            kind: "connection",
            state: "lost",
            ...(why?.message ? { detail: why.message } : {}),
          });
        }
      }),
    );
    c.onReconnect(async () => {
      if (this.#closed) return;
      for (const room of [...this.#rooms]) {
        try {
          await this.#syncRoom(room);
        } catch (e) {
          this.#emit({
            kind: "notice",
            text: `could not rejoin #${room}: ${(e as Error).message}`,
          });
          this.#rooms.delete(room);
        }
      }
      await this.#syncDms(true);
      if (this.#info) this.#info = this.#fetchInfo();
      this.#emit({ kind: "connection", state: "restored" });
    });
  }

  /**
   * Notes the epoch of a reply. Another one than before voids every
   * last-seen id (they belong to the old id space) and returns true.
   */
  #noteEpoch(epoch: string | undefined): boolean {
    if (epoch === undefined || epoch === this.#epoch) return false;
    const was = this.#epoch;
    this.#epoch = epoch;
    if (was === undefined) return false;
    for (const t of this.#tracks.values()) {
      t.last = 0;
      t.seen.clear();
    }
    this.#recent.clear();
    this.#emit({
      kind: "notice",
      text: "the server's message store was reset and message ids started over; " +
        "showing recent history again",
    });
    return true;
  }

  async #syncRoom(room: string): Promise<JoinResult> {
    const t = this.#track(room);
    t.syncing++;
    const delivered: ChatMessage[] = [];
    try {
      let r: ChatJoinReply | undefined;
      for (let i = 0; i < 2 && !r; i++) {
        const after = t.last;
        r = await this.client.call(CHAT_JOIN, {
          room,
          ...(after > 0 ? { after } : {}),
        }) as ChatJoinReply;
        // ids after a cursor of another epoch mean nothing: ask again without one
        if (this.#noteEpoch(r.epoch) && after > 0) r = undefined;
      }
      if (!r) throw new Error(`the server's message ids changed twice while joining #${room}`);
      t.users = new Set(r.users);
      if (r.gap) {
        this.#emit({
          kind: "notice",
          text: `some older messages in #${room} are no longer kept; showing what remains`,
        });
      }
      // Replies are cut to fit a frame: follow `more` so a recovery has no gap.
      let page: ChatPage = {
        messages: r.history,
        more: r.more,
        ...(r.after ? { after: r.after } : {}),
      };
      const recovering = t.last > 0;
      for (;;) {
        for (const m of _byId(page.messages)) if (this.#accept(t, m, true)) delivered.push(m);
        const after = page.after ?? page.messages.at(-1)?.id;
        if (!recovering || !page.more || after === undefined) break;
        page = await this.client.call(CHAT_HISTORY, { room, after, limit: 1000 }) as ChatPage;
      }
      return {
        room: r.room,
        users: r.users,
        history: delivered,
        ...(r.topic ? { topic: r.topic } : {}),
      };
    } finally {
      this.#release(t);
    }
  }

  async #syncDms(recover: boolean): Promise<void> {
    const t = this.#track(_DM);
    t.syncing++;
    try {
      if (recover && t.last > 0) {
        let after: string | undefined = String(t.last);
        while (after !== undefined) {
          const h = await this.client.call(CHAT_HISTORY, {
            dm: true,
            after,
            limit: 1000,
          }) as ChatPage;
          // another epoch: the cursor was void; the inbox below has what is undelivered
          if (this.#noteEpoch(h.epoch)) break;
          for (const m of _byId(h.messages)) this.#accept(t, m, true);
          after = h.more ? h.after ?? h.messages.at(-1)?.id : undefined;
        }
      }
      for (;;) {
        const r = await this.client.call(CHAT_INBOX, {}) as ChatPage;
        for (const m of _byId(r.messages)) this.#accept(t, m, true);
        if (!r.more || r.messages.length === 0) break;
      }
    } finally {
      this.#release(t);
    }
  }

  #release(t: _Track): void {
    t.syncing--;
    if (t.syncing > 0) return;
    const held = _byId(t.held);
    t.held = [];
    for (const m of held) this.#accept(t, m, false);
  }

  #accept(t: _Track, msg: ChatMessage, replay: boolean): boolean {
    if (t.seen.has(msg.id)) return false;
    t.seen.add(msg.id);
    if (t.seen.size > _SEEN_CAP) t.seen.delete(t.seen.values().next().value!);
    t.last = Math.max(t.last, Number(msg.id));
    this.#recent.set(msg.id, msg);
    if (this.#recent.size > _RECENT_CAP) this.#recent.delete(this.#recent.keys().next().value!);
    if (msg.room) t.users.add(msg.from);
    this.#emit({ kind: "msg", msg, replay });
    return true;
  }

  #emit(e: ChatEvent): void {
    for (const fn of this.#listeners) {
      try {
        fn(e);
      } catch {
        // a failing listener must not stop delivery to the others
      }
    }
  }
}

/**
 * Waits until `client` is open again, at most until `deadline` (ms since the
 * epoch). False when the deadline passed or the client closed.
 */
async function _openBefore(client: ParleyClient, deadline: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((r) => {
    timer = setTimeout(() => r(false), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([client.waitOpen().then(() => true, () => false), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Cuts `text` into pieces of at most `maxBytes` UTF-8 bytes, on code-point
 * boundaries, preferring to cut after a line break or a space in the last
 * quarter of a piece. A text that fits is one piece.
 */
export function splitText(text: string, maxBytes: number): string[] {
  if (_ENC.encode(text).byteLength <= maxBytes) return [text];
  const out: string[] = [];
  let piece = "";
  let bytes = 0;
  for (const ch of text) {
    const n = _ENC.encode(ch).byteLength;
    if (bytes + n > maxBytes) {
      const cut = Math.max(piece.lastIndexOf("\n"), piece.lastIndexOf(" "));
      if (cut >= piece.length * 0.75) {
        out.push(piece.slice(0, cut + 1));
        piece = piece.slice(cut + 1);
      } else {
        out.push(piece);
        piece = "";
      }
      bytes = _ENC.encode(piece).byteLength;
    }
    piece += ch;
    bytes += n;
  }
  if (piece.trim() !== "") out.push(piece);
  return out.filter((p) => p.trim() !== "");
}

function _byId(list: ChatMessage[]): ChatMessage[] {
  return [...list].sort((a, b) => Number(a.id) - Number(b.id));
}
