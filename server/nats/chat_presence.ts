/**
 * The NATS {@linkcode Presence} (CLUSTER.md §3.8): one key per node,
 * `node.<id>`, in the KV bucket `parley_presence`, whose bucket TTL (stream
 * `max_age`, default 30 s) removes the record of a node that stopped
 * writing it. Per-key TTLs need nats-server 2.11 and 2.9 ignores them
 * silently, so none is used.
 *
 * - `set` changes this node's entries at once (reads here see it before it
 *   returns); the node's record `{node, info, users}` is written ~200 ms
 *   after a change (one write for a burst) and every TTL/3, and deleted on
 *   a clean `close`.
 * - Every node watches the bucket and keeps each other node's record with
 *   the time it arrived. Expiry is invisible to watchers on 2.9, so a local
 *   sweep (every TTL/6) drops records not refreshed within the TTL: a dead
 *   node's users leave the merged view within TTL + TTL/6 of its last write.
 * - A user that a node stops listing (its connections there closed, or the
 *   node shut down cleanly) stays in the merged view, with the rooms it had
 *   there, for a grace (default 5 s): a client that fails over to another
 *   node within it is never seen to leave and rejoin. An expired record gets
 *   no further grace (the TTL was one).
 *
 * One record per node bounds the write rate (nodes / 10 s) but not its
 * size: a record must fit NATS `max_payload` (1 MiB by default, ~10 000
 * users per node).
 *
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { RoomIndex } from "../backend/presence_rooms.ts";
import type { Presence, PresenceEntry, UserPresence } from "../backend/chat.ts";
import type { Logger } from "../log.ts";
import {
  type BucketWatch,
  decodeKeyToken,
  encodeKeyToken,
  openBucket,
  watchBucket,
} from "./kv_watch.ts";

/** The presence bucket. */
export const PRESENCE_BUCKET = "parley_presence";

/** Options of {@linkcode openNatsPresence}. */
export interface NatsPresenceOptions {
  /** This node's name. */
  node: string;
  /** Replicas of the bucket when this call creates it. Default 1. */
  replicas?: number;
  /** Bucket name (tests use their own). Default {@linkcode PRESENCE_BUCKET}. */
  bucket?: string;
  /**
   * How long a node's record lives without a refresh (ms); the bucket's TTL
   * when this call creates it (an existing bucket's TTL wins). Default 30 000.
   */
  ttlMs?: number;
  /** How long a user no node lists any more stays in the merged view (ms). Default 5000. */
  graceMs?: number;
  /** Delay between a change and the write of this node's record (ms). Default 200. */
  debounceMs?: number;
  /** Published with this node's record (e.g. `{exec: true}`), for {@linkcode NatsPresence.nodes}. */
  info?: Record<string, unknown>;
  /** Where failed writes and watch troubles are reported. */
  log?: Logger;
}

/** A node as presence knows it. */
export interface PresenceNode {
  node: string;
  info: Record<string, unknown>;
  /** When its record last arrived here (ms since the epoch); now for this node. */
  seenAt: number;
}

/** The NATS presence, plus the nodes it knows of and `close`. */
export type NatsPresence = Presence & AsyncDisposable & {
  /** Nodes whose records are live here (this one included), sorted by name. */
  nodes(): PresenceNode[];
  /** Stops writing and watching; deletes this node's record unless the connection is gone. */
  close(): Promise<void>;
};

/** A node's record as stored. */
interface _Record {
  node: string;
  info?: Record<string, unknown>;
  users: Record<string, { rooms: string[]; connections: number; lastActivity: number }>;
}

interface _Remote {
  info: Record<string, unknown>;
  users: Map<string, PresenceEntry>;
  seenAt: number;
}

interface _Ghost {
  entry: PresenceEntry;
  timer: ReturnType<typeof setTimeout>;
}

/** Opens the bucket (creating it when absent: memory storage, history 1, the TTL) and starts. */
export async function openNatsPresence(
  nc: NatsConnection,
  options: NatsPresenceOptions,
): Promise<NatsPresence> {
  const p = new _NatsPresence(nc, options);
  await p.start();
  return p;
}

class _NatsPresence implements NatsPresence {
  readonly node: string;
  #nc: NatsConnection;
  #opts: NatsPresenceOptions;
  #bucket: string;
  #key: string;
  #ttlMs: number;
  #graceMs: number;
  #kv: KV | undefined;
  #watch: BucketWatch | undefined;
  #local = new Map<string, PresenceEntry>();
  #remote = new Map<string, _Remote>();
  /** Per user, per node: an entry that node stopped listing, kept for the grace. */
  #ghosts = new Map<string, Map<string, _Ghost>>();
  #merged = new Map<string, UserPresence>();
  #rooms = new RoomIndex();
  #subs = new Set<(user: string) => void>();
  #debounce: ReturnType<typeof setTimeout> | undefined;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #sweep: ReturnType<typeof setInterval> | undefined;
  #writing: Promise<void> | undefined;
  #again = false;
  #failing = false;
  #state: "starting" | "open" | "closed" = "starting";

  constructor(nc: NatsConnection, opts: NatsPresenceOptions) {
    this.node = opts.node;
    this.#nc = nc;
    this.#opts = opts;
    this.#bucket = opts.bucket ?? PRESENCE_BUCKET;
    this.#key = `node.${encodeKeyToken(opts.node)}`;
    this.#ttlMs = opts.ttlMs ?? 30_000;
    this.#graceMs = opts.graceMs ?? 5000;
  }

  async start(): Promise<void> {
    const js = jetstream(this.#nc);
    this.#kv = await openBucket(js, this.#bucket, {
      history: 1,
      replicas: this.#opts.replicas ?? 1,
      storage: "memory",
      ttl: this.#ttlMs,
    });
    const ttl = (await this.#kv.status()).ttl;
    if (ttl > 0) this.#ttlMs = ttl;
    this.#watch = await watchBucket(js, this.#bucket, {
      onEntry: (e) => this.#received(e.key, e.value, e.initial ? e.ageMs : 0),
      onError: (e) =>
        this.#opts.log?.warn("presence bucket", { node: this.node, error: e.message }),
      // Entries may expire before they are delivered; never wait long for them.
      readyTimeoutMs: Math.min(2000, this.#ttlMs),
    });
    this.#state = "open";
    this.#heartbeat = setInterval(() => this.#write(), Math.max(100, this.#ttlMs / 3));
    this.#sweep = setInterval(() => this.#expire(), Math.max(50, this.#ttlMs / 6));
    this.#write();
  }

  set(entry: PresenceEntry): void {
    if (this.#state === "closed") return;
    const user = entry.user;
    const old = this.#local.get(user);
    if (entry.connections <= 0) {
      if (!old) return;
      this.#local.delete(user);
      this.#haunt(user, this.node, old);
    } else {
      this.#local.set(user, { ...entry, rooms: [...entry.rooms].sort() });
      this.#unhaunt(user, this.node);
    }
    this.#merge(user);
    this.#changed();
  }

  online(): UserPresence[] {
    return [...this.#merged.values()]
      .map((u) => ({ ...u, rooms: [...u.rooms] }))
      .sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  }

  get(user: string): UserPresence | undefined {
    const u = this.#merged.get(user);
    return u && { ...u, rooms: [...u.rooms] };
  }

  usersIn(room: string): string[] {
    return this.#rooms.usersIn(room);
  }

  isIn(user: string, room: string): boolean {
    return this.#rooms.isIn(user, room);
  }

  rooms(): string[] {
    return this.#rooms.rooms();
  }

  subscribe(fn: (user: string) => void): () => void {
    const sub = (u: string): void => fn(u);
    this.#subs.add(sub);
    return () => void this.#subs.delete(sub);
  }

  nodes(): PresenceNode[] {
    const self = { node: this.node, info: { ...this.#opts.info }, seenAt: Date.now() };
    return [
      self,
      ...[...this.#remote].map(([node, r]) => ({ node, info: r.info, seenAt: r.seenAt })),
    ]
      .sort((a, b) => a.node < b.node ? -1 : a.node > b.node ? 1 : 0);
  }

  async close(): Promise<void> {
    if (this.#state === "closed") return;
    this.#state = "closed";
    clearTimeout(this.#debounce);
    clearInterval(this.#heartbeat);
    clearInterval(this.#sweep);
    for (const ghosts of this.#ghosts.values()) {
      for (const g of ghosts.values()) clearTimeout(g.timer);
    }
    this.#ghosts.clear();
    this.#subs.clear();
    await this.#writing;
    await this.#watch?.close();
    if (!this.#nc.isClosed()) {
      await this.#kv?.delete(this.#key).catch((e: unknown) => {
        this.#opts.log?.warn("could not delete this node's presence record", {
          node: this.node,
          error: e instanceof Error ? e.message : String(e),
        });
      });
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** A record (or its deletion) arrived from the bucket. */
  #received(key: string, value: Uint8Array | undefined, ageMs: number): void {
    if (this.#state === "closed" || !key.startsWith("node.") || key === this.#key) return;
    const node = decodeKeyToken(key.slice("node.".length));
    const old = this.#remote.get(node);
    let next: _Remote | undefined;
    if (value !== undefined) {
      try {
        next = _parse(JSON.parse(new TextDecoder().decode(value)));
      } catch (e) {
        this.#opts.log?.warn("unreadable presence record ignored", { node, error: String(e) });
        return;
      }
      next.seenAt = Date.now() - Math.min(ageMs, this.#ttlMs);
      this.#remote.set(node, next);
    } else {
      this.#remote.delete(node);
    }
    const users = new Set([...(old?.users.keys() ?? []), ...(next?.users.keys() ?? [])]);
    for (const user of users) {
      const before = old?.users.get(user);
      const after = next?.users.get(user);
      if (after) this.#unhaunt(user, node);
      else if (before) this.#haunt(user, node, before);
      this.#merge(user);
    }
  }

  /** Drops the records of nodes that stopped refreshing them: no grace, the TTL was one. */
  #expire(): void {
    const now = Date.now();
    for (const [node, r] of this.#remote) {
      if (now - r.seenAt <= this.#ttlMs) continue;
      this.#remote.delete(node);
      for (const user of r.users.keys()) this.#merge(user);
    }
  }

  #haunt(user: string, node: string, entry: PresenceEntry): void {
    if (this.#graceMs <= 0) return;
    let ghosts = this.#ghosts.get(user);
    if (!ghosts) this.#ghosts.set(user, ghosts = new Map());
    const old = ghosts.get(node);
    if (old) clearTimeout(old.timer);
    const timer = setTimeout(() => {
      if (ghosts.get(node)?.timer !== timer) return;
      ghosts.delete(node);
      if (ghosts.size === 0) this.#ghosts.delete(user);
      this.#merge(user);
    }, this.#graceMs);
    ghosts.set(node, { entry, timer });
  }

  #unhaunt(user: string, node: string): void {
    const ghosts = this.#ghosts.get(user);
    const g = ghosts?.get(node);
    if (!ghosts || !g) return;
    clearTimeout(g.timer);
    ghosts.delete(node);
    if (ghosts.size === 0) this.#ghosts.delete(user);
  }

  /** Recomputes `user`'s merged presence and tells subscribers when it changed. */
  #merge(user: string): void {
    const live: PresenceEntry[] = [];
    const local = this.#local.get(user);
    if (local) live.push(local);
    for (const r of this.#remote.values()) {
      const e = r.users.get(user);
      if (e) live.push(e);
    }
    const ghosts = [...(this.#ghosts.get(user)?.values() ?? [])].map((g) => g.entry);
    const all = [...live, ...ghosts];
    const old = this.#merged.get(user);
    let next: UserPresence | undefined;
    if (all.length > 0) {
      // A user listed nowhere but kept for the grace shows as it was last seen.
      const counted = live.length > 0 ? live : ghosts;
      next = {
        name: user,
        rooms: [...new Set(all.flatMap((e) => e.rooms))].sort(),
        connections: counted.reduce((n, e) => n + e.connections, 0),
        lastActivity: Math.max(...all.map((e) => e.lastActivity)),
      };
    }
    this.#rooms.move(user, old?.rooms ?? [], next?.rooms ?? []);
    if (next) this.#merged.set(user, next);
    else this.#merged.delete(user);
    const moved = !old !== !next || old?.connections !== next?.connections ||
      old?.rooms.join("\n") !== next?.rooms.join("\n");
    if (moved) {
      for (const fn of [...this.#subs]) {
        try {
          fn(user);
        } catch (e) {
          this.#opts.log?.error("presence subscriber failed", { error: String(e) });
        }
      }
    }
  }

  /** Schedules a write of this node's record after the debounce. */
  #changed(): void {
    if (this.#debounce !== undefined || this.#state !== "open") return;
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      this.#write();
    }, this.#opts.debounceMs ?? 200);
  }

  /** Writes this node's record now (or right after the write in flight). Never rejects. */
  #write(): void {
    if (this.#state !== "open") return;
    if (this.#writing) {
      this.#again = true;
      return;
    }
    this.#writing = (async () => {
      for (let i = 0; i < 100; i++) {
        this.#again = false;
        const users: _Record["users"] = {};
        for (const [name, e] of this.#local) {
          users[name] = {
            rooms: [...e.rooms],
            connections: e.connections,
            lastActivity: e.lastActivity,
          };
        }
        const record: _Record = { node: this.node, info: this.#opts.info ?? {}, users };
        try {
          await this.#kv!.put(this.#key, JSON.stringify(record));
          if (this.#failing) {
            this.#opts.log?.info("presence record written again", { node: this.node });
          }
          this.#failing = false;
        } catch (e) {
          if (!this.#failing) {
            this.#opts.log?.warn("could not write this node's presence record", {
              node: this.node,
              error: e instanceof Error ? e.message : String(e),
            });
          }
          this.#failing = true;
        }
        if (!this.#again || this.#state !== "open") return;
      }
    })().finally(() => {
      this.#writing = undefined;
    });
  }
}

function _parse(v: unknown): _Remote {
  const r = v as Partial<_Record> | null;
  if (!r || typeof r !== "object" || typeof r.users !== "object" || r.users === null) {
    throw new TypeError("not a presence record");
  }
  const users = new Map<string, PresenceEntry>();
  for (const [user, e] of Object.entries(r.users)) {
    if (!e || !Array.isArray(e.rooms) || typeof e.connections !== "number" || e.connections <= 0) {
      continue;
    }
    users.set(user, {
      user,
      rooms: e.rooms.filter((x): x is string => typeof x === "string").sort(),
      connections: e.connections,
      lastActivity: typeof e.lastActivity === "number" ? e.lastActivity : 0,
    });
  }
  const info = r.info && typeof r.info === "object" ? r.info : {};
  return { info, users, seenAt: 0 };
}
