/**
 * The chat feed's watchdog (CLUSTER.md §3.5, §6.2). An ordered consumer
 * recreates itself after missed heartbeats, but after a stream leader dies
 * it can stall for much longer. Every {@linkcode WatchdogOptions.checkMs}
 * the watchdog compares the feed's watermark `W` with the highest sequence
 * known to exist — this node's acks, and the stream's last sequence, asked
 * for every fourth check without waiting on the answer (there may be no
 * leader to give it). When `W` lags and has not moved for two checks, or
 * the consumer ended, it has the feed replace its consumer from `W + 1`.
 *
 * @module
 */
import type { JetStreamManager } from "@nats-io/jetstream";
import type { Logger } from "../log.ts";
import { CHAT_STREAM } from "./chat_subjects.ts";

/** What the watchdog watches. */
export interface WatchedFeed {
  watermark(): number;
  /** Whether the feed's consumer ended or could not be created. */
  ended(): boolean;
  /** Replaces the consumer with a fresh one from `W + 1`; never rejects. */
  restart(): Promise<void>;
}

/** How the watchdog watches. */
export interface WatchdogOptions {
  /** For stream info: give it a short timeout (about 1 s). */
  jsm: JetStreamManager;
  /** The highest sequence known to exist at start. */
  start: number;
  /** The stream's creation time at start: another one means the stream was recreated. */
  created?: string | undefined;
  checkMs: number;
  log?: Logger | undefined;
}

/** The stream is asked for its last sequence every this many checks. */
const _INFO_EVERY = 4;

/** Watches one feed from {@linkcode FeedWatchdog.start} to `close`. */
export class FeedWatchdog {
  #feed: WatchedFeed;
  #o: WatchdogOptions;
  #known: number;
  #lastW: number;
  #still = 0;
  #ticks = 0;
  #asking: Promise<void> | undefined;
  #recreated = false;
  #closed = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #checking: Promise<void> | undefined;

  constructor(feed: WatchedFeed, o: WatchdogOptions) {
    this.#feed = feed;
    this.#o = o;
    this.#known = this.#lastW = o.start;
  }

  /** The highest sequence known to exist. */
  get known(): number {
    return this.#known;
  }

  /** Records that `seq` exists (an acknowledged append, the stream's last sequence). */
  noteStored(seq: number): void {
    if (seq > this.#known) this.#known = seq;
  }

  start(): void {
    if (this.#closed || this.#timer !== undefined) return;
    this.#schedule();
  }

  /** Stops checking; waits for a check or a stream info still running (idempotent). */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#checking;
    await this.#asking;
  }

  #schedule(): void {
    if (this.#closed) return;
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
      this.#asking = this.#o.jsm.streams.info(CHAT_STREAM).then(
        (info) => {
          this.noteStored(info.state.last_seq);
          this.#checkCreated(info.created);
        },
        () => {/* no leader right now: this node's acks still say what exists */},
      ).finally(() => this.#asking = undefined);
    }
    const w = this.#feed.watermark();
    const stuck = w < this.#known && w === this.#lastW;
    this.#still = stuck ? this.#still + 1 : 0;
    this.#lastW = w;
    if (this.#feed.ended() || this.#still >= 2) {
      if (this.#still >= 2) {
        this.#o.log?.warn("chat feed stalled, recreating its consumer", {
          watermark: w,
          known: this.#known,
        });
      }
      this.#still = 0;
      await this.#feed.restart();
    }
  }

  /** A stream created after start has new ids below W: say so once, loudly. */
  #checkCreated(created: string): void {
    if (this.#recreated || this.#o.created === undefined || created === this.#o.created) return;
    this.#recreated = true;
    this.#o.log?.error(
      "the chat stream was deleted and created again: its ids started over; restart this node",
      { stream: CHAT_STREAM, created, was: this.#o.created },
    );
  }
}
