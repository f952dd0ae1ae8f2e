/**
 * The NATS {@linkcode ChatPolicy} (CLUSTER.md §3.9): bans, mutes, ignore
 * lists and DM delivery marks in the KV bucket `parley_chat`, one key each:
 *
 * - `ban.<user>` → `{by, reason?, ts}`;
 * - `mute.<user>` → `{by, until}`;
 * - `ignore.<user>` → the sorted names `user` ignores (deleted when empty);
 * - `delivered.<user>` → the highest DM id delivered (only ever raised);
 * - `topic.<room>` → `{text, by, ts}`, the room's topic. Clearing writes
 *   `{text: "", by, ts}` (so every node learns who cleared it) and then
 *   deletes the key.
 *
 * User and room names are key tokens ({@linkcode encodeKeyToken}: `.` escaped).
 * Every node watches the bucket into a local copy: reads are synchronous,
 * and a change made on any node reaches every node's subscribers (so each
 * closes a banned user's sessions). Changes are compare-and-set on the
 * key's revision, retried when another node wrote it first; a delivery mark
 * is written only when it is higher than the stored one, so concurrent marks
 * from several nodes keep the highest. `markDelivered` raises the local mark
 * at once and writes in the background (one write in flight per user, the
 * highest pending mark next); a mark that could not be written is logged.
 *
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import type { Ban, ChatPolicy, Mute, PolicyChange, Topic } from "../backend/chat.ts";
import type { Logger } from "../log.ts";
import { KvMirror, UNCHANGED } from "./kv_mirror.ts";
import { withNats } from "./connection.ts";
import { decodeKeyToken, encodeKeyToken, openRecordBucket } from "./kv_watch.ts";

/** The chat state bucket. */
export const CHAT_BUCKET = "parley_chat";

/** Options of {@linkcode openNatsChatPolicy}. */
export interface NatsChatPolicyOptions {
  /** This node's name (for log lines). */
  node: string;
  /** Replicas of the bucket when this call creates it: 1 for one server, 3 for a cluster. Default 1. */
  replicas?: number;
  /** Bucket name (tests use their own). Default {@linkcode CHAT_BUCKET}. */
  bucket?: string;
  /** Where failed delivery-mark writes and watch troubles are reported. */
  log?: Logger;
}

/** The NATS chat policy, plus `close` (waits for mark writes in flight; the connection stays open). */
export type NatsChatPolicy = ChatPolicy & AsyncDisposable & { close(): Promise<void> };

type _Value = Ban & { ts?: number } | Mute | string[] | number | Topic;

const _KINDS = ["ban", "mute", "ignore", "delivered", "topic"] as const;
type _Kind = typeof _KINDS[number];

/** Opens (creating when absent: file storage, history 1) the bucket and loads it before resolving. */
export async function openNatsChatPolicy(
  nc: NatsConnection,
  options: NatsChatPolicyOptions,
): Promise<NatsChatPolicy> {
  const bucket = options.bucket ?? CHAT_BUCKET;
  const js = jetstream(nc);
  const kv = await openRecordBucket(js, bucket, options.replicas);
  const subs = new Set<(change: PolicyChange) => void>();
  /** The highest mark raised here, per user: the local floor, whatever became of its write. */
  const raised = new Map<string, number>();
  /** Marks raised here and not yet written, per user. */
  const pending = new Map<string, number>();
  /** One background write per user at a time. */
  const writing = new Map<string, Promise<void>>();
  const tell = (change: PolicyChange) => {
    for (const fn of [...subs]) {
      try {
        fn(change);
      } catch (e) {
        options.log?.error("chat policy subscriber failed", { error: String(e) });
      }
    }
  };
  const mirror = await KvMirror.open<_Value>(js, kv, bucket, {
    decode: (key, v) => _check(_kindOf(key)?.[0], v),
    onChange: (key, before, after) => {
      const parsed = _kindOf(key);
      if (!parsed) return;
      const [kind, user] = parsed;
      switch (kind) {
        case "topic": {
          if (after !== undefined) return tell({ kind, room: user, topic: _topic(after as Topic) });
          // a delete after a clearing record was told with it; a bare one (this node
          // missed the record) says the topic is gone without naming who cleared it
          const was = before as Topic | undefined;
          if (was && was.text !== "") {
            tell({ kind, room: user, topic: { text: "", by: "", ts: Date.now() } });
          }
          return;
        }
        case "ban":
          return tell({ kind, user, ban: after === undefined ? undefined : _ban(after as Ban) });
        case "mute":
          return tell({ kind, user, mute: after as Mute | undefined });
        case "ignore":
          return tell({ kind, user });
        case "delivered": {
          // A mark raised here was told when it was raised.
          const id = typeof after === "number" ? after : 0;
          if (id > (raised.get(user) ?? 0)) tell({ kind, user, id });
        }
      }
    },
    onError: (e) =>
      options.log?.warn("chat policy bucket", { node: options.node, error: e.message }),
  });
  const get = <T extends _Value>(kind: _Kind, user: string): T | undefined =>
    mirror.get(`${kind}.${encodeKeyToken(user)}`)?.value as T | undefined;
  const delivered = (user: string) =>
    Math.max(get<number>("delivered", user) ?? 0, raised.get(user) ?? 0);

  const writeMark = (user: string): void => {
    if (writing.has(user)) return;
    const run = (async () => {
      for (let i = 0; i < 1000; i++) {
        const want = pending.get(user);
        if (want === undefined) return;
        try {
          await mirror.change(
            `delivered.${encodeKeyToken(user)}`,
            (cur) => typeof cur === "number" && cur >= want ? UNCHANGED : want,
          );
        } catch (e) {
          options.log?.warn("could not store a DM delivery mark", {
            node: options.node,
            user,
            error: e instanceof Error ? e.message : String(e),
          });
        }
        if (pending.get(user) === want) pending.delete(user);
      }
    })().finally(() => writing.delete(user));
    writing.set(user, run);
  };

  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await Promise.allSettled([...writing.values()]);
    subs.clear();
    await mirror.close();
  };

  return {
    ban: (user) => {
      const b = get<Ban>("ban", user);
      return b && _ban(b);
    },
    bans: () =>
      [...mirror.values()].flatMap(([k]) => {
        const p = _kindOf(k);
        return p?.[0] === "ban" ? [p[1]] : [];
      }).sort(),
    async setBan(user, ban) {
      await withNats("saving the ban", () =>
        mirror.change(
          `ban.${encodeKeyToken(user)}`,
          () =>
            ban &&
            {
              by: ban.by,
              ...(ban.reason !== undefined ? { reason: ban.reason } : {}),
              ts: Date.now(),
            },
        ));
    },
    mutedUntil(user, now = Date.now()) {
      const m = get<Mute>("mute", user);
      return m && m.until > now ? m.until : undefined;
    },
    async setMute(user, mute) {
      await withNats("saving the mute", () =>
        mirror.change(
          `mute.${encodeKeyToken(user)}`,
          () => mute && { by: mute.by, until: mute.until },
        ));
    },
    ignores: (user) => get<string[]>("ignore", user) ?? [],
    ignoring: (user, other) => get<string[]>("ignore", user)?.includes(other) ?? false,
    async setIgnore(user, other, on) {
      await withNats(
        "saving the ignore list",
        () =>
          mirror.change(`ignore.${encodeKeyToken(user)}`, (cur) => {
            const set = new Set(Array.isArray(cur) ? cur : []);
            if (on === set.has(other)) return UNCHANGED;
            if (on) set.add(other);
            else set.delete(other);
            return set.size ? [...set].sort() : undefined;
          }),
      );
    },
    delivered,
    markDelivered(user, id) {
      if (closed || !Number.isSafeInteger(id) || id <= delivered(user)) return;
      raised.set(user, id);
      pending.set(user, id);
      tell({ kind: "delivered", user, id });
      writeMark(user);
    },
    topic: (room) => {
      const t = get<Topic>("topic", room);
      return t && t.text !== "" ? _topic(t) : undefined;
    },
    topicRooms: () =>
      [...mirror.values()].flatMap(([k, v]) => {
        const p = _kindOf(k);
        return p?.[0] === "topic" && (v as Topic | undefined)?.text ? [p[1]] : [];
      }).sort(),
    async setTopic(room, topic) {
      const key = `topic.${encodeKeyToken(room)}`;
      const t = _topic(topic);
      await withNats("topic", () => mirror.change(key, () => t));
      if (t.text !== "") return;
      // the clearing record has told every node; nothing of the topic is kept
      await withNats("topic", () =>
        mirror.change(key, (cur) => {
          const c = cur as Topic | undefined;
          return c && c.text === "" && c.ts === t.ts && c.by === t.by ? undefined : UNCHANGED;
        }));
    },
    subscribe(fn) {
      const sub = (c: PolicyChange): void => fn(c);
      subs.add(sub);
      return () => void subs.delete(sub);
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** `[kind, user]` of a key, or undefined for a key this module does not write. */
function _kindOf(key: string): [_Kind, string] | undefined {
  const dot = key.indexOf(".");
  const kind = key.slice(0, dot) as _Kind;
  if (dot < 0 || !_KINDS.includes(kind)) return undefined;
  return [kind, decodeKeyToken(key.slice(dot + 1))];
}

function _ban(b: Ban): Ban {
  return { by: b.by, ...(b.reason !== undefined ? { reason: b.reason } : {}) };
}

function _topic(t: Topic): Topic {
  return { text: t.text, by: t.by, ts: t.ts };
}

function _check(kind: _Kind | undefined, v: unknown): _Value {
  const o = v as Record<string, unknown> | null;
  switch (kind) {
    case "ban":
      if (o && typeof o === "object" && typeof o.by === "string") return o as unknown as Ban;
      break;
    case "mute":
      if (o && typeof o === "object" && typeof o.by === "string" && typeof o.until === "number") {
        return o as unknown as Mute;
      }
      break;
    case "ignore":
      if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v as string[];
      break;
    case "delivered":
      if (typeof v === "number" && Number.isSafeInteger(v)) return v;
      break;
    case "topic":
      if (
        o && typeof o === "object" && typeof o.text === "string" && typeof o.by === "string" &&
        typeof o.ts === "number"
      ) return o as unknown as Topic;
      break;
  }
  throw new TypeError(`not a ${kind ?? "known"} record`);
}
