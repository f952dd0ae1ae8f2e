/**
 * The chat service: room membership, message fan-out, direct-message
 * delivery, presence, flood control and moderation. Request handlers
 * (chat_ops.ts) validate arguments and call into it.
 *
 * Fan-out never waits for a client: `Session.emit` only queues, and a
 * session whose queue grows past its bound is closed (the client recovers
 * by message id when it reconnects). Ids are taken and events queued in one
 * synchronous step, so every client sees a room's messages in id order.
 *
 * @module
 */
import { encodeEvent } from "../../protocol/session.ts";
import type { ClientContext } from "../context.ts";
import { RequestError } from "../errors.ts";
import type { ClientDirectory } from "../feature.ts";
import type { Logger } from "../log.ts";
import type { UserStore } from "../users.ts";
import type { ChatConfig } from "./chat_config.ts";
import { type ChatMessage, type FileRef, findMentions, idNum } from "./chat_message.ts";
import type { ChatState } from "./chat_state.ts";
import type { ChatStore, HistoryPage } from "./chat_store.ts";
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
  #users: UserStore;
  #clients: ClientDirectory;
  #log: Logger;
  #conns = new Map<number, ChatConn>();
  #members = new Map<string, Set<ChatConn>>();
  /** Per room: connections each user has in it (so presence checks are O(1)). */
  #userConns = new Map<string, Map<string, number>>();
  #buckets = new Map<string, TokenBucket>();

  constructor(deps: {
    config: ChatConfig;
    store: ChatStore;
    state: ChatState;
    users: UserStore;
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
      void ctx.session.close(
        new RequestError("forbidden", `you are banned from this server${_why(ban.reason)}`),
      );
    }
  }

  /** Removes a closed connection from its rooms and tells the rooms. */
  logout(ctx: ClientContext): void {
    const c = this.#conns.get(ctx.connId);
    if (!c) return;
    this.#conns.delete(ctx.connId);
    for (const room of c.rooms) this.#removeMember(c, room, { quit: true });
    if (this.#buckets.get(ctx.user.name)?.full()) this.#buckets.delete(ctx.user.name);
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
    if (!c.rooms.has(room)) {
      if (!this.#members.has(room) && !this.store.hasRoom(room)) {
        if (this.roomNames().length >= this.config.maxRooms) {
          throw new RequestError(
            "busy",
            `this server has its maximum of ${this.config.maxRooms} rooms`,
          );
        }
      }
      if (c.rooms.size >= this.config.maxRoomsPerConnection) {
        throw new RequestError(
          "busy",
          `you are in ${c.rooms.size} rooms already; leave one first`,
        );
      }
      const user = c.ctx.user.name;
      let counts = this.#userConns.get(room);
      if (!counts) this.#userConns.set(room, counts = new Map());
      const wasIn = counts.has(user);
      counts.set(user, (counts.get(user) ?? 0) + 1);
      let set = this.#members.get(room);
      if (!set) this.#members.set(room, set = new Set());
      set.add(c);
      c.rooms.add(room);
      if (!wasIn) this.#toRoom(room, "chat.joined", { room, user }, c);
    }
    return this.usersIn(room);
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
    if (req.room !== undefined && !this.#members.has(req.room) && !this.store.hasRoom(req.room)) {
      if (this.roomNames().length >= this.config.maxRooms) {
        throw new RequestError(
          "busy",
          `this server has its maximum of ${this.config.maxRooms} rooms`,
        );
      }
    }
    const msg: ChatMessage = {
      id: this.store.nextId(),
      ...(req.room !== undefined ? { room: req.room } : { to: req.to! }),
      from,
      text: req.text,
      ts: Date.now(),
    };
    if (req.me) msg.me = true;
    if (req.file) msg.file = req.file;
    const mentions = findMentions(req.text);
    if (mentions.length) msg.mentions = mentions;
    if (msg.room !== undefined) {
      const ev = encodeEvent("chat.msg", msg);
      for (const m of this.#members.get(msg.room) ?? []) {
        if (!this.state.ignoring(m.ctx.user.name, from)) m.ctx.session.emitEncoded(ev);
      }
      await this.store.addRoomMessage(msg);
    } else {
      const to = msg.to!;
      let reached = false;
      const ignored = this.state.ignoring(to, from);
      for (const ctx of this.#clients.byUser(to)) {
        if (ignored) break;
        ctx.session.emit("chat.msg", msg);
        if (this.#conns.get(ctx.connId)?.listening) reached = true;
      }
      if (to !== from) {
        for (const ctx of this.#clients.byUser(from)) ctx.session.emit("chat.msg", msg);
      }
      if (reached) this.state.markDelivered(to, idNum(msg.id));
      await this.store.addDm(msg);
    }
    return msg;
  }

  /** Undelivered DMs for the connection's user; marks them delivered. */
  inbox(c: ChatConn, limit: number): HistoryPage {
    c.listening = true;
    const user = c.ctx.user.name;
    const page = this.store.dmHistory(user, {
      after: this.state.delivered(user),
      limit: 1_000_000,
    });
    const mine = page.messages.filter((m) => m.to === user && !this.state.ignoring(user, m.from));
    const out = mine.slice(0, limit);
    const last = out.at(-1);
    if (last) this.state.markDelivered(user, idNum(last.id));
    return { messages: out, more: mine.length > limit };
  }

  /** Filters out messages from users `user` ignores. */
  visible(user: string, page: HistoryPage): HistoryPage {
    const ign = this.state.ignores(user);
    if (ign.length === 0) return page;
    return { ...page, messages: page.messages.filter((m) => !ign.includes(m.from)) };
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
      void ctx.session.close(
        new RequestError("forbidden", `you were banned by ${by}${_why(reason)}`),
      );
    }
    this.#log.info("user banned", { user, by });
    return conns.length;
  }

  /** Tells every connection of `user` something (moderation notices). */
  notify(user: string, text: string): void {
    for (const ctx of this.#clients.byUser(user)) ctx.session.emit("chat.notice", { text });
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
