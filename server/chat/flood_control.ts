/**
 * Per-user flood control: messages per second (`ratePerSecond`,
 * `rateBurst`) and rooms created per minute (`roomCreatePerMinute`,
 * `roomCreateBurst`), plus the server-wide room cap (`maxRooms`). Counted
 * per node.
 *
 * @module
 */
import { RequestError } from "../errors.ts";
import type { ChatConfig } from "./chat_config.ts";
import { TokenBucket } from "./token_bucket.ts";

/** The token buckets of the users of one node. */
export class FloodControl {
  #config: ChatConfig;
  #posts = new Map<string, TokenBucket>();
  #creates = new Map<string, TokenBucket>();

  constructor(config: ChatConfig) {
    this.#config = config;
  }

  /** Takes a message token from `user`'s bucket, or throws `rate_limited`. */
  mayPost(user: string): void {
    const cfg = this.#config;
    let bucket = this.#posts.get(user);
    if (!bucket) {
      this.#posts.set(user, bucket = new TokenBucket(cfg.ratePerSecond, cfg.rateBurst));
    }
    if (!bucket.take()) {
      throw new RequestError(
        "rate_limited",
        `slow down: at most ${cfg.ratePerSecond} messages per second ` +
          `(try again in ${bucket.waitMs()} ms)`,
      );
    }
  }

  /**
   * Checks the server's room cap (`rooms` exist now) and takes a room
   * creation token from `user`'s bucket; throws `busy` or `rate_limited`.
   */
  mayCreate(user: string, rooms: number): void {
    const cfg = this.#config;
    if (rooms >= cfg.maxRooms) {
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

  /** Forgets `user`'s buckets that are full again (called when a connection closes). */
  forget(user: string): void {
    if (this.#posts.get(user)?.full()) this.#posts.delete(user);
    if (this.#creates.get(user)?.full()) this.#creates.delete(user);
  }
}
