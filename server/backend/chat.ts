/**
 * Backend interfaces for chat: the log of messages ({@linkcode ChatLog}),
 * their live delivery ({@linkcode ChatFeed}), moderation and per-user state
 * ({@linkcode ChatPolicy}) and who is online ({@linkcode Presence}).
 *
 * The chat feature (`server/chat/`) keeps every policy decision — rights,
 * limits, flood control, paging — and reaches stored or shared data only
 * through these. Guarantees every implementation keeps:
 *
 * - **Ids.** A message id is a decimal string; ids are assigned by
 *   {@linkcode ChatLog.append}, increase across rooms and direct messages
 *   together, and are never reused within one {@linkcode ChatLog.epoch}.
 *   Ids of one room need not be contiguous.
 * - **Durability.** `append` resolves only once the message is durable: a
 *   restart (embedded) or a node loss (cluster) cannot forget it.
 * - **Order.** The feed hands every appended message to each subscriber
 *   once, in increasing id order across the whole log, so every receiver
 *   sees a room's messages in id order. Its watermark is the highest id
 *   handed out; every message up to it is readable through
 *   {@linkcode ChatLog.page}.
 *
 * Send is "append, then deliver from the feed": a sender's reply waits for
 * `append`; everyone, the sender's own connections included, gets the
 * message from the feed. Join is the watermark protocol: register the
 * connection (holding live messages), read `W = feed.watermark()`, page
 * history up to `W`, reply, then release held messages (all above `W`).
 *
 * @module
 */
import type { ChatMessage } from "../../protocol/chat_message.ts";

export type { ChatMessage };

/** A message to store: everything but the id, which the log assigns. */
export type NewMessage = Omit<ChatMessage, "id">;

/**
 * What {@linkcode ChatLog.append} resolves with: the stored message, and
 * `duplicate` when an earlier append with the same key stored it. The
 * flag is never stored or delivered.
 */
export type Appended = ChatMessage & { readonly duplicate?: true };

/** Whose history to read: one room, or one user's direct messages (sent and received). */
export type ChatWhere = { readonly room: string } | { readonly dm: string };

/** A window of history and how to cut it. */
export interface HistoryQuery {
  /** Only messages with a larger id (then the page holds the oldest of the window). */
  after?: number | undefined;
  /** Only messages with a smaller id (the window's upper end; e.g. watermark + 1). */
  before?: number | undefined;
  /** Most messages returned. */
  limit: number;
  /** Most bytes of JSON the messages may take (at least one message is always returned). */
  budget: number;
  /** Messages to leave out (e.g. from ignored users); they do not count against anything. */
  keep?: ((m: ChatMessage) => boolean) | undefined;
}

/**
 * A page of history, oldest first. `more` says the window holds more
 * messages than the page; then `after` (paging forward) or `before` (paging
 * back) is the id to pass on to get the next page.
 */
export interface HistoryPage {
  messages: ChatMessage[];
  more: boolean;
  after?: string;
  before?: string;
}

/** Stored history and id assignment. */
export interface ChatLog {
  /**
   * Names this log's id space. It changes only when the log is recreated
   * (ids may then start again); clients treat cursors of another epoch as void.
   */
  epoch(): string;
  /**
   * Stores a message and resolves with it, id set, once it is durable.
   * Rejects if it was not stored (the error's `cause` chain says why, e.g.
   * `ENOSPC`); the feed does not deliver a message whose append rejected. A
   * direct message is stored for both its sender and its recipient (when
   * only one copy could be written, append rejects and the recipient's
   * history may still show it).
   *
   * `key` (1–64 printable ASCII characters), when given, makes a retry
   * safe: appends from the same sender with the same key within the log's
   * dedupe window store the message once; the later ones resolve with the
   * message stored first, marked `duplicate`. Keys are per sender: the same
   * key from two users stores two messages. Windows: cluster, the stream's
   * `duplicate_window` (2 minutes); embedded, 2 minutes and the sender's
   * last 64 keys, in memory (a restart forgets them).
   */
  append(msg: NewMessage, key?: string): Promise<Appended>;
  /**
   * A page of one room's or one user's direct-message history, cut by
   * {@linkcode HistoryQuery}. Holds every durable message of the window
   * within the history bound (at least everything up to the feed's watermark).
   */
  page(where: ChatWhere, q: HistoryQuery): Promise<HistoryPage>;
  /** The message with `id` in any room or in `user`'s direct messages, if still kept. */
  get(id: string, user: string): Promise<ChatMessage | undefined>;
  /** Whether the history bound dropped messages of `room` with ids above `after`. */
  gap(room: string, after: number): Promise<boolean>;
  /**
   * Names of rooms that have stored history. Synchronous: answered from a
   * local copy (a cluster node keeps it from the stream's subjects at start
   * and from its feed), so a join or send needs no round trip to learn
   * whether it creates a room.
   */
  rooms(): string[];
  /** Whether `room` has stored history (local copy, as {@linkcode ChatLog.rooms}). */
  hasRoom(room: string): boolean;
}

/** Live delivery of every appended message, in id order. */
export interface ChatFeed {
  /**
   * The highest id handed to subscribers so far (0 before any). Every
   * message with an id up to it is readable through {@linkcode ChatLog.page};
   * every later message reaches subscribers after this call returns.
   */
  watermark(): number;
  /**
   * Calls `fn` with each message handed out from now on, once, in
   * increasing id order (across rooms and direct messages). `fn` must not
   * throw or block. Returns a function that stops the calls.
   */
  subscribe(fn: (msg: ChatMessage) => void): () => void;
}

/** A ban: who set it and why. */
export interface Ban {
  by: string;
  reason?: string;
}

/** A mute: who set it and until when (ms since the epoch). */
export interface Mute {
  by: string;
  until: number;
}

/**
 * A room's topic: its text, who set it and when (ms since the epoch). In a
 * change, an empty text says the topic was cleared, by `by` at `ts` (`by`
 * is empty in the rare case a node could not learn who cleared it).
 */
export interface Topic {
  text: string;
  by: string;
  ts: number;
}

/** What changed in {@linkcode ChatPolicy}. */
export type PolicyChange =
  | { kind: "ban"; user: string; ban: Ban | undefined }
  | { kind: "topic"; room: string; topic: Topic }
  | { kind: "mute"; user: string; mute: Mute | undefined }
  | { kind: "ignore"; user: string }
  | { kind: "delivered"; user: string; id: number };

/**
 * Moderation and per-user chat state: bans, mutes, ignore lists, how far
 * each user's direct messages were delivered, and room topics. Reads are synchronous (from a
 * local copy that every node keeps current), so checks on the send path
 * and the ban `admit` hook stay synchronous. A change made on any node
 * reaches every subscriber on every node, so each node can close a banned
 * user's connections.
 */
export interface ChatPolicy {
  /** The ban record of `user`, if banned. */
  ban(user: string): Ban | undefined;
  /** Banned user names, sorted. */
  bans(): string[];
  /** Bans or (undefined) unbans `user`. Resolves once the change is stored. */
  setBan(user: string, ban: Ban | undefined): Promise<void>;
  /** When `user`'s mute ends (ms since the epoch), if muted at `now`. */
  mutedUntil(user: string, now?: number): number | undefined;
  /** Mutes `user` or (undefined) unmutes. Resolves once the change is stored. */
  setMute(user: string, mute: Mute | undefined): Promise<void>;
  /** Users `user` ignores, sorted. */
  ignores(user: string): readonly string[];
  /** Whether `user` ignores `other`. */
  ignoring(user: string, other: string): boolean;
  /** Adds `other` to (or removes it from) `user`'s ignore list. Resolves once stored. */
  setIgnore(user: string, other: string, on: boolean): Promise<void>;
  /** Highest direct-message id delivered to one of `user`'s reading connections. */
  delivered(user: string): number;
  /**
   * Raises `user`'s delivery mark to `id` (never lowers it). Fire and
   * forget: a mark that is lost only means a DM is offered again.
   */
  markDelivered(user: string, id: number): void;
  /** The topic of `room`, if it has one (never one with an empty text). */
  topic(room: string): Topic | undefined;
  /** Names of the rooms that have a topic, sorted. */
  topicRooms(): string[];
  /**
   * Sets `room`'s topic; an empty `text` clears it (nothing of it is kept).
   * Resolves once the change is stored; every subscriber on every node
   * hears of it (a `topic` change, naming who cleared a cleared topic).
   */
  setTopic(room: string, topic: Topic): Promise<void>;
  /**
   * Calls `fn` after every change, made here or on another node (embedded:
   * synchronously, after the change). Returns a function that stops the calls.
   */
  subscribe(fn: (change: PolicyChange) => void): () => void;
}

/** One user's presence on one node. */
export interface PresenceEntry {
  /** User name. */
  user: string;
  /** Rooms any of the user's connections on this node is in. */
  rooms: readonly string[];
  /** The user's connections on this node (0 = gone from this node). */
  connections: number;
  /** Last time one of these connections was active (ms since the epoch). */
  lastActivity: number;
}

/** One user's presence merged across nodes. */
export interface UserPresence {
  name: string;
  rooms: string[];
  connections: number;
  lastActivity: number;
}

/**
 * Who is online, on which node, in which rooms. A node sets its own users'
 * entries; reads merge every node's entries. Embedded: this process only,
 * and a change is visible (and subscribers called) before `set` returns.
 * Cluster (CLUSTER.md §3.8): `set` is synchronous and local; the node
 * gathers its entries into one shared record, written soon after a change
 * and refreshed periodically, and the entries of a node that stopped
 * refreshing expire. Reads are synchronous, from this node's merged copy.
 * A user whose entry a node drops (its connections there closed, or the node
 * shut down cleanly) stays in the merged view, with the rooms it had there,
 * for a grace of a few seconds, so a client that fails over to another node
 * is not seen to leave and rejoin; subscribers hear of the user when the
 * grace ends. The entries of a node that stopped refreshing get no further
 * grace.
 */
export interface Presence {
  /** This node's name. */
  readonly node: string;
  /** Replaces this node's entry for `entry.user` (removes it when `connections` is 0). */
  set(entry: PresenceEntry): void;
  /** Every online user, merged across nodes, sorted by name. */
  online(): UserPresence[];
  /** One user's merged presence, if online (or kept for the grace) on any node. */
  get(user: string): UserPresence | undefined;
  /** Names of users in `room` on any node, sorted. */
  usersIn(room: string): string[];
  /** Whether `user` is in `room` on any node. */
  isIn(user: string, room: string): boolean;
  /** Rooms somebody is in, on any node. */
  rooms(): string[];
  /**
   * Calls `fn` with the user whose merged presence changed (online or not,
   * connections, rooms), synchronously when a `set` here changes it. The
   * chat feature announces joins and leaves from these changes, so they are
   * the cluster's: a user is shown joining a room when no node had them in
   * it, and leaving when no node has them in it any more (after the grace).
   * Returns a function that stops the calls.
   */
  subscribe(fn: (user: string) => void): () => void;
}

/** Everything chat stores or shares between nodes. */
export interface ChatBackend {
  /** Stored history and ids. */
  readonly log: ChatLog;
  /** Live delivery of appended messages, in id order. */
  readonly feed: ChatFeed;
  /** Bans, mutes, ignores, DM delivery marks and room topics. */
  readonly policy: ChatPolicy;
  /** Who is online where. */
  readonly presence: Presence;
}
