/**
 * Helpers for chat tests: collecting delivered messages and waiting for a
 * condition with a deadline (a deadline fails the test; it never measures speed).
 *
 * @module
 */
import type { ChatClient } from "../../client/chat/chat_client.ts";
import type { ChatEvent, ChatMessage } from "../../client/chat/chat_types.ts";

/** Waits until `cond()` holds; throws with `what` after `ms`. */
export async function waitFor(
  cond: () => boolean,
  what: string,
  ms = 10_000,
): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Records every message and event a chat client delivers. */
export function record(chat: ChatClient): { msgs: ChatMessage[]; events: ChatEvent[] } {
  const out = { msgs: [] as ChatMessage[], events: [] as ChatEvent[] };
  chat.onEvent((e) => {
    out.events.push(e);
    if (e.kind === "msg") out.msgs.push(e.msg);
  });
  return out;
}
