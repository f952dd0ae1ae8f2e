/**
 * History pages read from the chat stream (CLUSTER.md §3.6). A range of
 * one subject filter is read with a short-lived ordered consumer started at
 * the range's first sequence; it knows how many messages match when it is
 * created, so an empty range costs no wait. A room is one filter; a user's
 * direct messages are two (received and sent), merged by sequence.
 *
 * Forward pages (`after`) read each filter from `after + 1` until it alone
 * fills the page and one more. Backward pages (newest first) cannot be read
 * backwards, so they read windows of sequences ending at the page's upper
 * end, each twice as wide as the one before, until the messages read fill
 * the page or the window reaches the oldest kept message. The page itself
 * is then cut by {@linkcode pageOf}, exactly as the embedded log cuts it.
 *
 * @module
 */
import {
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type MsgRequest,
  type StoredMsg,
} from "@nats-io/jetstream";
import type { ChatMessage, ChatWhere, HistoryPage, HistoryQuery } from "../backend/chat.ts";
import { jsonBytes, pageOf } from "../chat/chat_pager.ts";
import { CHAT_STREAM, decodeMessage, filtersOf } from "./chat_subjects.ts";

/** Messages fetched per pull. */
const _BATCH = 256;
/** Width of the first backward window, in sequences. */
const _FIRST_WINDOW = 256;
/** How long one pull may wait for messages the consumer said were there. */
const _PULL_EXPIRES_MS = 5_000;

/** What a reader needs: the stream's client and manager. */
export interface HistoryDeps {
  js: JetStreamClient;
  jsm: JetStreamManager;
}

/** One page of `where`'s history, cut by `q`. */
export async function readPage(
  deps: HistoryDeps,
  where: ChatWhere,
  q: HistoryQuery,
): Promise<HistoryPage> {
  const filters = filtersOf(where);
  const keep = q.keep ?? (() => true);
  if (q.after !== undefined) {
    const from = q.after + 1;
    const to = q.before === undefined ? Infinity : q.before - 1;
    const reads = await Promise.all(
      filters.map((f) => readRange(deps.js, f, from, to, _filler(q, keep))),
    );
    // past the first filter that stopped early, another filter's messages may be missing
    const stops = reads.filter((r) => r.full).map((r) => Number(r.messages.at(-1)!.id));
    const upto = Math.min(Infinity, ...stops);
    const merged = _merge(reads.map((r) => r.messages)).filter((m) => Number(m.id) <= upto);
    return pageOf(merged, q);
  }
  const ends = await Promise.all(filters.map((f) => _ends(deps.jsm, f)));
  const floor = Math.min(...ends.map((e) => e.first));
  let hi = Math.min(
    q.before === undefined ? Infinity : q.before - 1,
    Math.max(...ends.map((e) => e.last)),
  );
  let list: ChatMessage[] = [];
  for (let width = _FIRST_WINDOW; hi >= floor; width *= 2) {
    const lo = Math.max(floor, hi - width + 1);
    const reads = await Promise.all(filters.map((f) => readRange(deps.js, f, lo, hi)));
    list = [..._merge(reads.map((r) => r.messages)), ...list];
    if (_fillsFromBack(list, q, keep)) break;
    hi = lo - 1;
  }
  return pageOf(list, q);
}

/** What {@linkcode readRange} read, and whether `enough` stopped it. */
export interface RangeRead {
  messages: ChatMessage[];
  full: boolean;
}

/**
 * Messages on `filter` with sequences from `from` to `to`, oldest first,
 * stopping early once `enough` says so (told each message in turn).
 */
export async function readRange(
  js: JetStreamClient,
  filter: string,
  from: number,
  to: number,
  enough: (next: ChatMessage) => boolean = () => false,
): Promise<RangeRead> {
  const messages: ChatMessage[] = [];
  if (from > to) return { messages, full: false };
  const c = await js.consumers.get(CHAT_STREAM, {
    filter_subjects: filter,
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: Math.max(1, from),
  });
  try {
    let pending = (await c.info(true)).num_pending;
    while (pending > 0) {
      const batch = await c.fetch({
        max_messages: Math.min(pending, _BATCH),
        expires: _PULL_EXPIRES_MS,
      });
      let got = 0;
      try {
        for await (const m of batch) {
          got++;
          pending = m.info.pending;
          if (m.seq > to) return { messages, full: false };
          const msg = decodeMessage(m.seq, m.subject, m.data);
          if (msg) messages.push(msg);
          if (msg && enough(msg)) return { messages, full: true };
          if (pending === 0) break;
        }
      } finally {
        batch.stop();
      }
      if (got === 0) throw new Error(`history read of ${filter} got no messages from the stream`);
    }
    return { messages, full: false };
  } finally {
    await c.delete().catch(() => false);
  }
}

/**
 * One stored message, asked of the stream's leader. Not a direct get: with
 * `allow_direct` any replica answers those, and a lagging one would miss
 * messages below the watermark (a join's history must hold them all).
 * nats-server 2.9 takes `next_by_subj` here too, though the client's type
 * for this call lists only `seq` and `last_by_subj`.
 */
export function leaderGet(
  jsm: JetStreamManager,
  query: MsgRequest | { next_by_subj: string; seq: number },
): Promise<StoredMsg | null> {
  return jsm.streams.getMessage(CHAT_STREAM, query as MsgRequest);
}

/** The first and last kept sequence on `filter` (both 0 when it holds nothing). */
async function _ends(
  jsm: JetStreamManager,
  filter: string,
): Promise<{ first: number; last: number }> {
  const [first, last] = await Promise.all([
    leaderGet(jsm, { next_by_subj: filter, seq: 1 }),
    leaderGet(jsm, { last_by_subj: filter }),
  ]);
  return first && last ? { first: first.seq, last: last.seq } : { first: Infinity, last: 0 };
}

/**
 * A counter told messages one by one; it says true once those it kept make
 * a full page and one more (so the page is cut inside them and `more` is
 * known), counted as {@linkcode pageOf} counts.
 */
function _filler(q: HistoryQuery, keep: (m: ChatMessage) => boolean): (m: ChatMessage) => boolean {
  let count = 0, bytes = 2;
  return (m) => {
    if (!keep(m)) return false;
    count++;
    bytes += jsonBytes(m) + 1;
    return count > q.limit || (count >= 2 && bytes > q.budget);
  };
}

/** Whether `list` (sorted) fills a page counted from its newest end. */
function _fillsFromBack(
  list: readonly ChatMessage[],
  q: HistoryQuery,
  keep: (m: ChatMessage) => boolean,
): boolean {
  const add = _filler(q, keep);
  for (let k = list.length - 1; k >= 0; k--) if (add(list[k]!)) return true;
  return false;
}

/** Sorted lists merged into one, a message on two lists (a note to self) once. */
function _merge(lists: readonly ChatMessage[][]): ChatMessage[] {
  if (lists.length === 1) return lists[0]!;
  const byId = new Map<string, ChatMessage>();
  for (const l of lists) for (const m of l) byId.set(m.id, m);
  return [...byId.values()].sort((a, b) => Number(a.id) - Number(b.id));
}
