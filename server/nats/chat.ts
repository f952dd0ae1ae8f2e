/**
 * The cluster chat backend (CLUSTER.md §3): the log and the feed on the
 * stream `PARLEY_MSG`, moderation state and presence in KV buckets. Every
 * node that opens it on the same NATS system shares one chat: the same ids,
 * in the same order, on every node's feed.
 *
 * @module
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { ChatBackend, ChatPolicy, Presence } from "../backend/chat.ts";
import type { Logger } from "../log.ts";
import { NatsChatFeed } from "./chat_feed.ts";
import { NatsChatLog } from "./chat_log.ts";
import { openNatsChatPolicy } from "./chat_policy.ts";
import { openNatsPresence } from "./chat_presence.ts";
import { ensureChatStreamSoon } from "./chat_stream.ts";
import { CHAT_STREAM, ROOM_SUBJECTS, roomOfSubject } from "./chat_subjects.ts";

/** A part of the backend opened beside the log and feed, closed with them. */
export type Closable<T> = T & { close(): Promise<void> | void };

/** How a node opens the cluster chat. */
export interface NatsChatOptions {
  /** This node's name. */
  node: string;
  /** Replicas of the chat stream (default 1; 3 for a cluster that survives a server loss). */
  replicas?: number | undefined;
  /** Messages kept per room (and per direct-message pair; default 1000). */
  historyPerRoom?: number | undefined;
  /**
   * Direct messages kept per user. Not enforced in cluster mode: a 2.9
   * stream has one per-subject bound, so each pair of users keeps
   * `historyPerRoom` messages (CLUSTER.md §8).
   */
  dmHistory?: number | undefined;
  /** Largest message text in UTF-8 bytes (default 4096); sizes the stream's message limit. */
  maxTextBytes?: number | undefined;
  /** How long a node's presence lasts without a refresh (ms, default 30 000). */
  presenceTtlMs?: number | undefined;
  /** How long an append retries through a NATS failure before `unavailable` (ms, default 18 000). */
  appendDeadlineMs?: number | undefined;
  /** Most one publish attempt waits for its ack (ms, default 5000). */
  attemptMs?: number | undefined;
  /** The feed's consumer heartbeat, pull expiry and watchdog period (ms; 1000, 4000, 500). */
  feed?: { heartbeatMs?: number; expiresMs?: number; checkMs?: number } | undefined;
  log?: Logger | undefined;
  /** Opens the moderation state (default: {@linkcode openNatsChatPolicy} on the bucket `parley_chat`). */
  openPolicy?: ((nc: NatsConnection) => Promise<Closable<ChatPolicy>>) | undefined;
  /** Opens presence (default: {@linkcode openNatsPresence} on the bucket `parley_presence`). */
  openPresence?: ((nc: NatsConnection) => Promise<Closable<Presence>>) | undefined;
}

/** The cluster chat backend; `close()` (idempotent) stops it but leaves `nc` open. */
export type NatsChat = ChatBackend & AsyncDisposable & {
  close(): Promise<void>;
  /** The feed, with its counters and a way to force the watchdog's restart. */
  readonly natsFeed: NatsChatFeed;
};

/**
 * Opens the chat of this node on `nc`: creates or checks the stream, loads
 * the room list, starts the feed at the stream's last sequence, and opens
 * the policy and presence parts.
 */
export async function openNatsChat(nc: NatsConnection, opts: NatsChatOptions): Promise<NatsChat> {
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const info = await ensureChatStreamSoon(jsm, {
    replicas: opts.replicas ?? 1,
    historyPerRoom: opts.historyPerRoom ?? 1000,
    maxTextBytes: opts.maxTextBytes ?? 4096,
  });
  const withRooms = await jsm.streams.info(CHAT_STREAM, { subjects_filter: ROOM_SUBJECTS });
  const rooms = new Set<string>();
  for (const s of Object.keys(withRooms.state.subjects ?? {})) {
    const room = roomOfSubject(s);
    if (room !== undefined) rooms.add(room);
  }
  const parts: Closable<object>[] = [];
  let closing: Promise<void> | undefined;
  let log: NatsChatLog | undefined;
  const close = (): Promise<void> =>
    closing ??= (async () => {
      log?.close();
      const results = await Promise.allSettled(parts.reverse().map(async (p) => await p.close()));
      const failed = results.find((r) => r.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
    })();
  try {
    const feed = await NatsChatFeed.open({
      js,
      jsm: await jetstreamManager(nc, { timeout: 1_000, checkAPI: false }),
      start: withRooms.state.last_seq,
      created: info.created,
      rooms,
      log: opts.log,
      heartbeatMs: opts.feed?.heartbeatMs,
      expiresMs: opts.feed?.expiresMs,
      checkMs: opts.feed?.checkMs,
    });
    parts.push(feed);
    log = new NatsChatLog({
      js,
      jsm,
      created: info.created,
      rooms,
      onStored: (seq) => feed.noteStored(seq),
      node: opts.node,
      appendDeadlineMs: opts.appendDeadlineMs ?? 18_000,
      attemptMs: opts.attemptMs ?? 5_000,
    });
    const policy = await (opts.openPolicy ?? ((c) => openNatsChatPolicy(c, _kvOptions(opts))))(nc);
    parts.push(policy);
    const presence = await (opts.openPresence ??
      ((c) => openNatsPresence(c, { ..._kvOptions(opts), ttlMs: opts.presenceTtlMs ?? 30_000 })))(
        nc,
      );
    parts.push(presence);
    return { log, feed, natsFeed: feed, policy, presence, close, [Symbol.asyncDispose]: close };
  } catch (e) {
    await close().catch(() => {});
    throw e;
  }
}

/** The options the policy and presence buckets share, without undefined fields. */
function _kvOptions(opts: NatsChatOptions): { node: string; replicas: number; log?: Logger } {
  return { node: opts.node, replicas: opts.replicas ?? 1, ...(opts.log ? { log: opts.log } : {}) };
}
