/**
 * The per-room index both {@linkcode Presence} implementations keep beside
 * their user entries: which users are in each room.
 *
 * @module
 */
import type { Presence } from "./chat.ts";

/** Per room: the users in it. Rooms without users are dropped. */
export class RoomIndex implements Pick<Presence, "usersIn" | "isIn" | "rooms"> {
  #rooms = new Map<string, Set<string>>();

  /** Moves `user` out of the rooms `from` and into the rooms `to`. */
  move(user: string, from: readonly string[], to: readonly string[]): void {
    for (const room of from) {
      const set = this.#rooms.get(room);
      set?.delete(user);
      if (set?.size === 0) this.#rooms.delete(room);
    }
    for (const room of to) {
      let set = this.#rooms.get(room);
      if (!set) this.#rooms.set(room, set = new Set());
      set.add(user);
    }
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
}
