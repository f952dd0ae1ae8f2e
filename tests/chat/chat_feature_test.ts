/**
 * The chat feature (ChatService and the `chat.*` operations) against the
 * embedded chat and accounts backends, without a server process or socket:
 * a real client Session talks to a real server Session over an in-memory
 * transport pair, and the server side dispatches to the feature's operations
 * after its `admit` check, as the server does.
 */
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import type { Session } from "../../protocol/session.ts";
import type { ChatBackend, ChatLog, ChatMessage } from "../../server/backend/chat.ts";
import { createChatFeature } from "../../server/chat/mod.ts";
import type { ClientContext } from "../../server/context.ts";
import { openEmbeddedAccounts } from "../../server/embedded/accounts.ts";
import { openEmbeddedChat } from "../../server/embedded/chat.ts";
import type { Feature } from "../../server/feature.ts";
import { Logger } from "../../server/log.ts";
import { hostFeature, remoteCode } from "../feature_fixture.ts";
import { waitFor } from "./chat_helpers.ts";

/** One client connection: its session and the chat messages it was sent. */
interface _Conn {
  session: Session;
  msgs: ChatMessage[];
  events: [string, unknown][];
}

interface _Harness extends AsyncDisposable {
  feature: Feature;
  /** A new connection of `user` (created as an account on first use). */
  connect(user: string, rights?: { admin?: boolean }): Promise<_Conn>;
}

async function _start(
  chat: Record<string, unknown> = {},
  wrap: (b: ChatBackend) => ChatBackend = (b) => b,
): Promise<_Harness> {
  const dataDir = await Deno.makeTempDir({ prefix: "parley-chat-feature-" });
  const log = new Logger({ level: "error", sink: () => {} });
  const accounts = await openEmbeddedAccounts({ dataDir }, log);
  const backend = await openEmbeddedChat({ dataDir, features: { chat } }, log);
  const contexts = new Set<ClientContext>();
  const clients = {
    all: () => contexts,
    byUser: (name: string) => [...contexts].filter((c) => c.user.name === name),
  };
  const feature = await createChatFeature({
    backend: { chat: wrap(backend), accounts },
    config: chat,
    clients,
    log,
  });
  const host = hostFeature(feature, { contexts });
  return {
    feature,
    async connect(user, rights = {}) {
      if (!(await accounts.get(user))) await accounts.add(user, rights);
      const account = (await accounts.get(user))!;
      const msgs: ChatMessage[] = [];
      const events: [string, unknown][] = [];
      const { client } = await host.connect(account, {
        onEvent: (ev, data) => {
          events.push([ev, data]);
          if (ev === "chat.msg") msgs.push(data as ChatMessage);
        },
      });
      return { session: client, msgs, events };
    },
    async [Symbol.asyncDispose]() {
      await host[Symbol.asyncDispose]();
      await backend.close();
      await accounts.close();
      await Deno.remove(dataDir, { recursive: true });
    },
  };
}

function _ids(msgs: readonly ChatMessage[]): number[] {
  return msgs.map((m) => Number(m.id));
}

Deno.test("chat feature: a send is acknowledged once stored and reaches every member from the feed, the sender's connections included", async () => {
  await using h = await _start();
  const ada1 = await h.connect("ada");
  const ada2 = await h.connect("ada");
  const bob = await h.connect("bob");
  for (const c of [ada1, ada2, bob]) await c.session.call("chat.join", { room: "lobby" });
  const { id } = await ada1.session.call("chat.send", { room: "lobby", text: "hello" }) as {
    id: string;
  };
  const history = await bob.session.call("chat.history", { room: "lobby" }) as {
    messages: ChatMessage[];
  };
  assertEquals(history.messages.map((m) => [m.id, m.text]), [[id, "hello"]]);
  for (const c of [ada1, ada2, bob]) {
    await waitFor(() => c.msgs.some((m) => m.id === id), "the message to reach every member");
    assertEquals(c.msgs.length, 1, "a member got the message twice");
  }
  const dm = await bob.session.call("chat.send", { to: "ada", text: "psst" }) as { id: string };
  for (const c of [ada1, ada2, bob]) {
    await waitFor(() => c.msgs.some((m) => m.id === dm.id), "the DM to reach both users");
  }
});

Deno.test("chat feature: a join while others post gets history up to the watermark, then live messages, with no gap and no duplicate", async () => {
  await using h = await _start({ ratePerSecond: 1_000_000, rateBurst: 1_000_000 });
  const bob = await h.connect("bob");
  await bob.session.call("chat.join", { room: "lobby" });
  const sent: string[] = [];
  let startJoin = (): void => {};
  const go = new Promise<void>((r) => (startJoin = r));
  const writer = (async () => {
    for (let i = 0; i < 60; i++) {
      // the join is sent while these batches are in flight
      if (i === 10) await go;
      const batch = await Promise.all(
        Array.from(
          { length: 4 },
          (_, k) => bob.session.call("chat.send", { room: "lobby", text: `m${i}.${k}` }),
        ),
      );
      sent.push(...batch.map((r) => (r as { id: string }).id));
    }
  })();
  await waitFor(() => sent.length >= 40, "the first messages");
  const ada = await h.connect("ada");
  startJoin();
  const reply = await ada.session.call("chat.join", { room: "lobby", after: 0 }) as {
    history: ChatMessage[];
    more: boolean;
  };
  assertEquals(reply.more, false);
  await writer;
  await waitFor(
    () => ada.msgs.some((m) => m.id === sent.at(-1)),
    "the last message to reach the joined client",
  );
  const seen = [...reply.history, ...ada.msgs];
  assertEquals(_ids(seen), sent.map(Number), "the joined client saw a gap or a duplicate");
});

Deno.test("chat feature: get, history and inbox go through the service and leave out ignored users", async () => {
  await using h = await _start();
  const ada = await h.connect("ada");
  const bob = await h.connect("bob");
  await h.connect("carol");
  const one = await bob.session.call("chat.send", { to: "carol", text: "from bob" }) as {
    id: string;
  };
  await ada.session.call("chat.send", { to: "carol", text: "from ada" });
  const carol = await h.connect("carol");
  assertEquals(await carol.session.call("chat.ignore", { user: "ada" }), { ignored: ["ada"] });
  const inbox = await carol.session.call("chat.inbox", {}) as { messages: ChatMessage[] };
  assertEquals(inbox.messages.map((m) => m.text), ["from bob"]);
  assertEquals(
    (await carol.session.call("chat.inbox", {}) as { messages: ChatMessage[] }).messages,
    [],
    "an inbox read twice",
  );
  const got = await carol.session.call("chat.get", { id: one.id }) as { message: ChatMessage };
  assertEquals(got.message.text, "from bob");
  assertEquals(await remoteCode(ada.session.call("chat.get", { id: one.id })), "not_found");
  const dms = await carol.session.call("chat.history", { dm: true }) as { messages: ChatMessage[] };
  assertEquals(dms.messages.map((m) => m.text), ["from bob"]);
  assertEquals(
    await remoteCode(carol.session.call("chat.ignore", { user: "carol" })),
    "bad_request",
  );
});

Deno.test("chat feature: a ban closes the user's connections through the policy change, and admit refuses them", async () => {
  await using h = await _start();
  const admin = await h.connect("admin", { admin: true });
  const bob1 = await h.connect("bob");
  const bob2 = await h.connect("bob");
  const r = await admin.session.call("chat.ban", { user: "bob", reason: "spam" }) as {
    banned: string[];
    disconnected: number;
  };
  assertEquals(r, { banned: ["bob"], disconnected: 2 });
  for (const b of [bob1, bob2]) {
    const why = await b.session.closed;
    assert(why?.message.includes("banned"), `closed for: ${why?.message}`);
  }
  await assertRejects(() => h.connect("bob"), Error, "banned");
  assertThrows(() => h.feature.admit?.({ name: "bob" } as never), Error, "spam");
  assertEquals(
    await admin.session.call("chat.ban", { user: "bob", off: true }),
    { banned: [] },
  );
  const back = await h.connect("bob");
  await back.session.call("chat.join", { room: "lobby" });
});

Deno.test("chat feature: who and rooms come from presence across a user's connections", async () => {
  await using h = await _start();
  const ada1 = await h.connect("ada");
  const ada2 = await h.connect("ada");
  const bob = await h.connect("bob");
  await ada1.session.call("chat.join", { room: "lobby" });
  await ada2.session.call("chat.join", { room: "dev" });
  await bob.session.call("chat.join", { room: "dev" });
  const who = await bob.session.call("chat.who", {}) as {
    users: { name: string; rooms: string[]; connections: number }[];
  };
  assertEquals(
    who.users.map((u) => [u.name, u.rooms, u.connections]),
    [["ada", ["dev", "lobby"], 2], ["bob", ["dev"], 1]],
  );
  const inDev = await bob.session.call("chat.who", { room: "dev" }) as {
    users: { name: string }[];
  };
  assertEquals(inDev.users.map((u) => u.name), ["ada", "bob"]);
  const rooms = await ada1.session.call("chat.rooms", {}) as {
    rooms: { room: string; users: number; joined: boolean }[];
  };
  assertEquals(rooms.rooms, [
    { room: "dev", users: 2, joined: false },
    { room: "lobby", users: 1, joined: true },
  ]);
  await ada2.session.close();
  await waitFor(() => bob.events.some(([ev]) => ev === "chat.left"), "ada to leave dev");
  const after = await bob.session.call("chat.who", { room: "dev" }) as {
    users: { name: string }[];
  };
  assertEquals(after.users.map((u) => u.name), ["bob"]);
});

/** A log whose history reads wait at a gate while it is closed, as a slow network read would. */
class _GatedLog implements ChatLog {
  #inner: ChatLog;
  #open: Promise<void> = Promise.resolve();
  #release: () => void = () => {};
  /** Page reads waiting at the gate. */
  waiting = 0;

  constructor(inner: ChatLog) {
    this.#inner = inner;
  }

  close(): void {
    this.#open = new Promise((r) => (this.#release = r));
  }

  open(): void {
    this.#release();
  }

  epoch = (): string => this.#inner.epoch();
  append: ChatLog["append"] = (m, key) => this.#inner.append(m, key);
  get: ChatLog["get"] = (id, user) => this.#inner.get(id, user);
  gap: ChatLog["gap"] = (room, after) => this.#inner.gap(room, after);
  rooms = (): string[] => this.#inner.rooms();
  hasRoom = (room: string): boolean => this.#inner.hasRoom(room);
  page: ChatLog["page"] = async (where, q) => {
    this.waiting++;
    await this.#open;
    this.waiting--;
    return await this.#inner.page(where, q);
  };
}

Deno.test("chat feature: messages stored while a join reads history are held, then follow its reply above the watermark", async () => {
  let gated: _GatedLog | undefined;
  await using h = await _start(
    {},
    (b) => ({ ...b, log: gated = new _GatedLog(b.log) }),
  );
  const bob = await h.connect("bob");
  await bob.session.call("chat.join", { room: "lobby" });
  const before = await bob.session.call("chat.send", { room: "lobby", text: "before" }) as {
    id: string;
  };
  const ada = await h.connect("ada");
  gated!.close();
  const join = ada.session.call("chat.join", { room: "lobby" }) as Promise<{
    history: ChatMessage[];
  }>;
  await waitFor(() => gated!.waiting > 0, "the join to read history");
  const during: string[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await bob.session.call("chat.send", { room: "lobby", text: `during ${i}` });
    during.push((r as { id: string }).id);
  }
  // the feed handed these out before their sends were acknowledged; a ping is answered after
  // anything the server queued for ada before it, so nothing was sent to ada yet
  await ada.session.ping();
  assertEquals(ada.msgs, [], "a message reached the joining connection before its join reply");
  gated!.open();
  const reply = await join;
  assertEquals(reply.history.map((m) => m.id), [before.id], "history went past the watermark");
  await waitFor(() => ada.msgs.length >= during.length, "the held messages");
  assertEquals(ada.msgs.map((m) => m.id), during);
});
