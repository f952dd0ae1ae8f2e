/**
 * This node's chat connections: per-connection state (a
 * {@linkcode ConnectionState} owned by the chat feature), who is in which room here,
 * and this node's entries in {@linkcode Presence}.
 *
 * A connection that is joining a room *holds* that room's live messages
 * while its join reads history (the watermark protocol of
 * `../backend/chat.ts`); the join releases them after its reply.
 *
 * @module
 */
import type { ChatMessage, Presence } from "../backend/chat.ts";
import { ConnectionState } from "../connection_state.ts";
import type { ClientContext } from "../context.ts";

/** Live messages of one room held for a connection while it joins. */
export interface Held {
  /** Joins in progress on this room. */
  holders: number;
  queue: ChatMessage[];
}

/** Per-connection chat state. */
export interface ChatConn {
  readonly ctx: ClientContext;
  readonly rooms: Set<string>;
  /** Whether this connection reads chat (joined a room or fetched its inbox). */
  listening: boolean;
  /**
   * Whether this connection has joined a room (and may then post only to rooms it is in);
   * a connection that never joined one, such as a one-shot `parley send`, posts from outside.
   */
  joinedAny: boolean;
  /** Rooms whose live messages are held for this connection (none: no map). */
  holding?: Map<string, Held> | undefined;
}

/** Connections of this node and the rooms they are in. */
export class ChatMembers {
  #conns = new ConnectionState<ChatConn>((ctx) => this.#open(ctx));
  #byUser = new Map<string, Set<ChatConn>>();
  #rooms = new Map<string, Set<ChatConn>>();
  /** Per user: per room, how many of their connections here are in it. */
  #userRooms = new Map<string, Map<string, number>>();
  #presence: Presence;

  constructor(presence: Presence) {
    this.#presence = presence;
  }

  /** The chat state of a connection (created, and shown online, on first use). */
  conn(ctx: ClientContext): ChatConn {
    return this.#conns.get(ctx);
  }

  #open(ctx: ClientContext): ChatConn {
    const c: ChatConn = {
      ctx,
      rooms: new Set(),
      listening: false,
      joinedAny: false,
    };
    // a request that outlived its session must not show the user online again
    if (ctx.session.state !== "open") return c;
    const user = ctx.user.name;
    let set = this.#byUser.get(user);
    if (!set) this.#byUser.set(user, set = new Set());
    set.add(c);
    this.publish(user);
    return c;
  }

  /** The chat state of a connection, if it has one. */
  peek(ctx: ClientContext): ChatConn | undefined {
    return this.#conns.peek(ctx);
  }

  /** Forgets a closed connection (after it left its rooms). */
  drop(c: ChatConn): void {
    this.#conns.delete(c.ctx);
    const user = c.ctx.user.name;
    const set = this.#byUser.get(user);
    set?.delete(c);
    if (set?.size === 0) this.#byUser.delete(user);
    this.publish(user);
  }

  /** Users with a connection here. */
  users(): string[] {
    return [...this.#byUser.keys()];
  }

  /** The connections here in `room`. */
  in(room: string): Iterable<ChatConn> {
    return this.#rooms.get(room) ?? [];
  }

  /** Whether a connection here is in `room`. */
  has(room: string): boolean {
    return this.#rooms.has(room);
  }

  /** Rooms `user`'s connections here are in. */
  roomCount(user: string): number {
    return this.#userRooms.get(user)?.size ?? 0;
  }

  /** Whether one of `user`'s connections here is in `room`. */
  userIn(user: string, room: string): boolean {
    return this.#userRooms.get(user)?.has(room) ?? false;
  }

  /** Adds `c` to `room`; returns whether its user was not in it here before. */
  add(c: ChatConn, room: string): boolean {
    c.rooms.add(room);
    let set = this.#rooms.get(room);
    if (!set) this.#rooms.set(room, set = new Set());
    set.add(c);
    const user = c.ctx.user.name;
    let mine = this.#userRooms.get(user);
    if (!mine) this.#userRooms.set(user, mine = new Map());
    const n = mine.get(room) ?? 0;
    mine.set(room, n + 1);
    if (n === 0) this.publish(user);
    return n === 0;
  }

  /**
   * Removes `c` from `room`; returns whether its user is no longer in it
   * here. `publish: false` leaves presence to a later `publish` or `drop`.
   */
  remove(c: ChatConn, room: string, publish = true): boolean {
    if (!c.rooms.delete(room)) return false;
    const set = this.#rooms.get(room);
    set?.delete(c);
    if (set?.size === 0) this.#rooms.delete(room);
    const user = c.ctx.user.name;
    const mine = this.#userRooms.get(user);
    const n = (mine?.get(room) ?? 1) - 1;
    if (n > 0) {
      mine!.set(room, n);
      return false;
    }
    mine?.delete(room);
    if (mine?.size === 0) this.#userRooms.delete(user);
    if (publish) this.publish(user);
    return true;
  }

  /** Writes `user`'s entry of this node to presence. */
  publish(user: string): void {
    const conns = this.#byUser.get(user);
    let last = 0;
    for (const c of conns ?? []) last = Math.max(last, c.ctx.session.lastActivity);
    this.#presence.set({
      user,
      rooms: [...(this.#userRooms.get(user)?.keys() ?? [])].sort(),
      connections: conns?.size ?? 0,
      lastActivity: last,
    });
  }
}
