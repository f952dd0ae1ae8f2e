/**
 * A node's local copy of a KV bucket: the last value and revision of every
 * key, kept current by a watch ({@linkcode watchBucket}) and by this node's
 * own writes, which are applied as soon as the server acknowledged them (so
 * a node reads its own writes before the watch echoes them). A change is
 * applied only when its revision is newer than the one held, so the echo of
 * a write, or a stale read, never takes the copy back; listeners hear of a
 * key only when its value really changed.
 *
 * Changes go through {@linkcode KvMirror.change}: a compare-and-set loop on
 * the key's revision, retried when another node wrote the key first.
 *
 * @module
 */
import type { JetStreamClient } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { type BucketWatch, isWrongLastSequence, watchBucket } from "./kv_watch.ts";

/** What a key holds in the copy: its revision, and its value (undefined once deleted). */
export interface MirrorEntry<T> {
  readonly rev: number;
  readonly value: T | undefined;
  /** The value as stored (JSON text), for cheap comparison; "" when deleted. */
  readonly raw: string;
}

/** Options of {@linkcode KvMirror.open}. */
export interface KvMirrorOptions<T> {
  /** Checks and converts a stored JSON value; throws on a value it cannot take. */
  decode(key: string, value: unknown): T;
  /** What to store for a value (JSON-encoded). Default: the value itself. */
  encode?: (value: T) => unknown;
  /** Called after a key's value changed in the copy, `after` undefined when deleted. */
  onChange(key: string, before: T | undefined, after: T | undefined): void;
  /** Told about values that could not be decoded and watch troubles. */
  onError?: (e: Error) => void;
}

/** Returned by a {@linkcode KvMirror.change} function to leave the key as it is. */
export const UNCHANGED: unique symbol = Symbol("unchanged");

/** Most compare-and-set attempts of one change before giving up. */
const _CAS_TRIES = 100;

/** A watched local copy of one KV bucket. */
export class KvMirror<T> {
  readonly kv: KV;
  #entries = new Map<string, MirrorEntry<T>>();
  #opts: KvMirrorOptions<T>;
  #watch: BucketWatch | undefined;

  private constructor(kv: KV, opts: KvMirrorOptions<T>) {
    this.kv = kv;
    this.#opts = opts;
  }

  /** Loads the bucket's current values and keeps watching it. */
  static async open<T>(
    js: JetStreamClient,
    kv: KV,
    bucket: string,
    opts: KvMirrorOptions<T>,
  ): Promise<KvMirror<T>> {
    const m = new KvMirror(kv, opts);
    m.#watch = await watchBucket(js, bucket, {
      onEntry: (e) => {
        const raw = e.value === undefined ? "" : new TextDecoder().decode(e.value);
        m.#apply(e.key, e.rev, raw);
      },
      ...(opts.onError ? { onError: opts.onError } : {}),
    });
    return m;
  }

  /** The key's entry in the copy. */
  get(key: string): MirrorEntry<T> | undefined {
    return this.#entries.get(key);
  }

  /** Every key that holds a value now, with it. */
  *values(): IterableIterator<[string, T]> {
    for (const [k, e] of this.#entries) if (e.value !== undefined) yield [k, e.value];
  }

  /** Waits until the copy holds every change stored before the call. */
  sync(timeoutMs?: number): Promise<void> {
    return this.#watch!.sync(timeoutMs);
  }

  /**
   * Reads the key from the server (the stream's leader), updates the copy
   * with it and returns its entry: sees every write completed before the call.
   */
  async read(key: string): Promise<MirrorEntry<T> | undefined> {
    const e = await this.kv.get(key);
    if (!e) return this.#entries.get(key);
    const raw = e.operation === "PUT" ? e.string() : "";
    this.#apply(key, e.revision, raw);
    return this.#entries.get(key);
  }

  /**
   * Changes one key by compare-and-set: `fn` gets the current value and
   * returns the new one (undefined deletes, {@linkcode UNCHANGED} stops).
   * When another writer got there first the key is read again and `fn`
   * runs again. Resolves with the value now stored, after the copy (and its
   * listeners) took it. Errors of `fn` reject as they are.
   */
  async change(
    key: string,
    fn: (current: T | undefined) => T | undefined | typeof UNCHANGED,
  ): Promise<T | undefined> {
    let cur = this.#entries.get(key);
    for (let i = 0; i < _CAS_TRIES; i++) {
      const next = fn(cur?.value);
      if (next === UNCHANGED) return cur?.value;
      const rev = cur?.rev ?? 0;
      try {
        if (next === undefined) {
          if (cur?.value === undefined) return undefined;
          await this.kv.delete(key, { previousSeq: rev });
          // The delete's own revision is not reported; any later write to
          // the key has a higher one, so rev + 1 is a safe lower bound.
          this.#apply(key, rev + 1, "");
        } else {
          const raw = JSON.stringify(this.#opts.encode ? this.#opts.encode(next) : next);
          const stored = await this.kv.put(key, raw, { previousSeq: rev });
          this.#apply(key, stored, raw);
        }
        return next;
      } catch (e) {
        if (!isWrongLastSequence(e)) throw e;
        cur = await this.read(key);
      }
    }
    throw new Error(`${key}: too many concurrent changes (${_CAS_TRIES} attempts)`);
  }

  /** Stops watching. Idempotent. */
  async close(): Promise<void> {
    await this.#watch?.close();
  }

  #apply(key: string, rev: number, raw: string): void {
    const old = this.#entries.get(key);
    if (old && old.rev >= rev) return;
    let value: T | undefined;
    if (raw !== "") {
      try {
        value = this.#opts.decode(key, JSON.parse(raw));
      } catch (e) {
        this.#opts.onError?.(new Error(`${key}: unreadable value ignored`, { cause: e }));
        value = undefined;
        raw = "";
      }
    }
    this.#entries.set(key, { rev, value, raw });
    if ((old?.raw ?? "") !== raw) this.#opts.onChange(key, old?.value, value);
  }
}
