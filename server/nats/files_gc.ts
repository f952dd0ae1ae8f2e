/**
 * Garbage collection of the NATS files backend, a mark-and-sweep: chunk sets
 * that no index entry and no upload record names (references are derived by
 * scanning, never counted), and upload records left longer than the partial
 * TTL without a running session. A sweep marks an unreferenced chunk set
 * (`gc.<gen>` = when first seen, and the revision of its content record if it
 * is the stored copy of a content) and purges it only when a later sweep,
 * `graceMs` on, still finds it unreferenced — an upload finishing or a
 * directory move racing one sweep cannot lose bytes, and readers of a
 * replaced version keep a grace period. The stored copy of a content is freed
 * only if its content record still has the marked revision (no upload adopted
 * it since) and the sweep deletes that record with CAS first
 * (`files_content.ts`). The chunks of an upload in progress are named by its
 * record, so never freed. Two sweepers are safe, only wasteful;
 * `files_sweeper.ts` runs one at a time under a lease. A session whose lease
 * expired (its node died) is settled like a closed one: its reservation ends,
 * its stored bytes count as partial. Each sweep also compacts the usage log
 * (`compactUsage`).
 *
 * @module
 */
import {
  CHUNK_STREAM,
  entryGen,
  getJson,
  type IndexEntry,
  type NatsFilesCtx,
  purgeGen,
  storedBytes,
  tok,
  untok,
  type UploadRecord,
} from "./files_ctx.ts";
import { bumpUsage, compactUsage } from "./files_usage.ts";
import { RequestError } from "../errors.ts";
import { casJson, casWrite } from "./files_cas.ts";
import type { ContentRecord } from "./files_content.ts";

/** What a sweep did. */
export interface SweepReport {
  /** Chunk sets purged. */
  purged: number;
  /** Chunk sets marked for a later sweep. */
  marked: number;
  /** Stale upload records dropped. */
  expired: number;
  /** Uploads of dead sessions whose reservation became partial bytes. */
  settled: number;
  /** Users whose usage log was compacted. */
  compacted: number;
}

/** What `gc.<gen>` holds (a bare number: `at`, from before content records). */
interface Mark {
  at: number;
  /** Revision of the content record naming this chunk set, when one did. */
  rev?: number;
}

/** One sweep; `now` and the durations in ms. */
export async function sweepFiles(
  ctx: NatsFilesCtx,
  o: { graceMs: number; partialTtlMs: number; now?: number },
): Promise<SweepReport> {
  const now = o.now ?? Date.now();
  const report: SweepReport = { purged: 0, marked: 0, expired: 0, settled: 0, compacted: 0 };
  const live = new Set<string>();
  for await (const k of await ctx.kv.keys("h.>")) {
    const e = await getJson<IndexEntry>(ctx.kv, k);
    if (e?.value.t === "f") live.add(entryGen(e.value));
  }
  for await (const k of await ctx.kv.keys("u.>")) {
    const r = await getJson<UploadRecord>(ctx.kv, k);
    if (!r) continue;
    const running = !!r.value.lease && r.value.lease.until > now;
    if (!running && now - r.value.created > o.partialTtlMs && await dropUpload(ctx, k, r)) {
      report.expired++;
      continue;
    }
    if (!running && r.value.lease && await _settleDead(ctx, k, r)) report.settled++;
    live.add(r.value.gen);
  }
  // Read after the scans above: an upload adopting a content rewrites its record before it
  // writes its index entry, so either the scan saw the entry or this read sees the new revision.
  const contents = new Map<string, { key: string; rev: number }>();
  for (const k of await _keys(ctx, "c.*")) {
    const c = await getJson<ContentRecord>(ctx.kv, k);
    if (c) contents.set(c.value.gen, { key: k, rev: c.rev });
  }
  const si = await ctx.jsm.streams.info(CHUNK_STREAM, { subjects_filter: "parley.up.>" });
  const gens = new Set(Object.keys(si.state.subjects ?? {}).map((s) => s.split(".")[2]!));
  for (const k of await _keys(ctx, "gc.*")) {
    const gen = k.slice(3);
    if (live.has(gen) || !gens.has(gen)) await ctx.kv.delete(k);
  }
  // A content record whose bytes are gone (an earlier sweep stopped half way) is dropped.
  for (const [gen, c] of contents) {
    if (!gens.has(gen) && !live.has(gen)) await casWrite(ctx, c.key, null, c.rev);
  }
  for (const gen of gens) {
    if (live.has(gen)) continue;
    const content = contents.get(gen);
    const got = await getJson<Mark | number>(ctx.kv, `gc.${gen}`);
    const mark = typeof got?.value === "number" ? { at: got.value } : got?.value;
    if (!mark || mark.rev !== content?.rev) {
      // First seen unreferenced, or its content was adopted since the mark: (re)start the grace.
      const next: Mark = content ? { at: now, rev: content.rev } : { at: now };
      await ctx.kv.put(`gc.${gen}`, JSON.stringify(next));
      report.marked++;
    } else if (now - mark.at >= o.graceMs) {
      // The content record goes first, with CAS: an upload adopting it now wins or loses whole.
      if (content && await casWrite(ctx, content.key, null, content.rev) === undefined) continue;
      await purgeGen(ctx, gen);
      await ctx.kv.delete(`gc.${gen}`);
      report.purged++;
    }
  }
  report.compacted = await compactUsage(ctx);
  return report;
}

/** A session whose lease expired (its node died): its reservation becomes the bytes it stored. */
async function _settleDead(
  ctx: NatsFilesCtx,
  key: string,
  r: { value: UploadRecord; rev: number },
): Promise<boolean> {
  const stored = await storedBytes(ctx, r.value.gen);
  const next: UploadRecord = { ...r.value, partial: stored };
  delete next.lease;
  if (await casJson(ctx, key, next, r.rev) === undefined) return false;
  await bumpUsage(ctx, untok(key.split(".")[1]!), { reserved: -r.value.size, partial: stored });
  return true;
}

async function _keys(ctx: NatsFilesCtx, filter: string): Promise<string[]> {
  const out: string[] = [];
  for await (const k of await ctx.kv.keys(filter)) out.push(k);
  return out;
}

/**
 * Drops the upload record `key` read at `rev` (its chunks are left to the
 * sweep) and releases what it held: its partial bytes, and the reservation of
 * an expired lease. False when it changed meanwhile.
 */
export async function dropUpload(
  ctx: NatsFilesCtx,
  key: string,
  r: { value: UploadRecord; rev: number },
): Promise<boolean> {
  if (await casWrite(ctx, key, null, r.rev) === undefined) return false;
  const reserved = r.value.lease ? -r.value.size : 0;
  await bumpUsage(ctx, untok(key.split(".")[1]!), { partial: -r.value.partial, reserved });
  return true;
}

/**
 * Makes room for one more upload of `user` within `max` (running or
 * interrupted): `busy` when `max` sessions run, else the oldest interrupted
 * uploads are dropped.
 */
export async function makeRoom(ctx: NatsFilesCtx, user: string, max: number): Promise<void> {
  const prefix = `u.${tok(user)}`;
  const idle: { key: string; r: { value: UploadRecord; rev: number } }[] = [];
  let running = 0;
  for (const key of await _keys(ctx, `${prefix}.*`)) {
    const r = await getJson<UploadRecord>(ctx.kv, key);
    if (!r) continue;
    if (r.value.lease && r.value.lease.until > Date.now()) running++;
    else idle.push({ key, r });
  }
  if (running >= max) throw new RequestError("busy", `at most ${max} uploads at once per user`);
  idle.sort((a, b) => a.r.value.created - b.r.value.created);
  while (running + idle.length >= max && idle.length > 0) {
    const { key, r } = idle.shift()!;
    await dropUpload(ctx, key, r);
  }
}
