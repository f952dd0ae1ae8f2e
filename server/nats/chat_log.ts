/**
 * The cluster {@linkcode ChatLog} on the stream {@linkcode CHAT_STREAM}
 * (CLUSTER.md §3.2–§3.4): an id is the stream sequence, assigned by the
 * stream's raft leader, so ids rise across rooms and direct messages and
 * are never reused; the epoch is the stream's creation time. `append`
 * resolves after the stream's ack (a quorum of replicas holds the message);
 * the appends of one turn of the event loop are published together.
 * The room list is a local set, loaded from the stream's subjects at start
 * and kept by this node's feed and acks.
 *
 * @module
 */
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { nuid } from "@nats-io/transport-node";
import type {
  Appended,
  ChatLog,
  ChatMessage,
  ChatWhere,
  HistoryPage,
  HistoryQuery,
  NewMessage,
} from "../backend/chat.ts";
import { endOfTurn } from "../end_of_turn.ts";
import { publishOnce } from "./chat_append.ts";
import { withNats } from "./connection.ts";
import { leaderGet, readPage } from "./chat_history.ts";
import {
  CHAT_STREAM,
  decodeMessage,
  encodeMessage,
  encodeToken,
  roomSubject,
  subjectOf,
} from "./chat_subjects.ts";

/** What the log is built on. */
export interface NatsChatLogDeps {
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** The stream's creation time (its epoch). */
  created: string;
  /** Rooms with stored history, shared with the feed that adds to it. */
  rooms: Set<string>;
  /** Told the sequence of every acknowledged append (the feed's watchdog target). */
  onStored(seq: number): void;
  /** This node's name, part of the message id of an append without a key. */
  node: string;
  /** How long an append retries before `unavailable` (ms). */
  appendDeadlineMs: number;
  /** Most one publish attempt waits for its ack (ms). */
  attemptMs: number;
}

/** The cluster chat log. {@linkcode NatsChatLog.close} fails appends still retrying. */
export class NatsChatLog implements ChatLog {
  #deps: NatsChatLogDeps;
  #epoch: string;
  #closed = new AbortController();

  constructor(deps: NatsChatLogDeps) {
    this.#deps = deps;
    const ms = Date.parse(deps.created);
    this.#epoch = Number.isFinite(ms) ? String(ms) : deps.created.replace(/[^0-9a-z-]/gi, "");
  }

  epoch(): string {
    return this.#epoch;
  }

  async append(msg: NewMessage, key?: string): Promise<Appended> {
    if (key !== undefined && !/^[\x21-\x7e]{1,64}$/.test(key)) {
      throw new RangeError("an append key is 1 to 64 printable ASCII characters");
    }
    const subject = subjectOf(msg);
    const msgID = key === undefined
      ? `n:${encodeToken(this.#deps.node)}:${nuid.next()}`
      : `k:${encodeToken(msg.from)}:${key}`;
    const data = encodeMessage(msg);
    // Published at the end of the turn, with every other append made in it (a batch of sends
    // read at once): the client library then writes them to NATS in one socket write, not one
    // write each.
    await endOfTurn();
    const pa = await publishOnce(this.#deps.js, subject, data, {
      msgID,
      deadlineMs: this.#deps.appendDeadlineMs,
      attemptMs: this.#deps.attemptMs,
      signal: this.#closed.signal,
    });
    this.#deps.onStored(pa.seq);
    if (msg.room !== undefined) this.#deps.rooms.add(msg.room);
    if (pa.duplicate) {
      // a retry: answer with what the first attempt stored
      const first = await this.#load(pa.seq).catch(() => undefined);
      return { ...(first ?? { id: String(pa.seq), ...msg }), duplicate: true };
    }
    return { id: String(pa.seq), ...msg };
  }

  page(where: ChatWhere, q: HistoryQuery): Promise<HistoryPage> {
    return withNats("reading the history", () => readPage(this.#deps, where, q));
  }

  async get(id: string, user: string): Promise<ChatMessage | undefined> {
    if (!/^\d{1,16}$/.test(id) || Number(id) < 1) return undefined;
    const msg = await withNats("reading a message", () => this.#load(Number(id)));
    if (!msg) return undefined;
    return msg.room !== undefined || msg.to === user || msg.from === user ? msg : undefined;
  }

  async gap(room: string, after: number): Promise<boolean> {
    const subject = roomSubject(room);
    const [info, first] = await withNats("joining the room", () =>
      Promise.all([
        this.#deps.jsm.streams.info(CHAT_STREAM, { subjects_filter: subject }),
        leaderGet(this.#deps.jsm, { next_by_subj: subject, seq: 1 }),
      ]));
    const kept = info.state.subjects?.[subject] ?? 0;
    const bound = info.config.max_msgs_per_subject;
    return !!first && bound > 0 && kept >= bound && first.seq > after + 1;
  }

  rooms(): string[] {
    return [...this.#deps.rooms].sort();
  }

  hasRoom(room: string): boolean {
    return this.#deps.rooms.has(room);
  }

  /** Fails appends still retrying with `unavailable`; later appends fail at once. */
  close(): void {
    this.#closed.abort(new Error("the chat log is closed"));
  }

  async #load(seq: number): Promise<ChatMessage | undefined> {
    const m = await leaderGet(this.#deps.jsm, { seq });
    return m ? decodeMessage(m.seq, m.subject, m.data) : undefined;
  }
}
