/**
 * Publishing a chat message so that it is stored once (CLUSTER.md §3.4):
 * every attempt carries the same `Nats-Msg-Id`, so an attempt that timed
 * out after the stream stored it is answered with the first sequence
 * (`duplicate`) instead of storing it again. Attempts go on through a raft
 * election (4–9 s of "no responders" or timeouts) until a deadline, then
 * the send fails with `unavailable`.
 *
 * @module
 */
import { JetStreamApiError, type JetStreamClient, type PubAck } from "@nats-io/jetstream";
import { RequestError } from "../errors.ts";
import { isNatsUnavailable } from "./connection.ts";

/** How one message is published. */
export interface PublishOptions {
  /** The message id the stream deduplicates on. */
  msgID: string;
  /** Give up this long after the first attempt (ms). */
  deadlineMs: number;
  /** Most one attempt waits for its ack (ms). */
  attemptMs: number;
  /** Aborted when the log closes: the publish fails with `unavailable` at once. */
  signal: AbortSignal;
}

/** First wait between attempts (ms); it doubles up to {@linkcode _MAX_BACKOFF_MS}. */
const _FIRST_BACKOFF_MS = 50;
const _MAX_BACKOFF_MS = 1_000;

/**
 * Publishes `data` on `subject` and resolves with the stream's ack
 * (`duplicate` when an earlier attempt or send with the same `msgID` was
 * stored). Rejects with `RequestError("unavailable")` when no attempt was
 * acknowledged before the deadline or the signal aborted, and with the
 * stream's own error when it refused the message (too large, …).
 */
export async function publishOnce(
  js: JetStreamClient,
  subject: string,
  data: Uint8Array,
  opts: PublishOptions,
): Promise<PubAck> {
  const deadline = Date.now() + opts.deadlineMs;
  let last: unknown;
  for (let attempt = 0;; attempt++) {
    const left = deadline - Date.now();
    if (opts.signal.aborted || left <= 0) break;
    try {
      return await js.publish(subject, data, {
        msgID: opts.msgID,
        timeout: Math.max(1, Math.min(opts.attemptMs, left)),
      });
    } catch (e) {
      if (_tooLarge(e)) {
        throw new RequestError(
          "too_large",
          "the message is larger than the cluster's message store accepts; send a shorter one",
          {
            cause: e,
          },
        );
      }
      if (!_retryable(e)) throw e;
      last = e;
    }
    const wait = Math.min(_MAX_BACKOFF_MS, _FIRST_BACKOFF_MS * 2 ** attempt);
    if (Date.now() + wait >= deadline) break;
    await _sleep(wait, opts.signal);
  }
  throw new RequestError(
    "unavailable",
    "the cluster's message store did not confirm the message in time; send it again " +
      "(a retry with the same key stores it once)",
    { cause: last ?? opts.signal.reason },
  );
}

/**
 * Whether another attempt may succeed. nats.js reports "no responders" on a
 * publish (the stream has no leader) as `JetStreamNotEnabled`, a class it
 * does not export, with the no-responders error as its cause.
 */
function _retryable(e: unknown): boolean {
  return isNatsUnavailable(e) ||
    (e instanceof Error && e.name === "JetStreamNotEnabled" && isNatsUnavailable(e.cause));
}

function _tooLarge(e: unknown): boolean {
  return e instanceof JetStreamApiError && /message size exceeds/i.test(e.message);
}

/** Waits `ms`, or less if `signal` aborts (never rejects). */
function _sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
