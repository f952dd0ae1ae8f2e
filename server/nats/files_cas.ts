/**
 * Compare-and-set on the `parley_fs` bucket that holds on nats-server 2.9.10
 * at R3. The stock KV `update(key, value, rev)` sends only
 * `Nats-Expected-Last-Subject-Sequence`, which a clustered 2.9 stream checks
 * before the raft proposal, not when applying it: concurrent writers at one
 * revision all pass (measured: 12 writers over 3 servers, 200 rounds, several
 * winners in 199 rounds, all 12 in some; `create` over a deleted key the same
 * in 190 rounds). Only an expected sequence of 0 on a subject never written
 * was atomic, and so was the stream's `Nats-Msg-Id` dedupe (one winner in
 * every round). So each write here carries both: the expected revision, which
 * refuses a writer whose revision is already superseded, and the message id
 * `<hash of key>@<revision>`, which the stream leader stages under its lock
 * before proposing, so of the writers that raced at one revision exactly one
 * is stored and the others get `duplicate`. Every write to a key that may be
 * contended must go through here: a plain put would not take part in the
 * dedupe. The dedupe window (2 min by default) only needs to cover writers
 * in flight together.
 *
 * A writer trusts its acknowledgement and reads nothing back: 2.9.10 checks
 * the message id, and an expected sequence of 0, as each entry is applied,
 * in log order on every replica (`processJetStreamMsg`), so a stored write
 * acknowledged without `duplicate` is the one write at its revision. A
 * read-back (win only if the first message after `rev` is one's own) would
 * not be sound here anyway: the bucket keeps one message per key
 * (`history: 1`), so a later message on the key removes the earlier one.
 *
 * @module
 */
import { headers } from "@nats-io/transport-node";
import { createHash } from "node:crypto";
import { FS_BUCKET, isConflict, type NatsFilesCtx } from "./files_ctx.ts";

/** A key's value (undefined when missing or deleted) and the revision to write at (0: never written). */
export interface Read<T> {
  value: T | undefined;
  rev: number;
}

/** Reads `key` from the stream leader with the revision a {@linkcode casWrite} needs. */
export async function readKey<T>(ctx: NatsFilesCtx, key: string): Promise<Read<T>> {
  const e = await ctx.kv.get(key);
  if (!e) return { value: undefined, rev: 0 };
  if (e.operation !== "PUT" || e.length === 0) return { value: undefined, rev: e.revision };
  return { value: e.json<T>(), rev: e.revision };
}

/**
 * Writes `value` (a JSON string, or `null` to delete) to `key` if its last
 * revision is still `rev` (0: never written). Resolves with the new revision,
 * or undefined when another write got there first (nothing was written).
 */
export function casWrite(
  ctx: NatsFilesCtx,
  key: string,
  value: string | null,
  rev: number,
): Promise<number | undefined> {
  return casPublish(ctx, `$KV.${FS_BUCKET}.${key}`, value, rev);
}

/**
 * Publishes `data` on `subject` of any stream if the last message on that
 * subject is still `rev` (0: none ever); `null` publishes an empty KV delete
 * marker. The new sequence, or undefined when another publish got there first.
 */
export async function casPublish(
  ctx: Pick<NatsFilesCtx, "js">,
  subject: string,
  data: string | null,
  rev: number,
): Promise<number | undefined> {
  const h = headers();
  h.set("Nats-Expected-Last-Subject-Sequence", String(rev));
  h.set("Nats-Msg-Id", `${createHash("sha256").update(subject).digest("hex")}@${rev}`);
  if (data === null) h.set("KV-Operation", "DEL");
  try {
    const pa = await ctx.js.publish(subject, data ?? new Uint8Array(0), {
      headers: h,
      timeout: 20_000,
    });
    return pa.duplicate ? undefined : pa.seq;
  } catch (e) {
    if (isConflict(e)) return undefined;
    throw e;
  }
}

/** {@linkcode casWrite} of a value as JSON. */
export function casJson(
  ctx: NatsFilesCtx,
  key: string,
  value: unknown,
  rev: number,
): Promise<number | undefined> {
  return casWrite(ctx, key, JSON.stringify(value), rev);
}
