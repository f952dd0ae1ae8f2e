/**
 * The chat operations and events (PROTOCOL.md "Operations: chat"): their
 * names, the schema of each operation's arguments, and the reply and event
 * payload types. Shared by the server, which validates arguments with these
 * schemas, and the client, which sends them.
 *
 * @module
 */
import { z } from "zod";
import type { ChatMessage } from "../chat_message.ts";

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

/**
 * The chat feature's own error codes (PROTOCOL.md "Operations: chat"):
 * `too_many_rooms` (rooms per user or connection), `disk_full` (the message
 * was not stored).
 */
export type ChatErrorCode = "too_many_rooms" | "disk_full";

/** Schema of a file reference in a message. */
export const FILE_REF = z.object({
  path: z.string().min(1).max(4096).refine((p) => !p.includes("\0"), "no NUL bytes"),
  name: z.string().min(1).max(255).refine((p) => !/[\0\n\r]/.test(p), "no control characters"),
  size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, "64 lower-case hex characters"),
}).strict();

const _ROOM = z.string().regex(
  ROOM_NAME,
  "room names are 1-32 of a-z 0-9 _ . - (lower case), not starting with . or -",
);
const _USER = z.string().regex(USER_NAME, "not a valid user name");
const _ID = z.union([z.string().regex(/^\d{1,20}$/), z.number().int().min(0)])
  .transform((v) => Number(v));
const _LIMIT = z.number().int().min(1).max(1000);
const _REASON = z.string().max(500).optional();

/** Argument schema of each chat operation. */
export const CHAT_ARGS = {
  [CHAT_JOIN]: z.object({ room: _ROOM.optional(), after: _ID.optional(), limit: _LIMIT.optional() })
    .strict(),
  [CHAT_LEAVE]: z.object({ room: _ROOM }).strict(),
  [CHAT_ROOMS]: z.object({ after: _ROOM.optional() }).strict(),
  [CHAT_SEND]: z.object({
    room: _ROOM.optional(),
    to: _USER.optional(),
    text: z.string().max(1_000_000).refine((t) => !t.includes("\0"), "no NUL characters"),
    me: z.boolean().optional(),
    file: FILE_REF.optional(),
  }).strict().refine(
    (a) => !(a.room !== undefined && a.to !== undefined),
    "give room or to, not both",
  ),
  [CHAT_HISTORY]: z.object({
    room: _ROOM.optional(),
    dm: z.boolean().optional(),
    after: _ID.optional(),
    before: _ID.optional(),
    limit: _LIMIT.optional(),
  }).strict(),
  [CHAT_INBOX]: z.object({ limit: _LIMIT.optional() }).strict(),
  [CHAT_GET]: z.object({ id: _ID }).strict(),
  [CHAT_WHO]: z.object({ room: _ROOM.optional(), after: _USER.optional() }).strict(),
  [CHAT_TIME]: z.object({ format: z.string().max(200).optional() }).strict(),
  [CHAT_IGNORE]: z.object({ user: _USER.optional(), off: z.boolean().optional() }).strict(),
  [CHAT_KICK]: z.object({ user: _USER, room: _ROOM, reason: _REASON }).strict(),
  [CHAT_BAN]: z.object({ user: _USER, reason: _REASON, off: z.boolean().optional() }).strict(),
  [CHAT_MUTE]: z.object({
    user: _USER,
    minutes: z.number().positive().max(525_600).optional(),
    off: z.boolean().optional(),
  }).strict(),
} as const;

/** The arguments a client sends for chat operation `Op`. */
export type ChatArgs<Op extends keyof typeof CHAT_ARGS> = z.input<(typeof CHAT_ARGS)[Op]>;

/** A page of messages (`chat.history`, `chat.inbox`). */
export interface ChatPage {
  messages: ChatMessage[];
  more: boolean;
  after?: string;
  before?: string;
}

/** Reply of `chat.join`. */
export interface ChatJoinReply {
  room: string;
  users: string[];
  history: ChatMessage[];
  more: boolean;
  after?: string;
  /** Set when messages the client asked for are gone. */
  gap?: boolean;
}

/** Reply of `chat.send`. */
export interface ChatSendReply {
  id: string;
  ts: number;
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
}

/** Reply of `chat.rooms` (one page). */
export interface ChatRoomsReply {
  rooms: ChatRoomInfo[];
  defaultRoom: string;
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
