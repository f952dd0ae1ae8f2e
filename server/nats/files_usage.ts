/**
 * Per-user usage of the NATS files backend as an append-only log of deltas
 * (`parley.usage.<user>` in the stream `PARLEY_FS_USAGE`) rather than a KV
 * counter: on nats-server 2.9.10 with R3, two KV updates at the same
 * expected revision can both succeed (measured: 400 acknowledged CAS
 * increments from 4 writers on 2 servers left the counter at 167), which
 * loses deltas. Appends need no CAS; the stream's order decides: a change
 * that must keep a limit appends its delta, sums the log up to its own
 * sequence, and when that is over the limit appends the inverse and refuses
 * (`quota`). A refusal may be spurious under contention (it counts a racing
 * reservation that is refused too), never an overrun.
 *
 * The log grows with every change and is read whole by `usage`: compaction
 * (a snapshot with the sequence it covers, older deltas purged) is left to do.
 *
 * @module
 */
import type { FileLimits } from "../backend/files.ts";
import { RequestError } from "../errors.ts";
import { type NatsFilesCtx, tok, type Usage } from "./files_ctx.ts";

/** Stream of usage deltas. */
export const USAGE_STREAM = "PARLEY_FS_USAGE";
const _LAG_TRIES = 2000;

const _zero = (): Usage => ({ files: 0, partial: 0, reserved: 0, entries: 0 });

/**
 * The sum of `user`'s deltas with sequence ≤ `upTo` (default: the last one,
 * asked of the stream leader). Deltas are read by direct gets from any
 * replica; one that lags is asked again until it has every delta up to
 * `upTo`, so the sum never misses one.
 */
export async function sumUsage(ctx: NatsFilesCtx, user: string, upTo?: number): Promise<Usage> {
  const subject = `parley.usage.${tok(user)}`;
  const end = upTo ?? await _lastSeq(ctx, subject);
  const u = _zero();
  let seq = 1;
  let lagged = 0;
  while (seq <= end) {
    const m = await ctx.jsm.direct.getMessage(USAGE_STREAM, { seq, next_by_subj: subject });
    if (!m || m.seq > end) {
      // A replica that has not applied everything up to `end` yet.
      if (++lagged > _LAG_TRIES) throw new RequestError("unavailable", "usage log lagging");
      await new Promise((r) => setTimeout(r, 5));
      continue;
    }
    const d = m.json<Partial<Usage>>();
    u.files += d.files ?? 0;
    u.partial += d.partial ?? 0;
    u.reserved += d.reserved ?? 0;
    u.entries += d.entries ?? 0;
    if (m.seq === end) break;
    seq = m.seq + 1;
  }
  return u;
}

async function _lastSeq(ctx: NatsFilesCtx, subject: string): Promise<number> {
  try {
    const m = await ctx.jsm.streams.getMessage(USAGE_STREAM, { last_by_subj: subject });
    return m?.seq ?? 0;
  } catch (e) {
    if (/no message found|10037/i.test(String((e as Error).message))) return 0;
    throw e;
  }
}

/**
 * Applies `delta` to `user`'s usage; with `limits`, refuses (`quota`) a
 * change that grows bytes or entries beyond them, judged by the log's order.
 */
export async function bumpUsage(
  ctx: NatsFilesCtx,
  user: string,
  delta: Partial<Usage>,
  limits?: FileLimits,
): Promise<Usage> {
  const subject = `parley.usage.${tok(user)}`;
  const ack = await ctx.js.publish(subject, JSON.stringify(delta), { timeout: 20_000 });
  const u = await sumUsage(ctx, user, ack.seq);
  if (!limits) return u;
  const grow = (delta.files ?? 0) + (delta.partial ?? 0) + (delta.reserved ?? 0);
  const bytes = u.files + u.partial + u.reserved;
  const overBytes = grow > 0 && bytes > limits.quotaBytes;
  const overEntries = (delta.entries ?? 0) > 0 && u.entries > limits.maxEntries;
  if (overBytes || overEntries) {
    const inverse = Object.fromEntries(Object.entries(delta).map(([k, v]) => [k, -(v ?? 0)]));
    await ctx.js.publish(subject, JSON.stringify(inverse), { timeout: 20_000 });
    throw new RequestError("quota", overBytes ? "quota exceeded" : "too many entries");
  }
  return u;
}

/** The user's usage now. */
export function readUsage(ctx: NatsFilesCtx, user: string): Promise<Usage> {
  return sumUsage(ctx, user);
}
