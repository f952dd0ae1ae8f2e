/**
 * The embedded {@linkcode Presence}: one node, so the merged view is this
 * process's own entries. Subscribers are called synchronously after a change.
 *
 * @module
 */
import type { Presence, PresenceEntry, UserPresence } from "../backend/chat.ts";

/** Who is online in this process. */
export class LocalPresence implements Presence {
  readonly node: string;
  #users = new Map<string, PresenceEntry>();
  /** Per room: the users in it. */
  #rooms = new Map<string, Set<string>>();
  #subs = new Set<(user: string) => void>();

  constructor(node = "local") {
    this.node = node;
  }

  set(entry: PresenceEntry): void {
    const old = this.#users.get(entry.user);
    for (const room of old?.rooms ?? []) {
      const set = this.#rooms.get(room);
      set?.delete(entry.user);
      if (set?.size === 0) this.#rooms.delete(room);
    }
    if (entry.connections <= 0) {
      this.#users.delete(entry.user);
    } else {
      const copy = { ...entry, rooms: [...entry.rooms] };
      this.#users.set(entry.user, copy);
      for (const room of copy.rooms) {
        let set = this.#rooms.get(room);
        if (!set) this.#rooms.set(room, set = new Set());
        set.add(entry.user);
      }
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

  usersIn(room: string): string[] {
    return [...(this.#rooms.get(room) ?? [])].sort();
  }

  isIn(user: string, room: string): boolean {
    return this.#rooms.get(room)?.has(user) ?? false;
  }

  rooms(): string[] {
    return [...this.#rooms.keys()];
  }

  subscribe(fn: (user: string) => void): () => void {
    const sub = (u: string): void => fn(u);
    this.#subs.add(sub);
    return () => void this.#subs.delete(sub);
  }
}
