/**
 * The cluster {@linkcode ChatFeed} (CLUSTER.md §3.5): one ordered consumer
 * per node over every chat subject, started just above the watermark `W`,
 * hands each stored message to subscribers once, in sequence order. An
 * ordered consumer recreates itself after missed heartbeats (1 s here), but
 * after a stream leader dies it can stall for much longer, so a watchdog
 * compares `W`, every {@linkcode NatsChatFeedOptions.checkMs}, with the
 * highest sequence known to exist (this node's acks and the stream's last
 * sequence): when `W` lags and has not moved for two checks, or the
 * consumer ended, it replaces the consumer with a fresh one from `W + 1`.
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
/** The watchdog asks the stream for its last sequence every this many checks. */
const _INFO_EVERY = 4;
type _Options = Omit<NatsChatFeedOptions, "heartbeatMs" | "expiresMs" | "checkMs"> & {
  heartbeatMs: number;
  expiresMs: number;
  checkMs: number;
};

/** The cluster chat feed; {@linkcode NatsChatFeed.open} starts it, `close` stops it. */
export class NatsChatFeed implements ChatFeed {
  #o: _Options;
  #w: number;
  #known: number;
  #subs = new Set<(msg: ChatMessage) => void>();
  #state: _State = "running";
  /** Bumped for every consumer, so a replaced consumer's loop hands out nothing more. */
  #gen = 0;
  #consumer: { c: Consumer; iter: ConsumerMessages; loop: Promise<void> } | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #checking: Promise<void> | undefined;
  #lastW: number;
  #still = 0;
  #restarts = 0;
  #ticks = 0;
  #asking = false;
  #cleanups = new Set<Promise<unknown>>();

  private constructor(o: NatsChatFeedOptions) {
    this.#o = {
      ...o,
      heartbeatMs: o.heartbeatMs ?? 1_000,
      expiresMs: o.expiresMs ?? 4_000,
      checkMs: o.checkMs ?? 500,
    };
    this.#w = this.#known = this.#lastW = o.start;
  }

  /** Starts a feed at `opts.start` with its consumer and watchdog running. */
  static async open(opts: NatsChatFeedOptions): Promise<NatsChatFeed> {
    const feed = new NatsChatFeed(opts);
    await feed.#startConsumer();
    feed.#schedule();
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
    if (seq > this.#known) this.#known = seq;
  }

  stats(): FeedStats {
    return { watermark: this.#w, known: this.#known, restarts: this.#restarts };
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
    } catch (e) {
      if ((this.#state as _State) === "closed") return;
      this.#state = "stalled";
      this.#o.log?.warn("chat feed: consumer not recreated, retrying", { error: String(e) });
    }
  }

  /** Stops the watchdog and the consumer and deletes it (idempotent). */
  async close(): Promise<void> {
    if (this.#state === "closed") return;
    this.#state = "closed";
    clearTimeout(this.#timer);
    await this.#checking;
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
    if ((await c.info(true)).num_pending === 0 && this.#known > this.#w) this.#w = this.#known;
    const iter = await c.consume({
      max_messages: 256,
      expires: this.#o.expiresMs,
      idle_heartbeat: this.#o.heartbeatMs,
    });
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

  #schedule(): void {
    if (this.#state === "closed") return;
    this.#timer = setTimeout(() => {
      this.#checking = this.#check().finally(() => {
        this.#checking = undefined;
        this.#schedule();
      });
    }, this.#o.checkMs);
  }

  /** @neverRejects */
  async #check(): Promise<void> {
    if (this.#ticks++ % _INFO_EVERY === 0 && !this.#asking) {
      // not awaited: without a stream leader this waits for a timeout, and the
      // lag check below must not wait with it (this node's acks still count)
      this.#asking = true;
      this.#cleanup(
        this.#o.jsm.streams.info(CHAT_STREAM)
          .then((info) => this.noteStored(info.state.last_seq))
          .finally(() => this.#asking = false),
      );
    }
    const stuck = this.#w < this.#known && this.#w === this.#lastW;
    this.#still = stuck ? this.#still + 1 : 0;
    this.#lastW = this.#w;
    if (this.#state === "stalled" || this.#still >= 2) {
      this.#o.log?.warn("chat feed stalled, recreating its consumer", {
        watermark: this.#w,
        known: this.#known,
      });
      this.#still = 0;
      await this.restart();
    }
  }
}
