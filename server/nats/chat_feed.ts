/**
 * The cluster {@linkcode ChatFeed} (CLUSTER.md §3.5): one ordered consumer
 * per node over every chat subject, started just above the watermark `W`,
 * hands each stored message to subscribers once, in sequence order. The
 * consumer recreates itself after missed heartbeats (1 s here); a
 * {@linkcode FeedWatchdog} replaces it when it stalls for longer, as it can
 * after a stream leader dies.
 *
 * @module
 */
import {
  type Consumer,
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
} from "@nats-io/jetstream";
import type { ChatFeed, ChatMessage } from "../backend/chat.ts";
import type { Logger } from "../log.ts";
import { CHAT_STREAM, CHAT_SUBJECTS, decodeMessage } from "./chat_subjects.ts";
import { FeedWatchdog } from "./chat_watchdog.ts";

/** How the feed reads and watches the stream. */
export interface NatsChatFeedOptions {
  js: JetStreamClient;
  /**
   * For the watchdog's stream info and consumer deletes: give it a short
   * timeout (about 1 s), so `close` does not wait long while NATS is away.
   */
  jsm: JetStreamManager;
  /** The watermark to start from: the stream's last sequence at start. */
  start: number;
  /** Rooms with stored history; the feed adds every room it sees. */
  rooms: Set<string>;
  /** The stream's creation time at start: another one means the stream was recreated. */
  created?: string | undefined;
  log?: Logger | undefined;
  /** The consumer's idle heartbeat (ms, default 1000). */
  heartbeatMs?: number | undefined;
  /** How long one pull waits (ms, default 4000). */
  expiresMs?: number | undefined;
  /**
   * Watchdog period (ms, default 500): a feed behind what is known to exist
   * that did not move for two periods is restarted; the stream's last
   * sequence is asked for every fourth period.
   */
  checkMs?: number | undefined;
}

/** The feed's counters, for diagnostics and tests. */
export interface FeedStats {
  watermark: number;
  /** Highest sequence known to exist. */
  known: number;
  /** Consumers the watchdog replaced. */
  restarts: number;
}

type _State = "running" | "stalled" | "closed";
type _Options = Omit<NatsChatFeedOptions, "heartbeatMs" | "expiresMs" | "checkMs"> & {
  heartbeatMs: number;
  expiresMs: number;
  checkMs: number;
};

/** The cluster chat feed; {@linkcode NatsChatFeed.open} starts it, `close` stops it. */
export class NatsChatFeed implements ChatFeed {
  #o: _Options;
  #w: number;
  #watch: FeedWatchdog;
  #subs = new Set<(msg: ChatMessage) => void>();
  #state: _State = "running";
  /** Bumped for every consumer, so a replaced consumer's loop hands out nothing more. */
  #gen = 0;
  #consumer: { c: Consumer; iter: ConsumerMessages; loop: Promise<void> } | undefined;
  #restarts = 0;
  #failing = false;
  #cleanups = new Set<Promise<unknown>>();

  private constructor(o: NatsChatFeedOptions) {
    this.#o = {
      ...o,
      heartbeatMs: o.heartbeatMs ?? 1_000,
      expiresMs: o.expiresMs ?? 4_000,
      checkMs: o.checkMs ?? 500,
    };
    this.#w = o.start;
    this.#watch = new FeedWatchdog({
      watermark: () => this.#w,
      ended: () => this.#state === "stalled",
      restart: () => this.restart(),
    }, { jsm: o.jsm, start: o.start, created: o.created, checkMs: this.#o.checkMs, log: o.log });
  }

  /** Starts a feed at `opts.start` with its consumer and watchdog running. */
  static async open(opts: NatsChatFeedOptions): Promise<NatsChatFeed> {
    const feed = new NatsChatFeed(opts);
    await feed.#startConsumer();
    feed.#watch.start();
    return feed;
  }

  watermark(): number {
    return this.#w;
  }

  subscribe(fn: (msg: ChatMessage) => void): () => void {
    const sub = (m: ChatMessage): void => fn(m);
    this.#subs.add(sub);
    return () => void this.#subs.delete(sub);
  }

  /** Records that `seq` exists (an acknowledged append): the watchdog expects the feed to reach it. */
  noteStored(seq: number): void {
    this.#watch.noteStored(seq);
  }

  stats(): FeedStats {
    return { watermark: this.#w, known: this.#watch.known, restarts: this.#restarts };
  }

  /**
   * Replaces the consumer with a fresh one from `W + 1` now, as the watchdog
   * does when it finds the feed stalled.
   */
  async restart(): Promise<void> {
    if (this.#state === "closed") return;
    this.#dropConsumer();
    this.#restarts++;
    try {
      await this.#startConsumer();
      this.#failing = false;
    } catch (e) {
      if ((this.#state as _State) === "closed") return;
      this.#state = "stalled";
      // once per outage, not at every check
      if (!this.#failing) {
        this.#o.log?.warn("chat feed: consumer not recreated, retrying", { error: String(e) });
      }
      this.#failing = true;
    }
  }

  /** Stops the watchdog and the consumer and deletes it (idempotent). */
  async close(): Promise<void> {
    if (this.#state === "closed") return;
    this.#state = "closed";
    await this.#watch.close();
    const c = this.#consumer;
    this.#dropConsumer();
    await c?.loop;
    await Promise.allSettled([...this.#cleanups]);
  }

  async #startConsumer(): Promise<void> {
    const gen = ++this.#gen;
    const c = await this.#o.js.consumers.get(CHAT_STREAM, {
      filter_subjects: CHAT_SUBJECTS,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: this.#w + 1,
    });
    if (gen !== this.#gen || this.#state === "closed") {
      this.#deleteConsumer(c);
      return;
    }
    // nothing above W exists: sequences below what was known are gone (deleted), not missing
    const known = this.#watch.known;
    if ((await c.info(true)).num_pending === 0 && known > this.#w) this.#w = known;
    let iter: ConsumerMessages;
    try {
      iter = await c.consume({
        max_messages: 256,
        expires: this.#o.expiresMs,
        idle_heartbeat: this.#o.heartbeatMs,
      });
    } catch (e) {
      this.#deleteConsumer(c);
      throw e;
    }
    this.#consumer = { c, iter, loop: this.#run(gen, iter) };
    this.#state = "running";
  }

  async #run(gen: number, iter: ConsumerMessages): Promise<void> {
    try {
      for await (const m of iter) {
        if (gen !== this.#gen) break;
        if (m.seq <= this.#w) continue;
        this.#w = m.seq;
        const msg = decodeMessage(m.seq, m.subject, m.data);
        if (msg) this.#hand(msg);
      }
    } catch (e) {
      this.#o.log?.warn("chat feed: consumer failed", { error: String(e) });
    }
    if (gen === this.#gen && this.#state === "running") this.#state = "stalled";
  }

  #hand(msg: ChatMessage): void {
    if (msg.room !== undefined) this.#o.rooms.add(msg.room);
    for (const fn of this.#subs) {
      try {
        fn(msg);
      } catch (e) {
        this.#o.log?.error("chat feed subscriber threw", { error: String(e) });
      }
    }
  }

  #dropConsumer(): void {
    const c = this.#consumer;
    this.#gen++;
    this.#consumer = undefined;
    if (!c) return;
    c.iter.stop();
    this.#deleteConsumer(c.c);
  }

  #deleteConsumer(c: Consumer): void {
    this.#cleanup(
      c.info(true).then((ci) => this.#o.jsm.consumers.delete(CHAT_STREAM, ci.name)),
    );
  }

  #cleanup(p: Promise<unknown>): void {
    const q = p.catch(() => false).finally(() => this.#cleanups.delete(q));
    this.#cleanups.add(q);
  }
}
