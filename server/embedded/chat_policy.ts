/**
 * The embedded {@linkcode ChatPolicy}: chat state that is not history —
 * bans, mutes, ignore lists, how far each user's direct messages have
 * been delivered, and room topics. Subscribers are called synchronously after each change.
 * Kept in
 * `chat/state.json`, replaced atomically (write a temporary file, rename),
 * saved shortly after each change and at shutdown; a failed save (a full
 * disk) is retried every second until it works. Its size is bounded: every
 * user key is an existing account, ignore lists are capped (`maxIgnores`),
 * and there is at most one topic per room (rooms are capped by `maxRooms`;
 * the chat feature bounds a topic's length).
 *
 * @module
 */
import type { Ban, ChatPolicy, Mute, PolicyChange, Topic } from "../backend/chat.ts";
import type { Logger } from "../log.ts";

interface _Data {
  bans: Record<string, { by: string; reason?: string; ts: number }>;
  mutes: Record<string, { by: string; until: number }>;
  ignores: Record<string, string[]>;
  delivered: Record<string, number>;
  topics: Record<string, Topic>;
}

const _SAVE_DELAY_MS = 100;
const _RETRY_MS = 1000;

/** Moderation, ignore lists and DM delivery marks. */
export class EmbeddedChatPolicy implements ChatPolicy {
  readonly path: string;
  #d: _Data;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #saving: Promise<void> = Promise.resolve();
  #log: Logger;
  #failing = false;
  #closing = false;
  #subs = new Set<(change: PolicyChange) => void>();

  private constructor(path: string, data: _Data, log: Logger) {
    this.path = path;
    this.#d = data;
    this.#log = log;
  }

  /** Loads the state file; a damaged one is set aside (renamed `.bad`) and logged. */
  static async open(path: string, log: Logger): Promise<EmbeddedChatPolicy> {
    const empty: _Data = { bans: {}, mutes: {}, ignores: {}, delivered: {}, topics: {} };
    let data = empty;
    try {
      const raw = JSON.parse(await Deno.readTextFile(path));
      if (raw === null || typeof raw !== "object") throw new TypeError("not an object");
      data = {
        bans: _obj(raw.bans),
        mutes: _obj(raw.mutes),
        ignores: _obj(raw.ignores),
        delivered: _obj(raw.delivered),
        topics: _topics(raw.topics),
      } as _Data;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        log.error("chat state file unreadable; starting with an empty one", {
          file: path,
          error: (e as Error).message,
        });
        try {
          await Deno.rename(path, `${path}.bad`);
        } catch (r) {
          log.error("cannot set the damaged chat state file aside; it will be overwritten", {
            file: path,
            error: (r as Error).message,
          });
        }
      }
    }
    return new EmbeddedChatPolicy(path, data, log);
  }

  subscribe(fn: (change: PolicyChange) => void): () => void {
    const sub = (c: PolicyChange): void => fn(c);
    this.#subs.add(sub);
    return () => void this.#subs.delete(sub);
  }

  ban(user: string): Ban | undefined {
    const b = this.#d.bans[user];
    return b && { by: b.by, ...(b.reason !== undefined ? { reason: b.reason } : {}) };
  }

  setBan(user: string, ban: Ban | undefined): Promise<void> {
    if (ban) this.#d.bans[user] = { ...ban, ts: Date.now() };
    else delete this.#d.bans[user];
    this.#changed({ kind: "ban", user, ban });
    return Promise.resolve();
  }

  /** Banned user names. */
  bans(): string[] {
    return Object.keys(this.#d.bans).sort();
  }

  /** When `user`'s mute ends (ms since epoch), if muted now. */
  mutedUntil(user: string, now: number = Date.now()): number | undefined {
    const m = this.#d.mutes[user];
    if (!m) return undefined;
    if (m.until <= now) {
      delete this.#d.mutes[user];
      this.#changed({ kind: "mute", user, mute: undefined });
      return undefined;
    }
    return m.until;
  }

  setMute(user: string, mute: Mute | undefined): Promise<void> {
    if (mute) this.#d.mutes[user] = mute;
    else delete this.#d.mutes[user];
    this.#changed({ kind: "mute", user, mute });
    return Promise.resolve();
  }

  /** Users `user` ignores. */
  ignores(user: string): readonly string[] {
    return this.#d.ignores[user] ?? [];
  }

  /** Whether `user` ignores `other`. */
  ignoring(user: string, other: string): boolean {
    return this.#d.ignores[user]?.includes(other) ?? false;
  }

  /** Adds or removes `other` from `user`'s ignore list. */
  setIgnore(user: string, other: string, on: boolean): Promise<void> {
    const set = new Set(this.#d.ignores[user] ?? []);
    if (on) set.add(other);
    else set.delete(other);
    if (set.size) this.#d.ignores[user] = [...set].sort();
    else delete this.#d.ignores[user];
    this.#changed({ kind: "ignore", user });
    return Promise.resolve();
  }

  /** Highest DM id delivered to one of `user`'s connections. */
  delivered(user: string): number {
    return this.#d.delivered[user] ?? 0;
  }

  /** Records that DMs up to `id` reached `user`. */
  markDelivered(user: string, id: number): void {
    if (id <= (this.#d.delivered[user] ?? 0)) return;
    this.#d.delivered[user] = id;
    this.#changed({ kind: "delivered", user, id });
  }

  /** The topic of `room`, if it has one. */
  topic(room: string): Topic | undefined {
    const t = this.#d.topics[room];
    return t && { ...t };
  }

  /** Rooms with a topic. */
  topicRooms(): string[] {
    return Object.keys(this.#d.topics).sort();
  }

  /** Sets `room`'s topic (an empty text clears it). */
  setTopic(room: string, topic: Topic): Promise<void> {
    const t = { text: topic.text, by: topic.by, ts: topic.ts };
    if (t.text !== "") this.#d.topics[room] = t;
    else delete this.#d.topics[room];
    this.#changed({ kind: "topic", room, topic: { ...t } });
    return Promise.resolve();
  }

  /**
   * Writes pending changes now, at shutdown: a save that fails now is
   * logged, not retried. Idempotent.
   */
  async close(): Promise<void> {
    this.#closing = true;
    this.#subs.clear();
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#saving = this.#saving.then(() => this.#save());
    }
    await this.#saving;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #changed(change: PolicyChange | undefined, delay = _SAVE_DELAY_MS): void {
    if (change) { for (const fn of this.#subs) fn(change); }
    if (this.#timer !== undefined || this.#closing) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#saving = this.#saving.then(() => this.#save());
    }, delay);
  }

  /** Never rejects: a failure is logged once and the save retried until it works. */
  async #save(): Promise<void> {
    const tmp = `${this.path}.tmp`;
    try {
      await Deno.writeTextFile(tmp, JSON.stringify(this.#d) + "\n", { mode: 0o600 });
      await Deno.rename(tmp, this.path);
      if (this.#failing) this.#log.info("chat state saved again", { file: this.path });
      this.#failing = false;
    } catch (e) {
      if (!this.#failing) {
        this.#log.error("cannot save chat state; retrying", {
          file: this.path,
          error: (e as Error).message,
        });
      }
      this.#failing = true;
      try {
        await Deno.remove(tmp);
      } catch {
        // a partial temporary file is overwritten by the next attempt anyway
      }
      if (!this.#closing) this.#changed(undefined, _RETRY_MS);
    }
  }
}

/** The well-formed topics of a loaded state file (others are dropped). */
function _topics(v: unknown): Record<string, Topic> {
  const out: Record<string, Topic> = {};
  for (const [room, t] of Object.entries(_obj(v))) {
    const o = t as Partial<Topic> | null;
    if (
      o && typeof o === "object" && typeof o.text === "string" && o.text !== "" &&
      typeof o.by === "string" && typeof o.ts === "number"
    ) out[room] = { text: o.text, by: o.by, ts: o.ts };
  }
  return out;
}

function _obj(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v)
    ? v as Record<string, unknown>
    : {};
}
