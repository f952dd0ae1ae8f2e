/**
 * The chat feature's settings (the `chat` section of `<data>/config.json`),
 * validated with defaults filled in.
 *
 * @module
 */
import { parseConfigSection } from "../config.ts";
import { z } from "zod";

const _SCHEMA = z.object({
  /** Room a client joins when it names none. */
  defaultRoom: z.string().regex(/^[a-z0-9_][a-z0-9_.-]{0,31}$/).default("lobby"),
  /** Largest message text in UTF-8 bytes. */
  maxTextBytes: z.number().int().min(16).max(60_000).default(4096),
  /** Messages kept per room (memory and disk). */
  historyPerRoom: z.number().int().min(10).max(1_000_000).default(1000),
  /** Messages sent with a join when the client asks for none in particular. */
  historyOnJoin: z.number().int().min(0).max(1000).default(50),
  /** Direct messages kept per user. */
  dmHistoryPerUser: z.number().int().min(10).max(1_000_000).default(1000),
  /** Messages per second a user may send, sustained. */
  ratePerSecond: z.number().positive().max(1_000_000).default(5),
  /** Messages a user may send in a burst. */
  rateBurst: z.number().int().positive().max(1_000_000).default(10),
  /** Most rooms on the server. */
  maxRooms: z.number().int().positive().default(1000),
  /** Most rooms one connection may be in. */
  maxRoomsPerConnection: z.number().int().positive().default(100),
  /** Most rooms one user may be in, across all their connections (bounds `chat.who` entries). */
  maxRoomsPerUser: z.number().int().positive().max(1000).default(100),
  /** Rooms one user may create per minute, sustained (creating = joining or posting to a new room). */
  roomCreatePerMinute: z.number().positive().max(1_000_000).default(10),
  /** Rooms one user may create in a burst. */
  roomCreateBurst: z.number().int().positive().max(1_000_000).default(10),
  /** Most users on one user's ignore list. */
  maxIgnores: z.number().int().positive().max(1000).default(500),
}).strict();

/** Validated chat settings. */
export type ChatConfig = z.infer<typeof _SCHEMA>;

/** Validates a raw `chat` config section; throws a `TypeError` naming the bad field. */
export function parseChatConfig(raw: unknown): ChatConfig {
  return parseConfigSection(_SCHEMA, raw, "chat");
}
