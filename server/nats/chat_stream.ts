/**
 * Creates the chat stream {@linkcode CHAT_STREAM} or checks the one that
 * exists (CLUSTER.md §3.2). Only fields nats-server 2.9 knows are sent: a
 * 2.9 server silently drops fields it does not know, so relying on a 2.10+
 * one would fail without a word.
 *
 * @module
 */
import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
  type StreamInfo,
} from "@nats-io/jetstream";
import { MAX_MESSAGE_JSON } from "../chat/chat_pager.ts";
import { CHAT_STREAM, CHAT_SUBJECTS } from "./chat_subjects.ts";
import { isNatsUnavailable } from "./connection.ts";

/** How the chat stream is configured. */
export interface ChatStreamOptions {
  /** Replicas of every message (1 or 3 in practice). */
  replicas: number;
  /** Messages kept per subject: per room, and per direct-message pair. */
  historyPerRoom: number;
  /**
   * Largest message text in UTF-8 bytes; a stored message may take 8 KiB
   * more, and never less than the chat feature's own cap on a stored message.
   */
  maxTextBytes: number;
}

/** Retried sends with the same message id within this window are stored once. */
export const DUPLICATE_WINDOW_MS = 120_000;

/** The 2.9-only configuration the stream should have. */
export function chatStreamConfig(
  opts: ChatStreamOptions,
): Partial<StreamConfig> & { name: string } {
  return {
    name: CHAT_STREAM,
    subjects: [CHAT_SUBJECTS],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: opts.replicas,
    max_msgs_per_subject: opts.historyPerRoom,
    discard: DiscardPolicy.Old,
    duplicate_window: DUPLICATE_WINDOW_MS * 1_000_000,
    allow_direct: true,
    max_msg_size: Math.max(opts.maxTextBytes + 8 * 1024, MAX_MESSAGE_JSON + 1024),
  };
}

/**
 * {@linkcode ensureChatStream}, tried again while JetStream is unavailable
 * (a cluster that just started may still be electing its meta leader),
 * for at most `deadlineMs`.
 */
export async function ensureChatStreamSoon(
  jsm: JetStreamManager,
  opts: ChatStreamOptions,
  deadlineMs = 15_000,
): Promise<StreamInfo> {
  const end = Date.now() + deadlineMs;
  for (let wait = 100;; wait = Math.min(1_000, wait * 2)) {
    try {
      return await ensureChatStream(jsm, opts);
    } catch (e) {
      if (!isNatsUnavailable(e) || Date.now() + wait > end) throw e;
    }
    await new Promise((r) => setTimeout(r, wait));
  }
}

/**
 * Returns the chat stream's info, creating the stream if it is missing and
 * bringing the settings Parley owns (history bound, size limit, dedupe
 * window, replicas) in line if they differ. Throws a `TypeError` if the
 * existing stream cannot hold chat (other subjects, memory storage, a
 * retention other than limits).
 */
export async function ensureChatStream(
  jsm: JetStreamManager,
  opts: ChatStreamOptions,
): Promise<StreamInfo> {
  const want = chatStreamConfig(opts);
  let info: StreamInfo;
  try {
    info = await jsm.streams.info(CHAT_STREAM);
  } catch (e) {
    if (!_notFound(e)) throw e;
    try {
      return await jsm.streams.add(want);
    } catch (e2) {
      // another node created it meanwhile: check that one
      if (!(e2 instanceof JetStreamApiError) || isNatsUnavailable(e2)) throw e2;
      info = await jsm.streams.info(CHAT_STREAM);
    }
  }
  const have = info.config;
  const fixed: (keyof StreamConfig)[] = ["subjects", "retention", "storage"];
  for (const k of fixed) {
    if (JSON.stringify(have[k]) !== JSON.stringify(want[k])) {
      throw new TypeError(
        `stream ${CHAT_STREAM} exists with ${k} ${JSON.stringify(have[k])}, ` +
          `chat needs ${JSON.stringify(want[k])}`,
      );
    }
  }
  const owned: (keyof StreamConfig)[] = [
    "num_replicas",
    "max_msgs_per_subject",
    "discard",
    "duplicate_window",
    "allow_direct",
    "max_msg_size",
  ];
  const change: Partial<StreamConfig> = {};
  for (const k of owned) {
    if (have[k] !== want[k]) Object.assign(change, { [k]: want[k] });
  }
  if (Object.keys(change).length === 0) return info;
  // update merges into the server's own config, so no field the server does not know is sent
  return await jsm.streams.update(CHAT_STREAM, change);
}

function _notFound(e: unknown): boolean {
  return e instanceof JetStreamApiError && e.code === JetStreamApiCodes.StreamNotFound;
}
