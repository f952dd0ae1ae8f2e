/**
 * The chat service: room membership, message fan-out, direct-message
 * delivery, presence, flood control and moderation. Request handlers
 * (chat_ops.ts) validate arguments and call into it.
 *
 * Fan-out never waits for a client: `Session.emit` only queues, and a
 * session whose queue grows past its bound is closed (the client recovers
 * by message id when it reconnects). A message is delivered only once its
 * journal line is durable, so nobody sees a message that a restart would
 * forget. Ids are taken and lines queued in one synchronous step, and a
 * journal commits in append order, so every client sees a room's messages
 * in id order.
 *
 * @module
 */
import { encodeEvent } from "../../protocol/session.ts";
import type { ClientContext } from "../context.ts";
import { RequestError } from "../errors.ts";
import type { ClientDirectory } from "../feature.ts";
import type { Logger } from "../log.ts";
import type { Accounts } from "../backend/accounts.ts";
import type { ChatConfig } from "./chat_config.ts";
import { type ChatMessage, type FileRef, findMentions, idNum } from "./chat_message.ts";
import type { ChatState } from "./chat_state.ts";
import { jsonBytes, MAX_MESSAGE_JSON, REPLY_BUDGET } from "./chat_pager.ts";
import type { ChatStore } from "./chat_store.ts";
import { TokenBucket } from "./token_bucket.ts";

/** Per-connection chat state. */
export interface ChatConn {
  ctx: ClientContext;
  rooms: Set<string>;
  /** Whether this connection reads chat (joined a room or fetched its inbox). */
  listening: boolean;
}

/** What a client asks to send. */
export interface SendRequest {
  room?: string | undefined;
  to?: string | undefined;
  text: string;
  me?: boolean | undefined;
  file?: FileRef | undefined;
}

const _ENC = new TextEncoder();

/** Chat state shared by all connections of one server. */
export class ChatService {
  readonly config: ChatConfig;
  readonly store: ChatStore;
  readonly state: ChatState;
  #users: Accounts;
  #clients: ClientDirectory;
  #log: Logger;
  #conns = new Map<number, ChatConn>();
  #members = new Map<string, Set<ChatConn>>();
  /** Per room: connections each user has in it (so presence checks are O(1)). */
  #userConns = new Map<string, Map<string, number>>();
  #buckets = new Map<string, TokenBucket>();
  /** Per user: rooms any of their connections is in. */
  #userRooms = new Map<string, Set<string>>();
  /** Per user: room creation allowance. */
  #creates = new Map<string, TokenBucket>();

  constructor(deps: {
    config: ChatConfig;
    store: ChatStore;
    state: ChatState;
    users: Accounts;
    clients: ClientDirectory;
    log: Logger;
  }) {
    this.config = deps.config;
    this.store = deps.store;
    this.state = deps.state;
    this.#users = deps.users;
    this.#clients = deps.clients;
    this.#log = deps.log;
  }

  /** The chat state of a connection (created on first use). */
  conn(ctx: ClientContext): ChatConn {
    let c = this.#conns.get(ctx.connId);
    if (!c) {
      c = { ctx, rooms: new Set(), listening: false };
      this.#conns.set(ctx.connId, c);
    }
    return c;
  }

  /** Whether an account named `user` exists. */
  async userExists(user: string): Promise<boolean> {
    return (await this.#users.get(user)) !== undefined;
  }

  /** Refuses a banned user's connection. */
  login(ctx: ClientContext): void {
    const ban = this.state.ban(ctx.user.name);
    if (ban) {
      this.#log.info("banned user refused", { user: ctx.user.name });
      this.#close(ctx, `you are banned from this server${_why(ban.reason)}`);
    }
  }

  /** Removes a closed connection from its rooms and tells the rooms. */
  logout(ctx: ClientContext): void {
    const c = this.#conns.get(ctx.connId);
    if (!c) return;
    this.#conns.delete(ctx.connId);
    for (const room of c.rooms) this.#removeMember(c, room, { quit: true });
    if (this.#buckets.get(ctx.user.name)?.full()) this.#buckets.delete(ctx.user.name);
    if (this.#creates.get(ctx.user.name)?.full()) this.#creates.delete(ctx.user.name);
  }

  /** All room names: rooms with history or members. */
  roomNames(): string[] {
    return [...new Set([...this.store.rooms(), ...this.#members.keys()])].sort();
  }

  /** Distinct user names in `room`. */
  usersIn(room: string): string[] {
    return [...(this.#userConns.get(room)?.keys() ?? [])].sort();
  }

  /** Connected users and the rooms each is in. */
  online(): { name: string; rooms: string[]; idleMs: number; connections: number }[] {
    const by = new Map<string, { rooms: Set<string>; last: number; n: number }>();
    for (const ctx of this.#clients.all()) {
      const e = by.get(ctx.user.name) ?? { rooms: new Set<string>(), last: 0, n: 0 };
      for (const r of this.#conns.get(ctx.connId)?.rooms ?? []) e.rooms.add(r);
      e.last = Math.max(e.last, ctx.session.lastActivity);
      e.n++;
      by.set(ctx.user.name, e);
    }
    const now = Date.now();
    return [...by].map(([name, e]) => ({
      name,
      rooms: [...e.rooms].sort(),
      idleMs: Math.max(0, now - e.last),
      connections: e.n,
    })).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Adds the connection to `room`; returns the users in it. */
  join(c: ChatConn, room: string): string[] {
    c.listening = true;
    if (c.rooms.has(room)) return this.usersIn(room);
    const user = c.ctx.user.name;
    const mine = this.#userRooms.get(user);
    const cfg = this.config;
    if (!mine?.has(room) && (mine?.size ?? 0) >= cfg.maxRoomsPerUser) {
      throw new RequestError(
        "too_many_rooms",
        `you are in ${mine!.size} rooms (the most one user may be in); leave one first`,
      );
    }
    if (c.rooms.size >= cfg.maxRoomsPerConnection) {
      throw new RequestError(
        "too_many_rooms",
        `this connection is in ${c.rooms.size} rooms already; leave one first`,
      );
    }
    if (!this.#members.has(room) && !this.store.hasRoom(room)) this.#mayCreate(user);
    let counts = this.#userConns.get(room);
    if (!counts) this.#userConns.set(room, counts = new Map());
    const wasIn = counts.has(user);
    counts.set(user, (counts.get(user) ?? 0) + 1);
    let set = this.#members.get(room);
    if (!set) this.#members.set(room, set = new Set());
    set.add(c);
    c.rooms.add(room);
    if (!wasIn) {
      if (mine) mine.add(room);
      else this.#userRooms.set(user, new Set([room]));
      this.#toRoom(room, "chat.joined", { room, user }, c);
    }
    return this.usersIn(room);
  }

  /** Checks the server's room cap and `user`'s room creation rate before a new room. */
  #mayCreate(user: string): void {
    const cfg = this.config;
    if (this.roomNames().length >= cfg.maxRooms) {
      throw new RequestError("busy", `this server has its maximum of ${cfg.maxRooms} rooms`);
    }
    let bucket = this.#creates.get(user);
    if (!bucket) {
      bucket = new TokenBucket(cfg.roomCreatePerMinute / 60, cfg.roomCreateBurst);
      this.#creates.set(user, bucket);
    }
    if (!bucket.take()) {
      throw new RequestError(
        "rate_limited",
        `you may create at most ${cfg.roomCreatePerMinute} rooms per minute ` +
          `(try again in ${Math.ceil(bucket.waitMs() / 1000)} s, or join an existing room)`,
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

  /** Checks rights and limits, stores, and delivers a message. */
  async send(c: ChatConn, req: SendRequest): Promise<ChatMessage> {
    const from = c.ctx.user.name;
    if (this.state.ban(from)) throw new RequestError("forbidden", "you are banned");
    const until = this.state.mutedUntil(from);
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
    let bucket = this.#buckets.get(from);
    if (!bucket) {
      this.#buckets.set(
        from,
        bucket = new TokenBucket(this.config.ratePerSecond, this.config.rateBurst),
      );
    }
    if (!bucket.take()) {
      throw new RequestError(
        "rate_limited",
        `slow down: at most ${this.config.ratePerSecond} messages per second ` +
          `(try again in ${bucket.waitMs()} ms)`,
      );
    }
    if (req.to !== undefined && !(await this.userExists(req.to))) {
      throw new RequestError("not_found", `no user named ${req.to}`);
    }
    const msg: ChatMessage = {
      id: "",
      ...(req.room !== undefined ? { room: req.room } : { to: req.to! }),
      from,
      text: req.text,
      ts: Date.now(),
    };
    if (req.me) msg.me = true;
    if (req.file) msg.file = req.file;
    const mentions = findMentions(req.text);
    if (mentions.length) msg.mentions = mentions;
    const stored = jsonBytes(msg) + 20;
    if (stored > MAX_MESSAGE_JSON) {
      throw new RequestError(
        "too_large",
        `message is ${stored} bytes as stored (JSON); the limit is ${MAX_MESSAGE_JSON}`,
      );
    }
    if (msg.room !== undefined && !this.#members.has(msg.room) && !this.store.hasRoom(msg.room)) {
      this.#mayCreate(from);
    }
    try {
      msg.id = this.store.nextId();
      if (msg.room !== undefined) await this.#storeRoomMessage(msg);
      else await this.#storeDm(msg);
    } catch (e) {
      throw this.#storeError(e, msg);
    }
    return msg;
  }

  /** Stores a room message, then delivers it to the room. */
  async #storeRoomMessage(msg: ChatMessage): Promise<void> {
    await this.store.addRoomMessage(msg);
    const ev = encodeEvent("chat.msg", msg);
    for (const m of this.#members.get(msg.room!) ?? []) {
      if (!this.state.ignoring(m.ctx.user.name, msg.from)) m.ctx.session.emitEncoded(ev);
    }
  }

  /**
   * Stores a direct message in the recipient's and the sender's logs; each
   * side is told once its own log has it, so each sees its DMs in id order.
   */
  async #storeDm(msg: ChatMessage): Promise<void> {
    const { from } = msg;
    const to = msg.to!;
    const toRecipient = this.store.addDm(msg, to).then(() => {
      let reached = false;
      if (!this.state.ignoring(to, from)) {
        for (const ctx of this.#clients.byUser(to)) {
          ctx.session.emit("chat.msg", msg);
          if (this.#conns.get(ctx.connId)?.listening) reached = true;
        }
      }
      if (reached) this.state.markDelivered(to, idNum(msg.id));
    });
    if (to === from) return await toRecipient;
    const toSender = this.store.addDm(msg, from).then(() => {
      for (const ctx of this.#clients.byUser(from)) ctx.session.emit("chat.msg", msg);
    });
    await Promise.all([toRecipient, toSender]);
  }

  /** The request error for a message that could not be stored. */
  #storeError(e: unknown, msg: ChatMessage): RequestError {
    if (e instanceof RequestError) return e;
    const cause = (e as Error)?.cause ?? e;
    this.#log.error("chat message not stored", {
      id: msg.id,
      from: msg.from,
      error: (cause as Error)?.message ?? String(cause),
    });
    if (isDiskFull(cause)) {
      return new RequestError(
        "disk_full",
        "the server's disk is full; the message was not stored. Try again later",
        { cause: e },
      );
    }
    return new RequestError("internal", "the server could not store the message", { cause: e });
  }

  /**
   * Undelivered DMs for the connection's user, as many as fit a reply;
   * marks them delivered. `more` says another call returns more.
   */
  inbox(c: ChatConn, limit: number): { messages: ChatMessage[]; more: boolean } {
    c.listening = true;
    const user = c.ctx.user.name;
    const page = this.store.dmHistory(user, {
      after: this.state.delivered(user),
      limit,
      budget: REPLY_BUDGET - 64,
      keep: (m) => m.to === user && !this.state.ignoring(user, m.from),
    });
    const last = page.messages.at(-1);
    if (last) this.state.markDelivered(user, idNum(last.id));
    return { messages: page.messages, more: page.more };
  }

  /** A filter that leaves out messages from users `user` ignores. */
  visibleTo(user: string): ((m: ChatMessage) => boolean) | undefined {
    const ign = this.state.ignores(user);
    return ign.length === 0 ? undefined : (m) => !ign.includes(m.from);
  }

  /** Removes every connection of `user` from `room`. Returns how many were removed. */
  kick(user: string, room: string, by: string, reason?: string): number {
    let n = 0;
    for (const m of [...(this.#members.get(room) ?? [])]) {
      if (m.ctx.user.name !== user) continue;
      m.ctx.session.emit("chat.kicked", { room, by, ...(reason ? { reason } : {}) });
      this.#removeMember(m, room, { kicked: by });
      n++;
    }
    return n;
  }

  /** Bans `user`: records it and closes their connections. */
  ban(user: string, by: string, reason?: string): number {
    this.state.setBan(user, { by, ...(reason ? { reason } : {}) });
    const conns = this.#clients.byUser(user);
    for (const ctx of conns) {
      this.#close(ctx, `you were banned by ${by}${_why(reason)}`);
    }
    this.#log.info("user banned", { user, by });
    return conns.length;
  }

  /** Tells every connection of `user` something (moderation notices). */
  notify(user: string, text: string): void {
    for (const ctx of this.#clients.byUser(user)) ctx.session.emit("chat.notice", { text });
  }

  /** Closes a connection with a `forbidden` error; the close runs on, and its failure is logged. */
  #close(ctx: ClientContext, why: string): void {
    void ctx.session.close(new RequestError("forbidden", why)).catch((e: unknown) => {
      this.#log.error("cannot close a banned user's connection", {
        user: ctx.user.name,
        error: (e as Error).message,
      });
    });
  }

  #removeMember(c: ChatConn, room: string, extra: Record<string, unknown>): void {
    c.rooms.delete(room);
    const set = this.#members.get(room);
    if (!set) return;
    set.delete(c);
    if (set.size === 0) this.#members.delete(room);
    const user = c.ctx.user.name;
    const counts = this.#userConns.get(room);
    const left = (counts?.get(user) ?? 1) - 1;
    if (left > 0) counts!.set(user, left);
    else counts?.delete(user);
    if (counts?.size === 0) this.#userConns.delete(room);
    if (left <= 0) {
      const mine = this.#userRooms.get(user);
      mine?.delete(room);
      if (mine?.size === 0) this.#userRooms.delete(user);
      this.#toRoom(room, "chat.left", { room, user, ...extra }, undefined);
    }
  }

  #toRoom(room: string, ev: string, data: unknown, except: ChatConn | undefined): void {
    const encoded = encodeEvent(ev, data);
    for (const m of this.#members.get(room) ?? []) {
      if (m !== except) m.ctx.session.emitEncoded(encoded);
    }
  }
}

function _why(reason: string | undefined): string {
  return reason ? `: ${reason}` : "";
}

/** Whether `e` says the disk (or the user's share of it) is full. */
function isDiskFull(e: unknown): boolean {
  return (e as { code?: unknown } | undefined)?.code === "ENOSPC" ||
    (e instanceof Error && /no space left on device/i.test(e.message));
}
