/**
 * Chat data as the client sees it (PROTOCOL.md "Operations: chat").
 *
 * @module
 */

/** A file shared in a message. */
export interface ChatFile {
  path: string;
  name: string;
  size: number;
  sha256: string;
}

/** A chat message. Exactly one of `room` / `to` is set. */
export interface ChatMessage {
  id: string;
  room?: string;
  to?: string;
  from: string;
  text: string;
  ts: number;
  me?: true;
  file?: ChatFile;
  mentions?: string[];
}

/** Something that happened in chat, as delivered to listeners. */
export type ChatEvent =
  | { kind: "msg"; msg: ChatMessage; replay: boolean }
  | { kind: "joined"; room: string; user: string }
  | { kind: "left"; room: string; user: string; quit?: boolean; kicked?: string }
  | { kind: "kicked"; room: string; by: string; reason?: string }
  | { kind: "notice"; text: string }
  | { kind: "connection"; state: "lost" | "restored"; detail?: string };

/** Where a message goes: a room or a user. */
export type ChatTarget = { room: string } | { to: string };
