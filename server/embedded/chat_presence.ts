/**
 * The embedded {@linkcode Presence}: one node, so the merged view is this
 * process's own entries. Subscribers are called synchronously after a change.
 *
 * @module
 */
import type { Presence, PresenceEntry, UserPresence } from "../backend/chat.ts";
import { RoomIndex } from "../backend/presence_rooms.ts";

/** Who is online in this process. */
export class LocalPresence implements Presence {
  readonly node: string;
  #users = new Map<string, PresenceEntry>();
  /** Per room: the users in it. */
  #rooms = new RoomIndex();
  #subs = new Set<(user: string) => void>();

  constructor(node = "local") {
    this.node = node;
  }

  set(entry: PresenceEntry): void {
    const old = this.#users.get(entry.user);
    if (entry.connections <= 0) {
      this.#users.delete(entry.user);
      this.#rooms.move(entry.user, old?.rooms ?? [], []);
    } else {
      const copy = { ...entry, rooms: [...entry.rooms] };
      this.#users.set(entry.user, copy);
      this.#rooms.move(entry.user, old?.rooms ?? [], copy.rooms);
    }
    const moved = !old || entry.connections <= 0 || old.connections !== entry.connections ||
      old.rooms.join("\n") !== entry.rooms.join("\n");
    if (moved) { for (const fn of this.#subs) fn(entry.user); }
  }

  online(): UserPresence[] {
    return [...this.#users.values()].map((e) => ({
      name: e.user,
      rooms: [...e.rooms].sort(),
      connections: e.connections,
      lastActivity: e.lastActivity,
    })).sort((a, b) => a.name.localeCompare(b.name));
  }

  get(user: string): UserPresence | undefined {
    const e = this.#users.get(user);
    return e && {
      name: e.user,
      rooms: [...e.rooms].sort(),
      connections: e.connections,
      lastActivity: e.lastActivity,
    };
  }

  usersIn(room: string): string[] {
    return this.#rooms.usersIn(room);
  }

  isIn(user: string, room: string): boolean {
    return this.#rooms.isIn(user, room);
  }

  rooms(): string[] {
    return this.#rooms.rooms();
  }

  subscribe(fn: (user: string) => void): () => void {
    const sub = (u: string): void => fn(u);
    this.#subs.add(sub);
    return () => void this.#subs.delete(sub);
  }
}
