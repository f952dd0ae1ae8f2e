/**
 * Paging by bytes. A reply travels in one frame header, which is at most
 * 64 KiB, so every list a chat reply carries is cut to a byte budget, never
 * by count alone, and says whether more exists and where to continue.
 *
 * The budgets leave room for the rest of the reply: one page of messages
 * plus the other fields stays under {@linkcode REPLY_BUDGET}, except that a
 * page always holds at least one message (so a reader always makes
 * progress), and one message is at most {@linkcode MAX_MESSAGE_JSON} bytes.
 *
 * @module
 */
import type { HistoryPage, HistoryQuery } from "../backend/chat.ts";
import { type ChatMessage, idNum } from "./chat_message.ts";

export type { HistoryPage, HistoryQuery };

/** Target size of a whole reply in bytes of JSON (the frame header limit is 64 KiB). */
export const REPLY_BUDGET = 48 * 1024;
/** Most bytes one stored message may take as JSON; `chat.send` refuses bigger ones. */
export const MAX_MESSAGE_JSON = 32 * 1024;
/** Most bytes of JSON the list of user names in a `chat.join` reply may take. */
export const USERS_BUDGET = 8 * 1024;

const _ENC = new TextEncoder();

/** Bytes of `v` as JSON in UTF-8. */
export function jsonBytes(v: unknown): number {
  return _ENC.encode(JSON.stringify(v)).byteLength;
}

/** Cuts a page out of `list` (sorted by id). */
export function pageOf(list: readonly ChatMessage[], q: HistoryQuery): HistoryPage {
  const keep = q.keep ?? (() => true);
  const start = q.after === undefined ? 0 : firstAfter(list, q.after);
  const end = q.before === undefined ? list.length : firstAfter(list, q.before - 1);
  const out: ChatMessage[] = [];
  let bytes = 2;
  const fits = (m: ChatMessage): boolean => {
    if (out.length >= q.limit) return false;
    const n = jsonBytes(m) + 1;
    if (out.length > 0 && bytes + n > q.budget) return false;
    bytes += n;
    return true;
  };
  if (q.after !== undefined) {
    let i = start;
    for (; i < end; i++) {
      const m = list[i]!;
      if (!keep(m)) continue;
      if (!fits(m)) break;
      out.push(m);
    }
    const more = _anyKept(list, i, end, keep);
    return more ? { messages: out, more, after: out.at(-1)!.id } : { messages: out, more };
  }
  let i = end - 1;
  for (; i >= start; i--) {
    const m = list[i]!;
    if (!keep(m)) continue;
    if (!fits(m)) break;
    out.push(m);
  }
  out.reverse();
  const more = _anyKept(list, start, i + 1, keep);
  return more ? { messages: out, more, before: out[0]!.id } : { messages: out, more };
}

/**
 * Takes items from the front of `items` while their JSON fits `budget`
 * bytes, and always the first (callers bound one item well below a frame).
 */
export function fitList<T>(items: readonly T[], budget: number): { items: T[]; more: boolean } {
  let bytes = 2;
  let n = 0;
  for (; n < items.length; n++) {
    bytes += jsonBytes(items[n]) + 1;
    if (n > 0 && bytes > budget) break;
  }
  return { items: items.slice(0, n), more: n < items.length };
}

/** Index of the first message in `list` with an id above `after`. */
export function firstAfter(list: readonly ChatMessage[], after: number): number {
  let lo = 0, hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (idNum(list[mid]!.id) > after) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function _anyKept(
  list: readonly ChatMessage[],
  from: number,
  to: number,
  keep: (m: ChatMessage) => boolean,
): boolean {
  for (let i = from; i < to; i++) if (keep(list[i]!)) return true;
  return false;
}
