/**
 * Watching a KV bucket from a node: an ordered consumer over the bucket's
 * backing stream that hands every entry, in revision order, to a callback —
 * first the last value of each key, then every change. Used by the accounts,
 * chat policy and presence modules, which keep local copies from it.
 *
 * Why not `kv.watch()`: its push consumer only notices a lost server after
 * two missed 30 s heartbeats; the ordered pull consumer here uses 1 s
 * heartbeats and re-creates itself at the next revision (CLUSTER.md §3.5,
 * measured 1–12.6 s after a leader kill). The entries are read in the KV
 * layout (ADR-8): subject `$KV.<bucket>.<key>`, header `KV-Operation` for
 * `DEL` and `PURGE`, revision = stream sequence.
 *
 * Also here: {@linkcode encodeKeyToken}, so a user or node name never splits
 * a key into tokens (CLUSTER.md §6.12), and {@linkcode isWrongLastSequence}
 * for compare-and-set loops.
 *
 * @module
 */
import { type KV, Kvm, type KvOptions } from "@nats-io/kv";
import {
  type ConsumerMessages,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JsMsg,
} from "@nats-io/jetstream";
import { isNatsUnavailable } from "./connection.ts";

/** One entry as the watch hands it out. */
export interface WatchedEntry {
  /** The key, as stored (still encoded). */
  readonly key: string;
  /** The stream sequence of this entry: the key's revision. */
  readonly rev: number;
  /** The value, or undefined for a delete or purge. */
  readonly value: Uint8Array | undefined;
  /** How old the entry was when it arrived (ms, by the server's timestamp; never negative). */
  readonly ageMs: number;
  /** True while the watch is still delivering the values that existed when it started. */
  readonly initial: boolean;
}

/** Options of {@linkcode watchBucket}. */
export interface WatchBucketOptions {
  /** Called for each entry, in revision order; must not throw. */
  onEntry(entry: WatchedEntry): void;
  /** Told about a consumer failure that the watch recovers from by itself. */
  onError?: (e: Error) => void;
  /** Most time to wait for the initial values (ms). Default 10 000. */
  readyTimeoutMs?: number;
}

/** A running watch. */
export interface BucketWatch {
  /** Highest revision handed out so far. */
  processed(): number;
  /**
   * Resolves once every entry stored before this call was handed out (a
   * read barrier). Rejects after `timeoutMs` (default 5000).
   */
  sync(timeoutMs?: number): Promise<void>;
  /** Stops the consumer. Idempotent. */
  close(): Promise<void>;
}

const _KV_OPERATION = "KV-Operation";

/**
 * Starts watching bucket `bucket` and resolves once the values present at
 * the start were handed out (or, for a bucket whose entries expire, when
 * the wait for them timed out: an expired entry is never delivered).
 */
export async function watchBucket(
  js: JetStreamClient,
  bucket: string,
  options: WatchBucketOptions,
): Promise<BucketWatch> {
  const stream = `KV_${bucket}`;
  const prefix = `$KV.${bucket}.`;
  const jsm = await js.jetstreamManager();
  const lastSeq = async () => (await jsm.streams.info(stream)).state;
  const start = await lastSeq();
  let processed = 0;
  let initial = start.messages > 0;
  let waiters: { seq: number; resolve: () => void }[] = [];
  const release = () => {
    const ready = waiters.filter((w) => processed >= w.seq);
    waiters = waiters.filter((w) => processed < w.seq);
    for (const w of ready) w.resolve();
  };
  const consumer = await js.consumers.get(stream, {
    filter_subjects: `${prefix}>`,
    deliver_policy: DeliverPolicy.LastPerSubject,
  });
  const handle = (m: JsMsg): void => {
    if (m.seq <= processed) return;
    processed = m.seq;
    const op = m.headers?.get(_KV_OPERATION);
    const deleted = op === "DEL" || op === "PURGE";
    const ts = m.info.timestampNanos / 1e6;
    if (initial && (m.info.pending === 0 || m.seq >= start.last_seq)) initial = false;
    options.onEntry({
      key: m.subject.slice(prefix.length),
      rev: m.seq,
      value: deleted ? undefined : m.data,
      ageMs: Math.max(0, Date.now() - ts),
      initial,
    });
    release();
  };
  const messages: ConsumerMessages = await consumer.consume({
    callback: handle,
    max_messages: 256,
    expires: 5000,
    idle_heartbeat: 1000,
  });
  const statusLoop = (async () => {
    for await (const s of messages.status()) {
      if (s.type === "heartbeats_missed" || s.type === "consumer_not_found") {
        options.onError?.(new Error(`watch of ${bucket}: ${s.type}, re-creating the consumer`));
      }
    }
  })();
  let closed = false;
  const watch: BucketWatch = {
    processed: () => processed,
    async sync(timeoutMs = 5000) {
      const seq = (await lastSeq()).last_seq;
      if (processed >= seq) return;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const waiter = { seq, resolve: () => {} };
      try {
        await new Promise<void>((resolve, reject) => {
          waiter.resolve = resolve;
          waiters.push(waiter);
          timer = setTimeout(
            () => reject(new Error(`watch of ${bucket} is behind: ${processed} < ${seq}`)),
            timeoutMs,
          );
        });
      } finally {
        clearTimeout(timer);
        waiters = waiters.filter((w) => w !== waiter);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await messages.close().catch(() => {});
      await statusLoop.catch(() => {});
    },
  };
  if (initial) {
    // Entries of a bucket with a TTL may expire before they are delivered:
    // then the wait ends at its deadline instead.
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await new Promise<void>((resolve) => {
        waiters.push({ seq: start.last_seq, resolve });
        timer = setTimeout(resolve, options.readyTimeoutMs ?? 10_000);
      });
    } finally {
      clearTimeout(timer);
      waiters = [];
    }
    initial = false;
  }
  return watch;
}

/**
 * Encodes a name as one KV key token: `[A-Za-z0-9_-]` stay, anything else
 * (`.` above all, which would split the key) becomes `=` and two hex digits
 * per UTF-8 byte. Reversible by {@linkcode decodeKeyToken}.
 */
export function encodeKeyToken(name: string): string {
  let out = "";
  for (const ch of name) {
    if (/^[A-Za-z0-9_-]$/.test(ch)) {
      out += ch;
      continue;
    }
    for (const b of new TextEncoder().encode(ch)) {
      out += "=" + b.toString(16).toUpperCase().padStart(2, "0");
    }
  }
  return out;
}

/** The name {@linkcode encodeKeyToken} encoded. */
export function decodeKeyToken(token: string): string {
  if (!token.includes("=")) return token;
  const bytes: number[] = [];
  for (let i = 0; i < token.length;) {
    if (token[i] === "=") {
      bytes.push(parseInt(token.slice(i + 1, i + 3), 16));
      i += 3;
    } else {
      bytes.push(token.charCodeAt(i));
      i++;
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/**
 * Opens bucket `bucket`, creating it with `opts` when absent (an existing
 * bucket keeps its settings). Retries while JetStream is not answering (a
 * cluster electing its leaders just after start) until `deadlineMs`.
 */
export async function openBucket(
  js: JetStreamClient,
  bucket: string,
  opts: Partial<KvOptions>,
  deadlineMs = 15_000,
): Promise<KV> {
  const end = Date.now() + deadlineMs;
  for (let wait = 100;; wait = Math.min(1000, wait * 2)) {
    try {
      return await new Kvm(js).create(bucket, opts);
    } catch (e) {
      if (!isNatsUnavailable(e) || Date.now() + wait > end) throw e;
    }
    await new Promise((r) => setTimeout(r, wait));
  }
}

/**
 * Opens a durable record bucket (file storage, history 1, `replicas`
 * copies) with {@linkcode openBucket}. Reads go to the stream's leader: a
 * replica may answer a direct get before it has applied a change that
 * another node completed.
 */
export function openRecordBucket(
  js: JetStreamClient,
  bucket: string,
  replicas = 1,
): Promise<KV> {
  return openBucket(js, bucket, {
    history: 1,
    replicas,
    storage: "file",
    allow_direct: false,
  });
}

/** Whether `e` is JetStream refusing a write because the key's revision moved on. */
export function isWrongLastSequence(e: unknown): boolean {
  return e instanceof JetStreamApiError &&
    (e.code === JetStreamApiCodes.StreamWrongLastSequence ||
      e.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown);
}
