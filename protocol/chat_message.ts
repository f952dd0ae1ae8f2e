/**
 * The chat message as it travels on the wire (PROTOCOL.md "Operations:
 * chat"): the shape both the server stores and the client receives.
 *
 * @module
 */

/** A file shared in a message (uploaded first through the file feature). */
export interface FileRef {
  /** Path in the server's file store, or `shared:<id>` for a shared file. */
  path: string;
  /** Display name. */
  name: string;
  /** Size in bytes. */
  size: number;
  /** Lower-case hex SHA-256 of the content. */
  sha256: string;
}

/** A stored and delivered message. Exactly one of `room` / `to` is set. */
export interface ChatMessage {
  /** Stable id: decimal digits, increasing across the whole server. */
  id: string;
  room?: string;
  to?: string;
  from: string;
  text: string;
  /** Server time, ms since the epoch. */
  ts: number;
  me?: true;
  file?: FileRef;
  /** User names mentioned as `@name` in the text. */
  mentions?: string[];
}
