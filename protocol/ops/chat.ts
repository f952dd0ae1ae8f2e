/**
 * The chat operations and events (PROTOCOL.md "Operations: chat"): their
 * names, the argument types of each operation, and the reply and event
 * payload types. Shared by the server and the client, which sends them. The
 * argument schemas the server validates with are in `chat_args.ts`; this
 * file imports zod only as types, so a client never loads it.
 *
 * @module
 */
import type { z } from "zod";
import type { ChatMessage } from "../chat_message.ts";
import type { CHAT_ARGS } from "./chat_args.ts";

/** Room names: like user names, 1–32 of `a-z 0-9 _ . -`, not starting with `.` or `-`. */
export const ROOM_NAME: RegExp = /^[a-z0-9_][a-z0-9_.-]{0,31}$/;
/** User names: 1–32 of `a-z 0-9 _ . -`, not starting with `.` or `-`. */
export const USER_NAME: RegExp = /^[a-z0-9_][a-z0-9_.-]{0,31}$/;

export const CHAT_JOIN = "chat.join";
export const CHAT_LEAVE = "chat.leave";
export const CHAT_ROOMS = "chat.rooms";
export const CHAT_SEND = "chat.send";
export const CHAT_HISTORY = "chat.history";
export const CHAT_INBOX = "chat.inbox";
export const CHAT_GET = "chat.get";
export const CHAT_WHO = "chat.who";
export const CHAT_TIME = "chat.time";
export const CHAT_IGNORE = "chat.ignore";
export const CHAT_KICK = "chat.kick";
export const CHAT_BAN = "chat.ban";
export const CHAT_MUTE = "chat.mute";
export const CHAT_TOPIC = "chat.topic";

/** Event: a message for a room the connection is in, or a direct message. */
export const CHAT_MSG = "chat.msg";
/** Event: a user joined a room the connection is in. */
export const CHAT_JOINED = "chat.joined";
/** Event: a user left (or quit, or was kicked from) a room the connection is in. */
export const CHAT_LEFT = "chat.left";
/** Event: this connection was kicked from a room. */
export const CHAT_KICKED = "chat.kicked";
/** Event: a notice for this user (muted, unmuted, …). */
export const CHAT_NOTICE = "chat.notice";
/** Event: the topic of a room the connection is in was set or cleared (same name as the op). */
export const CHAT_TOPIC_EVENT = "chat.topic";

/** Longest room topic, in Unicode code points (`too_large` beyond), as IRC's usual TOPICLEN. */
export const TOPIC_MAX_CHARS = 390;

/**
 * The chat feature's own error codes (PROTOCOL.md "Operations: chat"):
 * `too_many_rooms` (rooms per user or connection), `disk_full` (the message
 * was not stored), `not_joined` (a `chat.send` to a room the connection is
 * not in, after it joined some room: it left or was kicked).
 */
export type ChatErrorCode = "too_many_rooms" | "disk_full" | "not_joined";

/** The arguments a client sends for chat operation `Op`. */
export type ChatArgs<Op extends keyof typeof CHAT_ARGS> = z.input<(typeof CHAT_ARGS)[Op]>;

/**
 * Idempotency keys of `chat.send`: 1–64 printable ASCII characters (no
 * space). Keys belong to the sending user; the same key within the
 * server's dedupe window stores the message once.
 */
export const SEND_KEY: RegExp = /^[\x21-\x7e]{1,64}$/;

/** A page of messages (`chat.history`, `chat.inbox`). */
export interface ChatPage {
  messages: ChatMessage[];
  more: boolean;
  after?: string;
  before?: string;
  /**
   * The id space the ids belong to (`chat.history` only). Another value than
   * before means the server's message store was recreated: old ids are void.
   */
  epoch?: string;
}

/** A room's topic: its text, who set it and when (ms since the epoch). */
export interface ChatTopic {
  text: string;
  by: string;
  ts: number;
}

/** Reply of `chat.join`. */
export interface ChatJoinReply {
  room: string;
  users: string[];
  /** The room's topic, if it has one (absent from servers before topics were added). */
  topic?: ChatTopic;
  history: ChatMessage[];
  more: boolean;
  after?: string;
  /** Set when messages the client asked for are gone. */
  gap?: boolean;
  /** The id space of `after` and of the ids in `history` (see {@linkcode ChatPage.epoch}). */
  epoch?: string;
}

/** Reply of `chat.send`. */
export interface ChatSendReply {
  id: string;
  ts: number;
  /** Set when a message with the same `key` was stored already: `id` and `ts` are that message's. */
  dup?: true;
}

/** Reply of `chat.get`. */
export interface ChatGetReply {
  message: ChatMessage;
}

/** A room in a `chat.rooms` reply. */
export interface ChatRoomInfo {
  room: string;
  users: number;
  joined: boolean;
  /** The room's topic text, if it has one. */
  topic?: string;
}

/** The server's chat limits a client paces and splits its messages by (`chat.rooms` reply). */
export interface ChatLimits {
  /** Messages per second one user may send, sustained (more get `rate_limited`). */
  ratePerSecond: number;
  /** Messages one user may send in a burst. */
  rateBurst: number;
  /** Largest message text in UTF-8 bytes (more get `too_large`). */
  maxTextBytes: number;
}

/** Reply of `chat.rooms` (one page). */
export interface ChatRoomsReply {
  rooms: ChatRoomInfo[];
  defaultRoom: string;
  /** The server's chat limits (absent from servers before it was added). */
  limits?: ChatLimits;
  /** Whether the asking user is an admin (absent from servers before it was added). */
  admin?: boolean;
  more: boolean;
  after?: string;
}

/** A user in a `chat.who` reply. */
export interface ChatWhoInfo {
  name: string;
  rooms: string[];
  idleMs: number;
  connections: number;
}

/** Reply of `chat.who` (one page). */
export interface ChatWhoReply {
  room?: string;
  users: ChatWhoInfo[];
  more: boolean;
  after?: string;
}

/** Reply of `chat.time`. */
export interface ChatTimeReply {
  ts: number;
  text: string;
  tz: string;
}

/** Payload of `chat.joined`. */
export interface ChatJoinedEvent {
  room: string;
  user: string;
}

/** Payload of `chat.left`. */
export interface ChatLeftEvent {
  room: string;
  user: string;
  quit?: boolean;
  kicked?: string;
}

/** Payload of `chat.kicked`. */
export interface ChatKickedEvent {
  room: string;
  by: string;
  reason?: string;
}

/** Reply of `chat.topic`: the room's topic after the call (absent: it has none). */
export interface ChatTopicReply {
  room: string;
  topic?: ChatTopic;
}

/**
 * Payload of the `chat.topic` event: the new topic of `room`, set by `by`
 * at `ts`; `text` is empty when the topic was cleared.
 */
export interface ChatTopicEvent {
  room: string;
  text: string;
  by: string;
  ts: number;
}

/** Payload of `chat.notice`. */
export interface ChatNoticeEvent {
  text: string;
}

/** Reply of `chat.ignore`: the users now ignored. */
export interface ChatIgnoreReply {
  ignored: string[];
}

/** Reply of `chat.kick`: how many connections left the room. */
export interface ChatKickReply {
  kicked: number;
}

/** Reply of `chat.ban`: the banned users (cut to fit; `bannedMore` when cut). */
export interface ChatBanReply {
  banned: string[];
  bannedMore?: true;
  /** Connections closed by this ban. */
  disconnected?: number;
}

/** Reply of `chat.mute`. */
export interface ChatMuteReply {
  muted: boolean;
  /** Until when (ms since the epoch). */
  until?: number;
}
