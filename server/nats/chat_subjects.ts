/**
 * Where chat messages live in JetStream (CLUSTER.md §3.2): one stream,
 * {@linkcode CHAT_STREAM}, with a subject per room
 * (`parley.msg.room.<room>`) and per direct-message pair
 * (`parley.msg.dm.<to>.<from>`). A name becomes one subject token: every
 * character outside `[a-z0-9_-]` (the `.` rooms and users may hold, above
 * all) is written as `%XX`, so a name never splits a token or reads as a
 * wildcard.
 *
 * @module
 */
import type { ChatMessage, ChatWhere, NewMessage } from "../backend/chat.ts";
import { parseStoredMessage } from "../chat/chat_message.ts";

/** The stream that holds every room and direct message. */
export const CHAT_STREAM = "PARLEY_MSG";
/** Every chat subject (the stream's subjects and the feed's filter). */
export const CHAT_SUBJECTS = "parley.msg.>";
/** Every room subject (stream info filter for the room list). */
export const ROOM_SUBJECTS = "parley.msg.room.>";

const _ROOM_PREFIX = "parley.msg.room.";
const _ENC = new TextEncoder();
const _DEC = new TextDecoder();

/** `name` as one subject token. */
export function encodeToken(name: string): string {
  if (name === "") throw new RangeError("a chat name is empty");
  return name.replace(
    /[^a-z0-9_-]/g,
    (c) => [..._ENC.encode(c)].map((b) => `%${b.toString(16).padStart(2, "0")}`).join(""),
  );
}

/** The name a token encoded by {@linkcode encodeToken} stands for. */
export function decodeToken(token: string): string {
  return decodeURIComponent(token);
}

/** The subject of `room`. */
export function roomSubject(room: string): string {
  return _ROOM_PREFIX + encodeToken(room);
}

/** The subject a message is stored on. */
export function subjectOf(msg: NewMessage): string {
  if (msg.room !== undefined) return roomSubject(msg.room);
  if (msg.to === undefined) throw new TypeError("a chat message has neither room nor to");
  return `parley.msg.dm.${encodeToken(msg.to)}.${encodeToken(msg.from)}`;
}

/**
 * The subject filters whose messages make up a history: one room's subject,
 * or a user's received (`dm.<user>.*`) and sent (`dm.*.<user>`) direct
 * messages; a note to self matches both.
 */
export function filtersOf(where: ChatWhere): string[] {
  if ("room" in where) return [roomSubject(where.room)];
  const u = encodeToken(where.dm);
  return [`parley.msg.dm.${u}.*`, `parley.msg.dm.*.${u}`];
}

/** The room a room subject names, or undefined for any other subject. */
export function roomOfSubject(subject: string): string | undefined {
  if (!subject.startsWith(_ROOM_PREFIX)) return undefined;
  const token = subject.slice(_ROOM_PREFIX.length);
  return token === "" || token.includes(".") ? undefined : decodeToken(token);
}

/** A message's stored form (everything but the id, which is the stream sequence). */
export function encodeMessage(msg: NewMessage): Uint8Array {
  return _ENC.encode(JSON.stringify(msg));
}

/**
 * The message stored at `seq` on `subject`, or undefined when the data is
 * not a chat message or does not belong on that subject (so a stray publish
 * never shows in a history it was not written to).
 */
export function decodeMessage(
  seq: number,
  subject: string,
  data: Uint8Array,
): ChatMessage | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(_DEC.decode(data));
  } catch {
    return undefined;
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return undefined;
  const msg = parseStoredMessage({ ...raw, id: String(seq) });
  if (!msg) return undefined;
  try {
    return subjectOf(msg) === subject ? msg : undefined;
  } catch {
    return undefined;
  }
}
