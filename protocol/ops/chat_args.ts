/**
 * The argument schemas of the chat operations (PROTOCOL.md "Operations:
 * chat"), which the server validates requests with. Kept apart from
 * `chat.ts` so that the client, which needs only the names and types, does
 * not load zod.
 *
 * @module
 */
import { z } from "zod";
import {
  CHAT_BAN,
  CHAT_GET,
  CHAT_HISTORY,
  CHAT_IGNORE,
  CHAT_INBOX,
  CHAT_JOIN,
  CHAT_KICK,
  CHAT_LEAVE,
  CHAT_MUTE,
  CHAT_ROOMS,
  CHAT_SEND,
  CHAT_TIME,
  CHAT_TOPIC,
  CHAT_WHO,
  ROOM_NAME,
  SEND_KEY,
  USER_NAME,
} from "./chat.ts";
import { fitsCodePoints, fitsUtf8 } from "../text.ts";

/** Schema of a file reference in a message. */
export const FILE_REF = z.object({
  path: z.string().min(1).refine((p) => fitsUtf8(p, 4096), "at most 4096 UTF-8 bytes")
    .refine((p) => !p.includes("\0"), "no NUL bytes"),
  name: z.string().min(1).refine((p) => fitsUtf8(p, 255), "at most 255 UTF-8 bytes")
    .refine((p) => !/[\0\n\r]/.test(p), "no control characters"),
  size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, "64 lower-case hex characters"),
}).strict();

/** Room names are folded to lower case (`#Lobby` is `#lobby`), then checked. */
const _ROOM = z.string().transform((r) => r.toLowerCase()).pipe(
  z.string().regex(
    ROOM_NAME,
    "room names are 1-32 of a-z 0-9 _ . -, not starting with . or -",
  ),
);
const _USER = z.string().regex(USER_NAME, "not a valid user name");
const _ID = z.union([z.string().regex(/^\d{1,20}$/), z.number().int().min(0)])
  .transform((v) => Number(v));
const _LIMIT = z.number().int().min(1).max(1000);
const _REASON = z.string().refine((r) => fitsCodePoints(r, 500), "at most 500 characters")
  .optional();

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
    key: z.string().regex(SEND_KEY, "key is 1-64 printable ASCII characters, no spaces")
      .optional(),
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
  [CHAT_TIME]: z.object({
    format: z.string().refine((f) => fitsCodePoints(f, 200), "at most 200 characters").optional(),
  }).strict(),
  [CHAT_IGNORE]: z.object({ user: _USER.optional(), off: z.boolean().optional() }).strict(),
  [CHAT_KICK]: z.object({ user: _USER, room: _ROOM, reason: _REASON }).strict(),
  [CHAT_BAN]: z.object({ user: _USER, reason: _REASON, off: z.boolean().optional() }).strict(),
  // length and control characters are checked by the server (`too_large`, `bad_request`)
  [CHAT_TOPIC]: z.object({ room: _ROOM, text: z.string().optional() }).strict(),
  [CHAT_MUTE]: z.object({
    user: _USER,
    minutes: z.number().positive().max(525_600).optional(),
    off: z.boolean().optional(),
  }).strict(),
} as const;
