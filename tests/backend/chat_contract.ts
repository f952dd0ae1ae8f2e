/**
 * The {@linkcode ChatBackend} contract (`server/backend/chat.ts`), run
 * against any implementation: each `chat_*_test.ts` beside this file calls
 * {@linkcode runChatContract} with a factory for its implementation.
 *
 * @module
 */
import { assert, assertEquals, assertGreater } from "@std/assert";
import type {
  ChatBackend,
  ChatMessage,
  HistoryQuery,
  NewMessage,
  PolicyChange,
} from "../../server/backend/chat.ts";

/** History bounds a store is opened with. */
export interface ChatStoreOptions {
  historyPerRoom?: number;
  dmHistoryPerUser?: number;
}

/**
 * One store (embedded: a data dir; cluster: a stream and buckets) on which
 * backend instances are opened — one at a time, like a server restarting.
 * Disposing the store closes what is open and deletes it.
 */
export interface ChatStoreFixture extends AsyncDisposable {
  /** Opens a backend instance on the store; dispose it to close it. */
  open(): Promise<ChatBackend & AsyncDisposable>;
}

/** Creates an empty store. */
export type ChatStoreFactory = (options?: ChatStoreOptions) => Promise<ChatStoreFixture>;

/** How long something asynchronous may take before a test fails (a deadline, not a measurement). */
const _DEADLINE_MS = 10_000;

async function _eventually(ok: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < _DEADLINE_MS / 10 && !ok(); i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert(ok(), `timed out waiting for ${what}`);
}

function _room(room: string, text: string, from = "ada"): NewMessage {
  return { room, from, text, ts: Date.now() };
}

function _dm(from: string, to: string, text: string): NewMessage {
  return { to, from, text, ts: Date.now() };
}

const _ALL: HistoryQuery = { limit: 1000, budget: 10_000_000 };

/** Every message of a room or of a user's DMs, paging forward through the whole window. */
async function _everything(
  chat: ChatBackend,
  where: { room: string } | { dm: string },
  before?: number,
): Promise<ChatMessage[]> {
  const out: ChatMessage[] = [];
  let after = 0;
  for (let i = 0; i < 10_000; i++) {
    const p = await chat.log.page(where, { limit: 50, budget: 100_000, after, before });
    out.push(...p.messages);
    if (!p.more) return out;
    after = Number(p.after);
  }
  throw new Error("paging did not end");
}

function _ids(msgs: readonly ChatMessage[]): number[] {
  return msgs.map((m) => Number(m.id));
}

function _increasing(ids: readonly number[], what: string): void {
  for (let i = 1; i < ids.length; i++) {
    assert(ids[i]! > ids[i - 1]!, `${what}: id ${ids[i]} after ${ids[i - 1]}`);
  }
}

/** Registers the contract's tests for the implementation `factory` opens. */
export function runChatContract(name: string, factory: ChatStoreFactory): void {
  const test = (what: string, fn: () => Promise<void>): void => {
    Deno.test(`${name} chat backend: ${what}`, fn);
  };

  test("ids increase across rooms and direct messages, and are never reused after a reopen", async () => {
    await using store = await factory();
    const before: number[] = [];
    {
      await using chat = await store.open();
      for (let i = 0; i < 12; i++) {
        const msg = i % 3 === 0
          ? _room("lobby", `l${i}`)
          : i % 3 === 1
          ? _room("dev", `d${i}`)
          : _dm("ada", "bob", `m${i}`);
        const stored = await chat.log.append(msg);
        assertEquals({ ...stored, id: "" }, { id: "", ...msg });
        assert(/^\d+$/.test(stored.id), `id ${stored.id} is not decimal`);
        before.push(Number(stored.id));
      }
      _increasing(before, "sequential appends");
      const together = await Promise.all(
        Array.from({ length: 20 }, (_, i) => chat.log.append(_room(`r${i % 4}`, `c${i}`))),
      );
      const ids = _ids(together);
      assertEquals(new Set(ids).size, ids.length, "concurrent appends got the same id");
      for (const id of ids) assertGreater(id, before.at(-1)!);
      before.push(...ids);
    }
    await using again = await store.open();
    const next = await again.log.append(_room("lobby", "after reopen"));
    assertGreater(Number(next.id), Math.max(...before), "an id was reused after a reopen");
  });

  test("an append resolves once durable: a reopened store holds every acknowledged message", async () => {
    await using store = await factory();
    const acked: ChatMessage[] = [];
    let epoch: string;
    {
      await using chat = await store.open();
      epoch = chat.log.epoch();
      acked.push(
        ...await Promise.all([
          chat.log.append(_room("lobby", "one")),
          chat.log.append(_dm("ada", "bob", "psst")),
          chat.log.append(_room("lobby", "two", "bob")),
        ]),
      );
    }
    await using chat = await store.open();
    assertEquals(chat.log.epoch(), epoch, "the epoch changed on a reopen");
    assertEquals(await _everything(chat, { room: "lobby" }), [acked[0]!, acked[2]!]);
    assertEquals(await _everything(chat, { dm: "bob" }), [acked[1]!]);
    assertEquals(await _everything(chat, { dm: "ada" }), [acked[1]!]);
    assertEquals(chat.log.hasRoom("lobby"), true);
    assertEquals(chat.log.hasRoom("nowhere"), false);
    assertEquals(chat.log.rooms(), ["lobby"]);
    assertGreater(chat.feed.watermark(), 0, "a reopened feed starts below stored ids");
  });

  test("the feed hands out every appended message once, in id order, and its watermark follows", async () => {
    await using store = await factory();
    await using chat = await store.open();
    const seen: ChatMessage[] = [];
    const stop = chat.feed.subscribe((m) => {
      assert(Number(m.id) <= chat.feed.watermark(), "a message above the watermark was handed out");
      seen.push(m);
    });
    try {
      const sent = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          chat.log.append(
            i % 5 === 0 ? _dm("ada", `u${i % 3}`, `dm ${i}`) : _room(`room${i % 4}`, `m ${i}`),
          )),
      );
      await _eventually(() => seen.length >= sent.length, "the feed to hand out 40 messages");
      _increasing(_ids(seen), "feed order");
      assertEquals(new Set(_ids(seen)), new Set(_ids(sent)), "the feed and the appends differ");
      assertEquals(chat.feed.watermark(), Math.max(..._ids(sent)));
    } finally {
      stop();
    }
    await chat.log.append(_room("lobby", "after unsubscribing"));
    assertEquals(seen.length, 40, "an unsubscribed function was still called");
  });

  test("join by watermark: history up to W and live messages above W, with appends running, have no gap and no duplicate", async () => {
    await using store = await factory();
    await using chat = await store.open();
    const appended: Promise<ChatMessage>[] = [];
    const writer = (async () => {
      for (let i = 0; i < 40; i++) {
        const batch = Array.from(
          { length: 5 },
          (_, k) => chat.log.append(_room(k % 2 ? "lobby" : "other", `w${i}.${k}`)),
        );
        appended.push(...batch);
        await Promise.all(batch);
      }
    })();
    // join part way through
    await _eventually(() => chat.feed.watermark() > 0 && appended.length >= 50, "the writer");
    const held: ChatMessage[] = [];
    const stop = chat.feed.subscribe((m) => {
      if (m.room === "lobby") held.push(m);
    });
    try {
      const upto = chat.feed.watermark();
      const history = await _everything(chat, { room: "lobby" }, upto + 1);
      for (const m of history) assert(Number(m.id) <= upto, `history went past W=${upto}`);
      for (const m of held) {
        if (Number(m.id) <= upto) {
          assert(history.some((h) => h.id === m.id), `held ${m.id} <= W is not in the history`);
        }
      }
      await writer;
      const all = (await Promise.all(appended)).filter((m) => m.room === "lobby");
      await _eventually(
        () => held.some((m) => m.id === all.at(-1)!.id),
        "the feed to deliver the writer's last message",
      );
      const joined = [...history, ...held.filter((m) => Number(m.id) > upto)];
      assertEquals(_ids(joined), _ids(all), "join saw a gap or a duplicate");
      assertEquals(_ids(joined), _ids(await _everything(chat, { room: "lobby" })));
    } finally {
      stop();
    }
  });

  test("pages go forward from after and back from before, cut by count and bytes", async () => {
    await using store = await factory();
    await using chat = await store.open();
    const sent: ChatMessage[] = [];
    for (let i = 0; i < 10; i++) sent.push(await chat.log.append(_room("lobby", `m${i}`)));
    await chat.log.append(_room("other", "elsewhere"));
    const ids = _ids(sent);

    const newest = await chat.log.page({ room: "lobby" }, { limit: 3, budget: 100_000 });
    assertEquals(_ids(newest.messages), ids.slice(7));
    assertEquals([newest.more, newest.before], [true, sent[7]!.id]);

    const back = await chat.log.page({ room: "lobby" }, {
      limit: 3,
      budget: 100_000,
      before: ids[7],
    });
    assertEquals(_ids(back.messages), ids.slice(4, 7));

    const fwd = await chat.log.page({ room: "lobby" }, {
      limit: 4,
      budget: 100_000,
      after: ids[1],
    });
    assertEquals(_ids(fwd.messages), ids.slice(2, 6));
    assertEquals([fwd.more, fwd.after], [true, sent[5]!.id]);

    const window = await chat.log.page({ room: "lobby" }, {
      ..._ALL,
      after: ids[2],
      before: ids[6],
    });
    assertEquals(_ids(window.messages), ids.slice(3, 6));
    assertEquals(window.more, false);

    const tiny = await chat.log.page({ room: "lobby" }, { limit: 100, budget: 1, after: 0 });
    assertEquals(_ids(tiny.messages), ids.slice(0, 1), "a page holds at least one message");
    assertEquals(tiny.more, true);

    const kept = await chat.log.page({ room: "lobby" }, {
      ..._ALL,
      keep: (m) => Number(m.text.slice(1)) % 2 === 0,
    });
    assertEquals(kept.messages.map((m) => m.text), ["m0", "m2", "m4", "m6", "m8"]);
  });

  test("direct messages are in both users' history; get finds a message by id only for those who may see it", async () => {
    await using store = await factory();
    await using chat = await store.open();
    const dm = await chat.log.append(_dm("ada", "bob", "for bob"));
    const self = await chat.log.append(_dm("carol", "carol", "note to self"));
    const room = await chat.log.append(_room("lobby", "public"));
    assertEquals(await _everything(chat, { dm: "ada" }), [dm]);
    assertEquals(await _everything(chat, { dm: "bob" }), [dm]);
    assertEquals(await _everything(chat, { dm: "carol" }), [self]);
    assertEquals(await chat.log.get(dm.id, "bob"), dm);
    assertEquals(await chat.log.get(dm.id, "ada"), dm);
    assertEquals(await chat.log.get(dm.id, "carol"), undefined);
    assertEquals(await chat.log.get(room.id, "carol"), room);
    assertEquals(await chat.log.get("999999", "ada"), undefined);
  });

  test("a room at its history bound keeps the newest messages and reports a gap after an old cursor", async () => {
    await using store = await factory({ historyPerRoom: 10 });
    await using chat = await store.open();
    const sent: ChatMessage[] = [];
    for (let i = 0; i < 25; i++) sent.push(await chat.log.append(_room("lobby", `m${i}`)));
    const kept = await _everything(chat, { room: "lobby" });
    assertEquals(_ids(kept), _ids(sent.slice(15)));
    assertEquals(await chat.log.gap("lobby", 0), true);
    assertEquals(await chat.log.gap("lobby", Number(sent[14]!.id)), false);
    assertEquals(await chat.log.gap("lobby", Number(sent[20]!.id)), false);
    assertEquals(await chat.log.gap("nowhere", 0), false);
  });

  test("policy changes are kept, told to subscribers, and survive a reopen", async () => {
    await using store = await factory();
    {
      await using chat = await store.open();
      const p = chat.policy;
      const changes: PolicyChange[] = [];
      const stop = p.subscribe((c) => changes.push(c));
      try {
        await p.setBan("mallory", { by: "admin", reason: "spam" });
        await p.setMute("bob", { by: "admin", until: Date.now() + 60_000 });
        await p.setIgnore("ada", "bob", true);
        p.markDelivered("ada", 7);
        p.markDelivered("ada", 3);
        await _eventually(() => changes.length >= 4, "four policy changes");
        assertEquals(changes.map((c) => [c.kind, "user" in c ? c.user : c.room]), [
          ["ban", "mallory"],
          ["mute", "bob"],
          ["ignore", "ada"],
          ["delivered", "ada"],
        ]);
        assertEquals(p.ban("mallory"), { by: "admin", reason: "spam" });
        assertEquals(p.bans(), ["mallory"]);
        assertGreater(p.mutedUntil("bob")!, Date.now());
        assertEquals(p.mutedUntil("bob", Date.now() + 120_000), undefined, "a mute ends");
        assertEquals([p.ignoring("ada", "bob"), p.ignoring("bob", "ada")], [true, false]);
        assertEquals(p.delivered("ada"), 7, "a delivery mark went down");
      } finally {
        stop();
      }
    }
    await using chat = await store.open();
    const p = chat.policy;
    assertEquals(p.ban("mallory"), { by: "admin", reason: "spam" });
    assertEquals(p.ignores("ada"), ["bob"]);
    assertEquals(p.delivered("ada"), 7);
    const told: PolicyChange[] = [];
    const stop = p.subscribe((c) => told.push(c));
    try {
      await p.setBan("mallory", undefined);
      await p.setIgnore("ada", "bob", false);
      await _eventually(() => told.length >= 2, "two policy changes");
      assertEquals(told[0], { kind: "ban", user: "mallory", ban: undefined });
      assertEquals([p.ban("mallory"), p.bans(), p.ignores("ada")], [undefined, [], []]);
    } finally {
      stop();
    }
  });

  test("room topics are kept, told to subscribers (a clear names who cleared it), and survive a reopen", async () => {
    await using store = await factory();
    const set = { text: "release on Friday", by: "ada", ts: 1_000 };
    {
      await using chat = await store.open();
      const p = chat.policy;
      const told: PolicyChange[] = [];
      const stop = p.subscribe((c) => told.push(c));
      try {
        assertEquals([p.topic("dev"), p.topicRooms()], [undefined, []]);
        await p.setTopic("dev", set);
        // a room name with a dot keeps its own topic
        await p.setTopic("a.b", { text: "dotted", by: "bob", ts: 2_000 });
        await p.setTopic("gone", { text: "short-lived", by: "bob", ts: 3_000 });
        await p.setTopic("gone", { text: "", by: "admin", ts: 4_000 });
        await _eventually(() => told.length >= 4, "four topic changes");
        assertEquals(told.slice(0, 4), [
          { kind: "topic", room: "dev", topic: set },
          { kind: "topic", room: "a.b", topic: { text: "dotted", by: "bob", ts: 2_000 } },
          { kind: "topic", room: "gone", topic: { text: "short-lived", by: "bob", ts: 3_000 } },
          { kind: "topic", room: "gone", topic: { text: "", by: "admin", ts: 4_000 } },
        ]);
        assertEquals(p.topic("dev"), set);
        assertEquals(p.topic("a"), undefined);
        assertEquals(p.topic("gone"), undefined, "a cleared topic is still there");
        assertEquals(p.topicRooms(), ["a.b", "dev"]);
      } finally {
        stop();
      }
    }
    await using chat = await store.open();
    const p = chat.policy;
    assertEquals(p.topic("dev"), set, "a topic was lost on a reopen");
    assertEquals(p.topic("a.b")?.text, "dotted");
    assertEquals(p.topic("gone"), undefined, "a cleared topic came back on a reopen");
    assertEquals(p.topicRooms(), ["a.b", "dev"]);
    const told: PolicyChange[] = [];
    const stop = p.subscribe((c) => told.push(c));
    try {
      const next = { text: "release on Monday", by: "bob", ts: 5_000 };
      await p.setTopic("dev", next);
      await _eventually(() => told.length >= 1, "a topic change after a reopen");
      assertEquals(told[0], { kind: "topic", room: "dev", topic: next });
      assertEquals(p.topic("dev"), next);
    } finally {
      stop();
    }
  });

  test("an append key stores a message once per sender, answers retries with the first message, and is the sender's own", async () => {
    await using store = await factory();
    await using chat = await store.open();
    const fed: ChatMessage[] = [];
    const stop = chat.feed.subscribe((m) => fed.push(m));
    try {
      const first = await chat.log.append(_room("lobby", "hello"), "key-1");
      assertEquals(first.duplicate, undefined, "a first append was marked duplicate");
      const retry = await chat.log.append({ ..._room("lobby", "hello again"), ts: 1 }, "key-1");
      assertEquals(retry.duplicate, true);
      assertEquals({ ...retry, duplicate: undefined }, { ...first, duplicate: undefined });
      // the same key from another user is another message: keys cannot collide across users
      const bobs = await chat.log.append(_room("lobby", "bob's", "bob"), "key-1");
      assertEquals(bobs.duplicate, undefined);
      assertGreater(Number(bobs.id), Number(first.id));
      // concurrent appends with one key store one message
      const racing = await Promise.all(
        Array.from(
          { length: 5 },
          (_, i) => chat.log.append(_dm("ada", "bob", `race ${i}`), "key-2"),
        ),
      );
      assertEquals(new Set(racing.map((m) => m.id)).size, 1, "one key stored several messages");
      assertEquals(racing.filter((m) => !m.duplicate).length <= 1, true);
      const plain = await chat.log.append(_room("lobby", "no key"));
      await _eventually(
        () => fed.some((m) => m.id === plain.id),
        "the feed to reach the last append",
      );
      assertEquals(
        fed.map((m) => m.text),
        ["hello", "bob's", racing[0]!.text, "no key"],
        "the feed handed out a retried message again",
      );
      assertEquals((await _everything(chat, { room: "lobby" })).map((m) => m.text), [
        "hello",
        "bob's",
        "no key",
      ]);
      assertEquals((await _everything(chat, { dm: "bob" })).length, 1);
    } finally {
      stop();
    }
  });

  test("the epoch is a short name, the same on every reopen, and another for another store", async () => {
    await using one = await factory();
    await using two = await factory();
    let a: string;
    {
      await using chat = await one.open();
      a = chat.log.epoch();
    }
    await using again = await one.open();
    await using other = await two.open();
    assert(/^[0-9a-z-]{1,64}$/.test(a), `epoch ${a}`);
    assertEquals(again.log.epoch(), a);
    assert(other.log.epoch() !== a, "two stores share an epoch");
  });

  test("presence merges entries, lists rooms and users, and tells subscribers who changed", async () => {
    await using store = await factory();
    await using chat = await store.open();
    const pr = chat.presence;
    const told: string[] = [];
    const stop = pr.subscribe((u) => told.push(u));
    try {
      pr.set({ user: "bob", rooms: ["lobby", "dev"], connections: 2, lastActivity: 2000 });
      pr.set({ user: "ada", rooms: ["lobby"], connections: 1, lastActivity: 1000 });
      await _eventually(() => told.length >= 2, "two presence changes");
      assertEquals(pr.online(), [
        { name: "ada", rooms: ["lobby"], connections: 1, lastActivity: 1000 },
        { name: "bob", rooms: ["dev", "lobby"], connections: 2, lastActivity: 2000 },
      ]);
      assertEquals(pr.usersIn("lobby"), ["ada", "bob"]);
      assertEquals(pr.get("bob"), {
        name: "bob",
        rooms: ["dev", "lobby"],
        connections: 2,
        lastActivity: 2000,
      });
      assertEquals(pr.get("nobody"), undefined);
      assertEquals([pr.isIn("ada", "dev"), pr.isIn("bob", "dev")], [false, true]);
      assertEquals(pr.rooms().sort(), ["dev", "lobby"]);
      pr.set({ user: "bob", rooms: ["dev"], connections: 1, lastActivity: 3000 });
      assertEquals(pr.usersIn("lobby"), ["ada"]);
      pr.set({ user: "ada", rooms: [], connections: 0, lastActivity: 3000 });
      await _eventually(() => told.length >= 4, "four presence changes");
      assertEquals(told.slice(2), ["bob", "ada"]);
      assertEquals(pr.online().map((u) => u.name), ["bob"]);
      assertEquals(pr.rooms(), ["dev"]);
      assertEquals(typeof pr.node, "string");
    } finally {
      stop();
    }
  });
}
