/**
 * Chat data as the client sees it (PROTOCOL.md "Operations: chat").
 *
 * @module
 */

import type { ChatMessage, FileRef } from "../../protocol/chat_message.ts";

export type { ChatMessage };
/** A file shared in a message. */
export type ChatFile = FileRef;

/** Something that happened in chat, as delivered to listeners. */
export type ChatEvent =
  | { kind: "msg"; msg: ChatMessage; replay: boolean }
  | { kind: "joined"; room: string; user: string }
  | { kind: "left"; room: string; user: string; quit?: boolean; kicked?: string }
  | { kind: "kicked"; room: string; by: string; reason?: string }
  | { kind: "notice"; text: string }
  /** A room's topic was set (`text` empty: cleared) by `by` (empty when the server did not know). */
  | { kind: "topic"; room: string; text: string; by: string; ts: number }
  | { kind: "connection"; state: "lost" | "restored"; detail?: string };

/** Where a message goes: a room or a user. */
export type ChatTarget = { room: string } | { to: string };
