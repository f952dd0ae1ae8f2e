/**
 * `parley cluster import`, chat: every room and direct message of the data
 * dir appended to the cluster's log in id order, through `ChatLog.append`,
 * then bans, mutes, ignore lists and DM delivery marks through `ChatPolicy`.
 *
 * New ids are the chat stream's sequence. The import appends one message at
 * a time and nothing else writes the stream meanwhile (no node runs), so the
 * i-th message (from 0) gets `start + 1 + i`, where `start` is the stream's
 * last sequence when the import began: that is how an interrupted import
 * knows how far it got (the stream's last sequence now) and how old ids map
 * to new ones (DM delivery marks). Each append carries a key made of the old
 * id, so a retried publish is stored once.
 *
 * @module
 */
import type { ChatBackend, ChatMessage, ChatWhere, NewMessage } from "../backend/chat.ts";

/** Every message of the data dir, sorted by id, and the names seen in direct messages. */
export interface SourceHistory {
  messages: ChatMessage[];
  rooms: string[];
  /** Users with direct messages (sent or received). */
  dmUsers: string[];
}

/** Pages a whole history (oldest first). */
async function _all(chat: ChatBackend, where: ChatWhere): Promise<ChatMessage[]> {
  const out: ChatMessage[] = [];
  // From the start, paging forward (without `after` a page holds the newest messages).
  let after = 0;
  for (let i = 0; i < 1_000_000; i++) {
    const page = await chat.log.page(where, { after, limit: 1000, budget: 64 * 1048576 });
    out.push(...page.messages);
    if (!page.more || page.after === undefined || page.messages.length === 0) break;
    after = Number(page.after);
  }
  return out;
}

/**
 * Reads every message of `chat`: each room's history, and the direct
 * messages of `users` and of everyone they exchanged messages with.
 */
export async function readHistory(chat: ChatBackend, users: string[]): Promise<SourceHistory> {
  const byId = new Map<string, ChatMessage>();
  const rooms = chat.log.rooms();
  for (const room of rooms) {
    for (const m of await _all(chat, { room })) byId.set(m.id, m);
  }
  const seen = new Set<string>();
  const queue = [...users];
  const dmUsers = new Set<string>();
  while (queue.length > 0) {
    const u = queue.shift()!;
    if (seen.has(u)) continue;
    seen.add(u);
    for (const m of await _all(chat, { dm: u })) {
      byId.set(m.id, m);
      dmUsers.add(m.from);
      if (m.to !== undefined) dmUsers.add(m.to);
      for (const other of [m.from, m.to]) {
        if (other !== undefined && !seen.has(other)) queue.push(other);
      }
    }
  }
  const messages = [...byId.values()].sort((a, b) => Number(a.id) - Number(b.id));
  return { messages, rooms, dmUsers: [...dmUsers].sort() };
}

/** A message as the cluster stores it: no id, share references renamed. */
export function restated(m: ChatMessage, shares: ReadonlyMap<string, string>): NewMessage {
  const { id: _id, ...rest } = m;
  const ref = rest.file && /^shared:([0-9a-f]{32})$/.exec(rest.file.path);
  const renamed = ref ? shares.get(ref[1]!) : undefined;
  if (rest.file && renamed) return { ...rest, file: { ...rest.file, path: `shared:${renamed}` } };
  return rest;
}

/** The append key of an imported message: the old log's epoch and the old id. */
export function importKey(epoch: string, id: string): string {
  return `imp.${epoch.slice(0, 24)}.${id}`;
}

/** Where the message copy starts and how it reports. */
export interface MessagesCopy {
  dst: ChatBackend;
  messages: ChatMessage[];
  /** The chat stream's last sequence when the import began. */
  start: number;
  /** Messages already appended by an earlier run. */
  done: number;
  sourceEpoch: string;
  shares: ReadonlyMap<string, string>;
  progress(line: string): void;
}

/** Appends `messages[done…]`; throws if an id is not the one the plan gives it. */
export async function appendMessages(c: MessagesCopy): Promise<number> {
  let last = Date.now();
  let appended = 0;
  for (let i = c.done; i < c.messages.length; i++) {
    const m = c.messages[i]!;
    const stored = await c.dst.log.append(
      restated(m, c.shares),
      importKey(c.sourceEpoch, m.id),
    );
    const want = c.start + 1 + i;
    if (Number(stored.id) !== want) {
      throw new Error(
        `message ${m.id} was stored as ${stored.id}, not ${want}: something else writes to the ` +
          "cluster's chat. Stop every Parley node on the cluster and run the import again",
      );
    }
    appended++;
    if ((i + 1) % 1000 === 0 || Date.now() - last >= 2_000) {
      last = Date.now();
      c.progress(`messages: ${i + 1}/${c.messages.length}`);
    }
  }
  return appended;
}

/** The new id of the last message with an old id up to `oldId` (0 when none). */
export function mapId(oldIds: readonly number[], start: number, oldId: number): number {
  let lo = 0;
  let hi = oldIds.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (oldIds[mid]! <= oldId) lo = mid + 1;
    else hi = mid;
  }
  return lo === 0 ? 0 : start + lo;
}

/** What the policy copy did. */
export interface PolicyResult {
  bans: number;
  mutes: number;
  ignores: number;
  marks: number;
  /** Room topics copied (or already set in the cluster). */
  topics: number;
}

/**
 * Copies bans, mutes, ignore lists and DM delivery marks of `users`, and
 * room topics, from `src` to `dst`. Nothing the cluster already holds is
 * undone: a ban, mute or topic there stays as it is, ignores are added,
 * marks only rise.
 */
export async function copyPolicy(
  src: ChatBackend,
  dst: ChatBackend,
  users: readonly string[],
  ids: { oldIds: readonly number[]; start: number },
): Promise<PolicyResult> {
  const r: PolicyResult = { bans: 0, mutes: 0, ignores: 0, marks: 0, topics: 0 };
  for (const room of src.policy.topicRooms()) {
    const topic = src.policy.topic(room);
    if (!topic) continue;
    if (!dst.policy.topic(room)) await dst.policy.setTopic(room, topic);
    r.topics++;
  }
  for (const user of src.policy.bans()) {
    const ban = src.policy.ban(user);
    if (!ban) continue;
    if (!dst.policy.ban(user)) await dst.policy.setBan(user, ban);
    r.bans++;
  }
  const now = Date.now();
  for (const user of users) {
    const until = src.policy.mutedUntil(user, now);
    if (until !== undefined) {
      // The interface tells when a mute ends, not who set it.
      if (dst.policy.mutedUntil(user, now) === undefined) {
        await dst.policy.setMute(user, { by: "import", until });
      }
      r.mutes++;
    }
    for (const other of src.policy.ignores(user)) {
      if (!dst.policy.ignoring(user, other)) await dst.policy.setIgnore(user, other, true);
      r.ignores++;
    }
    const mark = src.policy.delivered(user);
    const mapped = mark > 0 ? mapId(ids.oldIds, ids.start, mark) : 0;
    if (mapped > 0) {
      dst.policy.markDelivered(user, mapped);
      r.marks++;
    }
  }
  return r;
}

/** Whether two messages say the same (everything but the id; share references mapped). */
export function sameMessage(
  a: ChatMessage,
  b: ChatMessage,
  shares: ReadonlyMap<string, string>,
): boolean {
  return JSON.stringify(_canon(restated(a, shares))) ===
    JSON.stringify(_canon(restated(b, shares)));
}

function _canon(m: NewMessage): unknown {
  return Object.fromEntries(Object.entries(m).sort(([x], [y]) => x < y ? -1 : x > y ? 1 : 0));
}

/** The cluster's messages of `where` after id `start`, oldest first. */
export async function readAfter(
  chat: ChatBackend,
  where: ChatWhere,
  start: number,
): Promise<ChatMessage[]> {
  const out: ChatMessage[] = [];
  let after = start;
  for (let i = 0; i < 1_000_000; i++) {
    const page = await chat.log.page(where, { after, limit: 1000, budget: 64 * 1048576 });
    out.push(...page.messages);
    if (!page.more || page.after === undefined || page.messages.length === 0) break;
    after = Number(page.after);
  }
  return out;
}
