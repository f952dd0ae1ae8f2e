/**
 * The chat service: the chat feature's policy over a {@linkcode ChatBackend}
 * — room membership and caps, the join (watermark) protocol, sending,
 * direct-message delivery marks, flood control and moderation. Request
 * handlers (chat_ops.ts) validate arguments and call into it.
 *
 * Send is "append, then deliver from the feed": `chat.send` replies once
 * the log says the message is durable, and every receiver — the sender's
 * own other connections included — gets it from the feed, which hands out
 * messages in id order, so every client sees a room in id order.
 *
 * Joins and leaves are announced from presence, not from this node's
 * members: `chat.joined` when the user was in the room on no node before,
 * `chat.left` when they are in it on no node any more. Embedded (one node)
 * that is at once; in a cluster a user whose connections close stays
 * present for the presence grace, so a client that fails over to another
 * node is neither shown leaving nor joining again.
 *
 * Fan-out never waits for a client: `Session.emit` only queues, and a
 * session whose queue grows past its bound is closed (the client recovers
 * by message id when it reconnects).
 *
 * @module
 */
import { encodeEvent } from "../../protocol/session.ts";
import type { Accounts } from "../backend/accounts.ts";
import type { Appended, ChatBackend, HistoryPage, Topic } from "../backend/chat.ts";
import type { ClientContext } from "../context.ts";
import { RequestError } from "../errors.ts";
import type { ClientDirectory } from "../feature.ts";
import type { Logger } from "../log.ts";
import type { ChatConfig } from "./chat_config.ts";
import { ChatDelivery } from "./chat_delivery.ts";
import { storeError } from "./chat_errors.ts";
import { type ChatConn, ChatMembers } from "./chat_members.ts";
import { ChatModeration } from "./chat_moderation.ts";
import { type ChatMessage, type FileRef, findMentions } from "./chat_message.ts";
import { fitList, jsonBytes, MAX_MESSAGE_JSON, REPLY_BUDGET, USERS_BUDGET } from "./chat_pager.ts";
import { FloodControl } from "./flood_control.ts";
import {
  CHAT_JOINED,
  CHAT_KICKED,
  CHAT_LEFT,
  CHAT_TOPIC_EVENT,
  type ChatTopicEvent,
  TOPIC_MAX_CHARS,
} from "../../protocol/ops/chat.ts";
import { codePointLength } from "../../protocol/text.ts";

export type { ChatConn };

/** What a client asks to send. */
export interface SendRequest {
  room?: string | undefined;
  to?: string | undefined;
  text: string;
  me?: boolean | undefined;
  file?: FileRef | undefined;
  /** Idempotency key: a retry with the same key stores the message once. */
  key?: string | undefined;
}

/** Room for the `more` flag and a cursor (`after`/`before` with a 20-digit id or a name). */
export const CURSOR_BYTES = 64;

const _ENC = new TextEncoder();
/** Characters a topic may not hold: C0 and C1 controls, DEL, line and paragraph separators. */
const _CONTROL = /[\p{Cc}\u2028\u2029]/u;

/** Chat of one server node. */
export class ChatService {
  readonly config: ChatConfig;
  /** Bans, mutes and notices. */
  readonly moderation: ChatModeration;
  #backend: ChatBackend;
  #accounts: Pick<Accounts, "get">;
  #clients: ClientDirectory;
  #log: Logger;
  #members: ChatMembers;
  #delivery: ChatDelivery;
  #flood: FloodControl;
  #stop: (() => void)[] = [];
  /** Per user: the rooms presence showed them in when last told (any node). */
  #present = new Map<string, Set<string>>();
  /** Why a user's connections here left a room (`user\nroom`), for the `chat.left` it causes. */
  #why = new Map<string, Record<string, unknown>>();

  constructor(deps: {
    config: ChatConfig;
    backend: ChatBackend;
    accounts: Pick<Accounts, "get">;
    clients: ClientDirectory;
    log: Logger;
  }) {
    this.config = deps.config;
    this.#backend = deps.backend;
    this.#accounts = deps.accounts;
    this.#clients = deps.clients;
    this.#log = deps.log;
    this.#members = new ChatMembers(deps.backend.presence);
    this.#flood = new FloodControl(deps.config);
    this.#delivery = new ChatDelivery({
      members: this.#members,
      policy: deps.backend.policy,
      clients: deps.clients,
    });
    this.moderation = new ChatModeration({
      policy: deps.backend.policy,
      clients: deps.clients,
      log: deps.log,
    });
    this.#stop.push(deps.backend.feed.subscribe((m) => this.#delivery.deliver(m)));
    for (const u of deps.backend.presence.online()) this.#present.set(u.name, new Set(u.rooms));
    this.#stop.push(deps.backend.presence.subscribe((user) => this.#presenceChanged(user)));
    this.#stop.push(deps.backend.policy.subscribe((change) => {
      if (change.kind === "topic") this.#topicChanged(change.room, change.topic);
    }));
  }

  /** The chat state of a connection (created on first use). */
  conn(ctx: ClientContext): ChatConn {
    return this.#members.conn(ctx);
  }

  /** Whether an account named `user` exists. */
  async userExists(user: string): Promise<boolean> {
    return (await this.#accounts.get(user)) !== undefined;
  }

  /**
   * Shows a new connection online. A banned user never gets here: the
   * feature's `admit` hook refuses them at login and before every request.
   */
  login(ctx: ClientContext): void {
    this.#members.conn(ctx);
  }

  /**
   * Removes a closed connection from its rooms; presence then tells the
   * rooms (in a cluster, after the grace if this was the user's last
   * connection here).
   */
  logout(ctx: ClientContext): void {
    const c = this.#members.peek(ctx);
    if (!c) return;
    const user = ctx.user.name;
    const rooms = [...c.rooms];
    for (const room of rooms) this.#why.set(`${user}\n${room}`, { quit: true });
    try {
      // one presence change for the whole connection: its rooms and its count together
      for (const room of rooms) this.#members.remove(c, room, false);
      this.#members.drop(c);
    } finally {
      for (const room of rooms) this.#why.delete(`${user}\n${room}`);
    }
    this.#flood.forget(user);
  }

  /** All room names, sorted: rooms with history, members or a topic. */
  roomNames(): string[] {
    return [
      ...new Set([
        ...this.#backend.log.rooms(),
        ...this.#backend.presence.rooms(),
        ...this.#backend.policy.topicRooms(),
      ]),
    ].sort();
  }

  /** The topic of `room`, if it has one. */
  topicOf(room: string): Topic | undefined {
    return this.#backend.policy.topic(room);
  }

  /**
   * The topic of an existing `room` (`not_found` for a room that does not
   * exist); anyone may read it, as `chat.rooms` shows it to anyone.
   */
  readTopic(room: string): Topic | undefined {
    if (!this.#roomExists(room)) throw new RequestError("not_found", `there is no room #${room}`);
    return this.#backend.policy.topic(room);
  }

  /**
   * Sets (or, with blank text, clears) the topic of an existing `room` and
   * resolves with it once stored; every member of the room, on every node,
   * gets a `chat.topic` event. Anyone in the room may set it (on any node,
   * by any of their connections), admins always; a muted user may not. The
   * text is trimmed, at most {@linkcode TOPIC_MAX_CHARS} code points, with no
   * control characters. A set counts against the user's message rate.
   */
  async setTopic(user: { name: string; admin: boolean }, room: string, text: string): Promise<
    Topic | undefined
  > {
    if (!this.#roomExists(room)) throw new RequestError("not_found", `there is no room #${room}`);
    if (!user.admin && !this.#backend.presence.isIn(user.name, room)) {
      throw new RequestError("forbidden", `you are not in #${room}; /join ${room} first`);
    }
    const until = this.#backend.policy.mutedUntil(user.name);
    if (until !== undefined) {
      const min = Math.ceil((until - Date.now()) / 60_000);
      throw new RequestError(
        "forbidden",
        `you are muted for ${min} more minute${min === 1 ? "" : "s"}`,
      );
    }
    const trimmed = text.trim();
    const chars = codePointLength(trimmed, TOPIC_MAX_CHARS);
    if (chars > TOPIC_MAX_CHARS) {
      throw new RequestError(
        "too_large",
        `the topic is longer than ${TOPIC_MAX_CHARS} characters; shorten it`,
      );
    }
    if (_CONTROL.test(trimmed)) {
      throw new RequestError(
        "bad_request",
        "a topic is one line of text: no line breaks, tabs or other control characters",
      );
    }
    this.#flood.mayPost(user.name);
    const policy = this.#backend.policy;
    if (trimmed === "" && policy.topic(room) === undefined) return undefined;
    const topic = { text: trimmed, by: user.name, ts: Date.now() };
    try {
      await policy.setTopic(room, topic);
    } catch (e) {
      this.#log.error("room topic not stored", {
        room,
        error: ((e as Error)?.cause as Error)?.message ?? String(e),
      });
      throw storeError(e);
    }
    return trimmed === "" ? undefined : topic;
  }

  /** Distinct user names in `room`. */
  usersIn(room: string): string[] {
    return this.#backend.presence.usersIn(room);
  }

  /** Connected users and the rooms each is in. */
  online(): { name: string; rooms: string[]; idleMs: number; connections: number }[] {
    for (const user of this.#members.users()) this.#members.publish(user);
    const now = Date.now();
    return this.#backend.presence.online().map((u) => ({
      name: u.name,
      rooms: u.rooms,
      idleMs: Math.max(0, now - u.lastActivity),
      connections: u.connections,
    }));
  }

  /**
   * Joins `room` and returns the join reply: the users in it and a page of
   * history up to the feed's watermark at the time the connection was
   * added. Live messages above it reach the connection after the reply.
   */
  async join(
    c: ChatConn,
    room: string,
    q: { after: number | undefined; limit: number },
  ): Promise<Record<string, unknown>> {
    c.listening = true;
    const user = c.ctx.user.name;
    if (!c.rooms.has(room)) {
      // synchronous: caps are checked and the member added in one step
      this.#checkCaps(c, room);
      if (!this.#roomExists(room)) this.#flood.mayCreate(user, this.roomNames().length);
      // presence announces the join (chat.joined) if the user was in the room on no node
      this.#members.add(c, room);
    }
    c.joinedAny = true;
    this.#delivery.hold(c, room);
    try {
      const upto = this.#backend.feed.watermark();
      const users = fitList(this.usersIn(room), USERS_BUDGET);
      const keep = this.visibleTo(user);
      const topic = this.#backend.policy.topic(room);
      const head = {
        room,
        users: users.items,
        ...(users.more ? { usersMore: true } : {}),
        ...(topic ? { topic } : {}),
      };
      // 12: gap and more; 80: the epoch
      const budget = REPLY_BUDGET - jsonBytes(head) - CURSOR_BYTES - 92;
      const [gap, page] = await Promise.all([
        q.after !== undefined && this.#backend.log.gap(room, q.after),
        this.#backend.log.page({ room }, {
          after: q.after,
          before: upto + 1,
          limit: q.limit,
          budget,
          keep,
        }),
      ]);
      const { messages, ...rest } = page;
      return {
        ...head,
        ...(gap ? { gap: true } : {}),
        history: messages,
        ...rest,
        epoch: this.#backend.log.epoch(),
      };
    } finally {
      this.#delivery.release(c, room);
    }
  }

  /** Whether `room` exists: has members (here or on any node), history or a topic. */
  #roomExists(room: string): boolean {
    return this.#members.has(room) || this.#backend.presence.usersIn(room).length > 0 ||
      this.#backend.log.hasRoom(room) || this.#backend.policy.topic(room) !== undefined;
  }

  #checkCaps(c: ChatConn, room: string): void {
    const user = c.ctx.user.name;
    const mine = this.#members.roomCount(user);
    if (!this.#members.userIn(user, room) && mine >= this.config.maxRoomsPerUser) {
      throw new RequestError(
        "too_many_rooms",
        `you are in ${mine} rooms (the most one user may be in); leave one first`,
      );
    }
    if (c.rooms.size >= this.config.maxRoomsPerConnection) {
      throw new RequestError(
        "too_many_rooms",
        `this connection is in ${c.rooms.size} rooms already; leave one first`,
      );
    }
  }

  /** Removes the connection from `room`. */
  leave(c: ChatConn, room: string): void {
    if (!c.rooms.has(room)) {
      throw new RequestError("not_found", `you are not in #${room}`);
    }
    this.#removeMember(c, room, {});
  }

  /**
   * Checks rights and limits, and stores a message; resolves once it is durable.
   * A connection that has joined a room may post only to rooms it is in now
   * (`not_joined`: it left, or was kicked); one that never joined a room
   * (a one-shot `parley send`) may post to any room.
   */
  async send(c: ChatConn, req: SendRequest): Promise<Appended> {
    const from = c.ctx.user.name;
    if (req.room !== undefined && c.joinedAny && !c.rooms.has(req.room)) {
      throw new RequestError(
        "not_joined",
        `you are not in #${req.room}; /join ${req.room} first`,
      );
    }
    const policy = this.#backend.policy;
    const until = policy.mutedUntil(from);
    if (until !== undefined) {
      const min = Math.ceil((until - Date.now()) / 60_000);
      throw new RequestError(
        "forbidden",
        `you are muted for ${min} more minute${min === 1 ? "" : "s"}`,
      );
    }
    const size = _ENC.encode(req.text).byteLength;
    if (size > this.config.maxTextBytes) {
      throw new RequestError(
        "too_large",
        `message is ${size} bytes; the limit is ${this.config.maxTextBytes}`,
      );
    }
    if (req.text.trim() === "" && !req.file) {
      throw new RequestError("bad_request", "empty message");
    }
    this.#flood.mayPost(from);
    if (req.to !== undefined && !(await this.userExists(req.to))) {
      throw new RequestError("not_found", `no user named ${req.to}`);
    }
    const msg: Omit<ChatMessage, "id"> = {
      ...(req.room !== undefined ? { room: req.room } : { to: req.to! }),
      from,
      text: req.text,
      ts: Date.now(),
    };
    if (req.me) msg.me = true;
    if (req.file) msg.file = req.file;
    const mentions = findMentions(req.text);
    if (mentions.length) msg.mentions = mentions;
    const stored = jsonBytes({ id: "", ...msg }) + 20;
    if (stored > MAX_MESSAGE_JSON) {
      throw new RequestError(
        "too_large",
        `message is ${stored} bytes as stored (JSON); the limit is ${MAX_MESSAGE_JSON}`,
      );
    }
    if (msg.room !== undefined && !this.#roomExists(msg.room)) {
      this.#flood.mayCreate(from, this.roomNames().length);
    }
    try {
      return await this.#backend.log.append(msg, req.key);
    } catch (e) {
      const cause = (e as Error)?.cause ?? e;
      this.#log.error("chat message not stored", {
        from: msg.from,
        error: (cause as Error)?.message ?? String(cause),
      });
      throw storeError(e);
    }
  }

  /**
   * A page of a room's or of the user's direct-message history, without
   * ignored users, with the log's epoch.
   */
  async history(
    user: string,
    where: { room: string } | { dm: true },
    q: { after?: number | undefined; before?: number | undefined; limit: number },
  ): Promise<HistoryPage & { epoch: string }> {
    const epoch = this.#backend.log.epoch();
    const page = await this.#backend.log.page("room" in where ? where : { dm: user }, {
      ...q,
      budget: REPLY_BUDGET - CURSOR_BYTES - 80,
      keep: this.visibleTo(user),
    });
    return { ...page, epoch };
  }

  /** The message `id` if `user` may see it; otherwise `not_found`. */
  async get(user: string, id: number): Promise<ChatMessage> {
    const msg = await this.#backend.log.get(String(id), user);
    if (!msg || this.#backend.policy.ignoring(user, msg.from)) {
      throw new RequestError("not_found", `no message with id ${id} (it may have expired)`);
    }
    return msg;
  }

  /**
   * Undelivered DMs for the connection's user, as many as fit a reply;
   * marks them delivered. `more` says another call returns more.
   */
  async inbox(c: ChatConn, limit: number): Promise<{ messages: ChatMessage[]; more: boolean }> {
    c.listening = true;
    const user = c.ctx.user.name;
    const policy = this.#backend.policy;
    const page = await this.#backend.log.page({ dm: user }, {
      after: policy.delivered(user),
      limit,
      budget: REPLY_BUDGET - 64,
      keep: (m) => m.to === user && !policy.ignoring(user, m.from),
    });
    const last = page.messages.at(-1);
    if (last) policy.markDelivered(user, Number(last.id));
    return { messages: page.messages, more: page.more };
  }

  /** A filter that leaves out messages from users `user` ignores. */
  visibleTo(user: string): ((m: ChatMessage) => boolean) | undefined {
    const ign = this.#backend.policy.ignores(user);
    return ign.length === 0 ? undefined : (m) => !ign.includes(m.from);
  }

  /** Users `user` ignores. */
  ignores(user: string): string[] {
    return [...this.#backend.policy.ignores(user)];
  }

  /** Adds `other` to (or removes it from) `user`'s ignore list, within `maxIgnores`. */
  async ignore(user: string, other: string, on: boolean): Promise<void> {
    if (other === user) throw new RequestError("bad_request", "you cannot ignore yourself");
    if (on && !(await this.userExists(other))) {
      throw new RequestError("not_found", `no user named ${other}`);
    }
    const now = this.#backend.policy.ignores(user);
    if (on && !now.includes(other) && now.length >= this.config.maxIgnores) {
      throw new RequestError(
        "too_large",
        `you ignore ${now.length} users, the most this server keeps; unignore one first`,
      );
    }
    await this.#backend.policy.setIgnore(user, other, on);
  }

  /** Removes every connection of `user` from `room`. Returns how many were removed. */
  kick(user: string, room: string, by: string, reason?: string): number {
    let n = 0;
    for (const m of [...this.#members.in(room)]) {
      if (m.ctx.user.name !== user) continue;
      m.ctx.session.emit(CHAT_KICKED, { room, by, ...(reason ? { reason } : {}) });
      this.#removeMember(m, room, { kicked: by });
      n++;
    }
    return n;
  }

  /** Stops listening to the backend and drops held messages. Idempotent. */
  close(): void {
    for (const stop of this.#stop.splice(0)) stop();
    this.moderation.close();
    this.#delivery.close();
  }

  /** Removes `c` from `room`; presence announces the leave, with `why`, if it changes. */
  #removeMember(c: ChatConn, room: string, why: Record<string, unknown>): void {
    const key = `${c.ctx.user.name}\n${room}`;
    this.#why.set(key, why);
    try {
      this.#members.remove(c, room);
    } finally {
      this.#why.delete(key);
    }
  }

  /**
   * Presence says `user` changed somewhere: tells this node's members of
   * each room the user entered (`chat.joined`) or is now in on no node
   * (`chat.left`). The reason of a leave is known where it happened; on
   * other nodes a leave of a user who is offline everywhere says `quit`.
   */
  #presenceChanged(user: string): void {
    const now = this.#backend.presence.get(user);
    const before = this.#present.get(user);
    const after = new Set(now?.rooms ?? []);
    if (after.size > 0) this.#present.set(user, after);
    else this.#present.delete(user);
    for (const room of after) {
      if (!before?.has(room)) this.#toRoom(room, CHAT_JOINED, { room, user }, user);
    }
    for (const room of before ?? []) {
      if (after.has(room)) continue;
      const why = this.#why.get(`${user}\n${room}`) ?? (now ? {} : { quit: true });
      this.#toRoom(room, CHAT_LEFT, { room, user, ...why }, user);
    }
  }

  /**
   * Tells this node's members of `room` (the setter's connections too) its
   * new topic (an empty text: cleared).
   */
  #topicChanged(room: string, topic: Topic): void {
    const ev: ChatTopicEvent = { room, text: topic.text, by: topic.by, ts: topic.ts };
    let encoded: ReturnType<typeof encodeEvent> | undefined;
    for (const m of this.#members.in(room)) {
      m.ctx.session.emitEncoded(encoded ??= encodeEvent(CHAT_TOPIC_EVENT, ev));
    }
  }

  /** Sends an event to this node's members of `room`, except `user`'s own connections. */
  #toRoom(room: string, ev: string, data: unknown, user: string): void {
    let encoded: ReturnType<typeof encodeEvent> | undefined;
    for (const m of this.#members.in(room)) {
      if (m.ctx.user.name !== user) m.ctx.session.emitEncoded(encoded ??= encodeEvent(ev, data));
    }
  }
}
