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
 * Compaction ({@linkcode compactUsage}, run by the GC sweep): a user's sum up
 * to the last delta S is published as a snapshot on `parley.usage.<user>.s`
 * (`{base: S, …totals}`, with CAS on the snapshot subject, `files_cas.ts`, so
 * two compactions cannot replace a newer snapshot by an older one), and only
 * once that is acknowledged (stored by a majority) are the deltas up to S
 * purged. Deltas appended meanwhile have sequences above S and stay. A sum
 * starts from the snapshot and reads the deltas after its base; it reads the
 * snapshot again at the end and starts over when a compaction moved it
 * meanwhile (the deltas it was reading may have been purged). A change whose
 * delta is already inside a snapshot judges its limit by that snapshot (a
 * later point of the log: still never an overrun). A change that had to read
 * more than {@linkcode COMPACT_INLINE_AT} deltas compacts that user's log at
 * once (safe anywhere, the CAS on the snapshot decides), so a sum stays short
 * between sweeps.
 *
 * @module
 */
import type { FileLimits } from "../backend/files.ts";
import { RequestError } from "../errors.ts";
import { type NatsFilesCtx, tok, untok, type Usage } from "./files_ctx.ts";
import { casPublish } from "./files_cas.ts";

/** Stream of usage deltas. */
export const USAGE_STREAM = "PARLEY_FS_USAGE";
const _LAG_TRIES = 2000;
const _SUM_TRIES = 8;
/** A user's log is compacted by a sweep once it holds this many deltas. */
export const COMPACT_AT = 32;
/** A change that reads this many deltas to judge its limit compacts the log itself. */
const COMPACT_INLINE_AT = 128;

const _zero = (): Usage => ({ files: 0, partial: 0, reserved: 0, entries: 0 });

interface Snapshot extends Usage {
  /** The last delta sequence the totals include. */
  base: number;
}

/** The user's last snapshot and its own sequence (from the stream leader). */
async function _snapshot(
  ctx: NatsFilesCtx,
  subject: string,
): Promise<{ seq: number; snap: Snapshot | undefined }> {
  try {
    const m = await ctx.jsm.streams.getMessage(USAGE_STREAM, { last_by_subj: `${subject}.s` });
    return m ? { seq: m.seq, snap: m.json<Snapshot>() } : { seq: 0, snap: undefined };
  } catch (e) {
    if (/no message found|10037/i.test(String((e as Error).message))) {
      return { seq: 0, snap: undefined };
    }
    throw e;
  }
}

/**
 * The sum of `user`'s deltas with sequence ≤ `upTo` (default: the last one,
 * asked of the stream leader), or of everything in the snapshot when that
 * already covers `upTo`. Deltas are read by direct gets from any replica; one
 * that lags is asked again until it has every delta up to `upTo`, so the sum
 * never misses one.
 */
export async function sumUsage(ctx: NatsFilesCtx, user: string, upTo?: number): Promise<Usage> {
  return (await _sum(ctx, user, upTo)).u;
}

/** {@linkcode sumUsage} and how many deltas it read. */
async function _sum(
  ctx: NatsFilesCtx,
  user: string,
  upTo?: number,
): Promise<{ u: Usage; read: number }> {
  const subject = `parley.usage.${tok(user)}`;
  for (let i = 0; i < _SUM_TRIES; i++) {
    const { seq, snap } = await _snapshot(ctx, subject);
    const got = await _sumAfter(ctx, subject, { seq, snap }, upTo);
    if (got && (await _snapshot(ctx, subject)).seq === seq) return got;
  }
  throw new RequestError("unavailable", "usage log changing too fast; retry");
}

/** Snapshot + deltas after it up to `upTo`; undefined when a compaction moved the snapshot. */
async function _sumAfter(
  ctx: NatsFilesCtx,
  subject: string,
  from: { seq: number; snap: Snapshot | undefined },
  upTo: number | undefined,
): Promise<{ u: Usage; read: number } | undefined> {
  const snap = from.snap;
  const end = upTo ?? await _lastSeq(ctx, subject);
  const u = _zero();
  if (snap) {
    u.files = snap.files;
    u.partial = snap.partial;
    u.reserved = snap.reserved;
    u.entries = snap.entries;
  }
  let seq = (snap?.base ?? 0) + 1;
  let lagged = 0;
  let read = 0;
  while (seq <= end) {
    const m = await ctx.jsm.direct.getMessage(USAGE_STREAM, { seq, next_by_subj: subject });
    if (!m || m.seq > end) {
      // A replica that has not applied everything up to `end` yet, or the deltas were purged
      // by a compaction since the snapshot was read.
      if (++lagged > _LAG_TRIES) throw new RequestError("unavailable", "usage log lagging");
      if (lagged % 20 === 0 && (await _snapshot(ctx, subject)).seq !== from.seq) return undefined;
      await new Promise((r) => setTimeout(r, 5));
      continue;
    }
    read++;
    const d = m.json<Partial<Usage>>();
    u.files += d.files ?? 0;
    u.partial += d.partial ?? 0;
    u.reserved += d.reserved ?? 0;
    u.entries += d.entries ?? 0;
    if (m.seq === end) break;
    seq = m.seq + 1;
  }
  return { u, read };
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
  const { u, read } = await _sum(ctx, user, ack.seq);
  if (read >= COMPACT_INLINE_AT) {
    // Sums read the deltas one by one: keep a busy user's log short between sweeps.
    await compactUser(ctx, user).catch(() => false);
  }
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

/**
 * Compacts the log of every user with at least `minDeltas` deltas: snapshot,
 * then purge the deltas it covers. Resolves with the number of users compacted.
 */
export async function compactUsage(ctx: NatsFilesCtx, minDeltas = COMPACT_AT): Promise<number> {
  const si = await ctx.jsm.streams.info(USAGE_STREAM, { subjects_filter: "parley.usage.*" });
  let done = 0;
  for (const [subject, count] of Object.entries(si.state.subjects ?? {})) {
    if (count < minDeltas) continue;
    if (await compactUser(ctx, untok(subject.split(".")[2]!))) done++;
  }
  return done;
}

/** Compacts one user's log; false when another compaction got there first. */
export async function compactUser(ctx: NatsFilesCtx, user: string): Promise<boolean> {
  const subject = `parley.usage.${tok(user)}`;
  const end = await _lastSeq(ctx, subject);
  const prev = await _snapshot(ctx, subject);
  if (end === 0 || end <= (prev.snap?.base ?? 0)) return false;
  const got = await _sumAfter(ctx, subject, prev, end);
  if (!got) return false;
  const snap: Snapshot = { base: end, ...got.u };
  // The snapshot is durable (acknowledged by a majority) before any delta it covers is purged.
  if (await casPublish(ctx, `${subject}.s`, JSON.stringify(snap), prev.seq) === undefined) {
    return false;
  }
  await ctx.jsm.streams.purge(USAGE_STREAM, { filter: subject, seq: end + 1 });
  await ctx.jsm.streams.purge(USAGE_STREAM, { filter: `${subject}.s`, keep: 1 });
  return true;
}
