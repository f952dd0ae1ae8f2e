/**
 * Delivery from the feed to this node's connections. Room messages go to
 * the room's members here (held for a connection that is joining the room,
 * released after its join reply); a direct message goes to every connection
 * of its recipient and of its sender, and raises the recipient's delivery
 * mark when one of the recipient's reading connections got it. Messages
 * from ignored users are left out. The feed calls in id order, so each
 * connection gets messages in id order.
 *
 * @module
 */
import { type EncodedEvent, encodeEvent } from "../../protocol/session.ts";
import type { ChatMessage, ChatPolicy } from "../backend/chat.ts";
import type { ClientDirectory } from "../feature.ts";
import type { ChatConn, ChatMembers } from "./chat_members.ts";
import { CHAT_MSG } from "../../protocol/ops/chat.ts";

/** Hands feed messages to connections. */
export class ChatDelivery {
  #members: ChatMembers;
  #policy: ChatPolicy;
  #clients: ClientDirectory;
  /** Holds to end at the next timer tick. */
  #pending: [ChatConn, string][] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(deps: { members: ChatMembers; policy: ChatPolicy; clients: ClientDirectory }) {
    this.#members = deps.members;
    this.#policy = deps.policy;
    this.#clients = deps.clients;
  }

  /** Delivers one message from the feed. */
  deliver(msg: ChatMessage): void {
    let ev: EncodedEvent | undefined;
    if (msg.room !== undefined) {
      for (const m of this.#members.in(msg.room)) {
        if (this.#policy.ignoring(m.ctx.user.name, msg.from)) continue;
        const held = m.holding?.get(msg.room);
        if (held) held.queue.push(msg);
        else m.ctx.session.emitEncoded(ev ??= encodeEvent(CHAT_MSG, msg));
      }
      return;
    }
    const { from } = msg;
    const to = msg.to!;
    let reached = false;
    if (!this.#policy.ignoring(to, from)) {
      for (const ctx of this.#clients.byUser(to)) {
        ctx.session.emitEncoded(ev ??= encodeEvent(CHAT_MSG, msg));
        if (this.#members.peek(ctx)?.listening) reached = true;
      }
    }
    if (reached) this.#policy.markDelivered(to, Number(msg.id));
    if (to === from) return;
    for (const ctx of this.#clients.byUser(from)) {
      ctx.session.emitEncoded(ev ??= encodeEvent(CHAT_MSG, msg));
    }
  }

  /** Holds `room`'s live messages for `c` until {@linkcode ChatDelivery.release}. */
  hold(c: ChatConn, room: string): void {
    const held = c.holding?.get(room);
    if (held) held.holders++;
    else (c.holding ??= new Map()).set(room, { holders: 1, queue: [] });
  }

  /**
   * Ends one hold of `room` for `c` once the current request's reply is
   * queued (replies are queued in microtasks after a handler returns, so a
   * timer of 0 runs after them); the last hold's end delivers what was held.
   * One timer serves every release pending at the time.
   */
  release(c: ChatConn, room: string): void {
    this.#pending.push([c, room]);
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      for (const [conn, r] of this.#pending.splice(0)) this.#end(conn, r);
    }, 0);
  }

  #end(c: ChatConn, room: string): void {
    const held = c.holding?.get(room);
    if (!held || --held.holders > 0) return;
    c.holding!.delete(room);
    if (c.holding!.size === 0) c.holding = undefined;
    for (const msg of held.queue) c.ctx.session.emit(CHAT_MSG, msg);
  }

  /** Cancels pending releases. Idempotent. */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending = [];
  }
}
