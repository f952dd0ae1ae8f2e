/**
 * Chat replies are paged by bytes: big messages never push a `chat.join`,
 * `chat.history`, `chat.inbox`, `chat.rooms` or `chat.who` reply past the
 * 64 KiB frame header limit, and clients that need the whole set follow the
 * pages with no gap and no duplicate.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { ChatClient } from "../../client/chat/chat_client.ts";
import type { ParleyClient } from "../../client/client.ts";
import { startTestServer } from "../helpers.ts";
import { record, waitFor } from "./chat_helpers.ts";

const _BIG = 4000;
const _CHAT = { ratePerSecond: 1_000_000, rateBurst: 1_000_000 };

/** Reply size as it travels in a frame header. */
function bytes(v: unknown): number {
  return new TextEncoder().encode(JSON.stringify(v)).byteLength;
}

interface _Page {
  messages: { id: string; text: string }[];
  more: boolean;
  after?: string;
  before?: string;
}

Deno.test("thirty 4 KB messages leave the room joinable and history pages by bytes", async () => {
  await using t = await startTestServer({ features: { chat: _CHAT } });
  const ada = await t.connect("ada");
  const sent: string[] = [];
  for (let i = 0; i < 30; i++) {
    const r = await ada.call("chat.send", { room: "lobby", text: `${i} ${"x".repeat(_BIG)}` }) as {
      id: string;
    };
    sent.push(r.id);
  }
  const bob = await t.connect("bob");
  const join = await bob.call("chat.join", { room: "lobby", limit: 1000 }) as {
    history: { id: string }[];
    more: boolean;
    before?: string;
  };
  assert(bytes(join) <= 48 * 1024 + 1024, `join reply of ${bytes(join)} bytes`);
  assert(join.history.length > 0 && join.history.length < 30, `${join.history.length} messages`);
  assertEquals(join.more, true);
  assertEquals(join.before, join.history[0]!.id);
  assertEquals(join.history.map((m) => m.id), sent.slice(-join.history.length));

  // paging back with `before` collects everything once, newest pages first
  const back: string[] = [];
  let before: string | undefined = join.before;
  for (let i = 0; i < 100 && before !== undefined; i++) {
    const h = await bob.call("chat.history", { room: "lobby", before, limit: 1000 }) as _Page;
    assert(bytes(h) <= 48 * 1024 + 1024, `history reply of ${bytes(h)} bytes`);
    back.unshift(...h.messages.map((m) => m.id));
    before = h.more ? h.before : undefined;
  }
  assertEquals([...back, ...join.history.map((m) => m.id)], sent);

  // and forward with `after`
  const fwd: string[] = [];
  let after: string | undefined = "0";
  for (let i = 0; i < 100 && after !== undefined; i++) {
    const h = await bob.call("chat.history", { room: "lobby", after, limit: 1000 }) as _Page;
    fwd.push(...h.messages.map((m) => m.id));
    after = h.more ? h.after : undefined;
  }
  assertEquals(fwd, sent);
});

Deno.test("an inbox of thirty 4 KB direct messages arrives whole, in pages that fit a frame", async () => {
  await using t = await startTestServer({ features: { chat: _CHAT } });
  const ada = await t.connect("ada");
  await t.addUser("carol");
  const sent: string[] = [];
  for (let i = 0; i < 30; i++) {
    const text = `${i} ${"d".repeat(_BIG)}`;
    await ada.call("chat.send", { to: "carol", text });
    sent.push(text);
  }
  // a raw call gets one page that fits and says more
  const raw = await t.connect("carol");
  const first = await raw.call("chat.inbox", {}) as _Page;
  assert(first.messages.length > 0 && first.messages.length < 30, `${first.messages.length}`);
  assertEquals(first.more, true);
  assert(bytes(first) <= 48 * 1024 + 1024, `inbox reply of ${bytes(first)} bytes`);
  await raw.close();
  // ChatClient follows the pages: the rest arrives, each message once
  const carol = await ChatClient.start(await t.connect("carol"));
  const texts = carol.recent().map((m) => m.text);
  assertEquals([...first.messages.map((m) => m.text), ...texts], sent);
  carol.close();
});

Deno.test("a client that missed many 4 KB messages recovers every one after reconnecting", async () => {
  await using t = await startTestServer({ features: { chat: _CHAT } });
  const ada = await t.connect("ada");
  const bob = await ChatClient.start(
    await t.connect("bob", { reconnect: true, backoffMs: 200, maxBackoffMs: 200 }),
  );
  const got = record(bob);
  await bob.join("lobby");
  await ada.call("chat.send", { room: "lobby", text: "first" });
  await waitFor(() => got.msgs.length === 1, "first message");
  for (const ctx of t.server.byUser("bob")) await ctx.session.close();
  await waitFor(() => t.server.byUser("bob").length === 0, "bob's logout");
  const sent = ["first"];
  for (let i = 0; i < 60; i++) {
    const text = `${i} ${"r".repeat(_BIG)}`;
    await ada.call("chat.send", { room: "lobby", text });
    sent.push(text);
  }
  await waitFor(() => got.msgs.length >= sent.length, "every missed message", 20_000);
  await waitFor(
    () => got.events.some((e) => e.kind === "connection" && e.state === "restored"),
    "reconnect",
  );
  assertEquals(got.msgs.map((m) => m.text), sent);
  bob.close();
});

Deno.test("room and user lists page by bytes when they grow past a frame", async () => {
  await using t = await startTestServer({
    features: {
      chat: {
        ..._CHAT,
        maxRooms: 5000,
        roomCreatePerMinute: 1_000_000,
        roomCreateBurst: 1_000_000,
      },
    },
  });
  const ada = await t.connect("ada");
  const name = (i: number) => `room-${String(i).padStart(4, "0")}-${"n".repeat(22)}`;
  for (let i = 0; i < 1200; i += 50) {
    await Promise.all(
      Array.from(
        { length: 50 },
        (_, j) => ada.call("chat.send", { room: name(i + j), text: "hi" }),
      ),
    );
  }
  const rooms: string[] = [];
  let after: string | undefined;
  for (let i = 0; i < 100; i++) {
    const r = await ada.call("chat.rooms", after ? { after } : {}) as {
      rooms: { room: string }[];
      more: boolean;
      after?: string;
    };
    assert(bytes(r) <= 48 * 1024 + 1024, `rooms reply of ${bytes(r)} bytes`);
    rooms.push(...r.rooms.map((x) => x.room));
    if (!r.more) break;
    after = r.after;
  }
  assertEquals(rooms, Array.from({ length: 1200 }, (_, i) => name(i)));

  // 20 users each in 100 rooms with long names: one `chat.who` list would be ~70 KB
  const clients: ParleyClient[] = [];
  for (let u = 0; u < 20; u++) {
    const c = await t.connect(`user${String(u).padStart(2, "0")}`);
    clients.push(c);
    for (let j = 0; j < 100; j += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, k) => c.call("chat.join", { room: name(j + k) })),
      );
    }
  }
  const who: string[] = [];
  let from: string | undefined;
  for (let i = 0; i < 100; i++) {
    const r = await ada.call("chat.who", from ? { after: from } : {}) as {
      users: { name: string; rooms: string[] }[];
      more: boolean;
      after?: string;
    };
    assert(bytes(r) <= 48 * 1024 + 1024, `who reply of ${bytes(r)} bytes`);
    who.push(...r.users.map((u) => u.name));
    if (!r.more) break;
    from = r.after;
  }
  assertEquals(who, [
    "ada",
    ...Array.from({ length: 20 }, (_, u) => `user${String(u).padStart(2, "0")}`),
  ]);
});
