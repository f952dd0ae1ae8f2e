/**
 * The chat message shape (PROTOCOL.md "Operations: chat") and validation of
 * what clients send and what journals hold.
 *
 * @module
 */
import { z } from "zod";

export type { ChatMessage, FileRef } from "../../protocol/chat_message.ts";
import type { ChatMessage } from "../../protocol/chat_message.ts";
import { ROOM_NAME } from "../../protocol/ops/chat.ts";
import { FILE_REF } from "../../protocol/ops/chat_args.ts";

export { FILE_REF, ROOM_NAME };

const _MESSAGE = z.object({
  id: z.string().regex(/^\d{1,20}$/),
  room: z.string().regex(ROOM_NAME).optional(),
  to: z.string().optional(),
  from: z.string(),
  text: z.string(),
  ts: z.number(),
  me: z.literal(true).optional(),
  file: FILE_REF.optional(),
  mentions: z.array(z.string()).optional(),
});

/** Checks a journal line; undefined when it is not a message. */
export function parseStoredMessage(v: unknown): ChatMessage | undefined {
  const r = _MESSAGE.safeParse(v);
  if (!r.success) return undefined;
  if ((r.data.room === undefined) === (r.data.to === undefined)) return undefined;
  return r.data as ChatMessage;
}

/** Numeric value of a message id (ids compare numerically). */
export function idNum(id: string | number): number {
  return typeof id === "number" ? id : Number(id);
}

/** User names mentioned as `@name` in `text`. */
export function findMentions(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.matchAll(/(?:^|[^\w@])@([a-z0-9_][a-z0-9_.-]{0,31})/g)) {
    out.add(m[1]!.replace(/[.-]+$/, ""));
  }
  return [...out];
}
