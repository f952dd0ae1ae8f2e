/**
 * The chat backend contract against the cluster implementation
 * (`server/nats/chat.ts`), each store a fresh nats-server with JetStream
 * (`tests/cluster/nats_fixture.ts`), and what only the cluster log does:
 * encoded names, `unavailable` and `too_large`, the stream check at start.
 * Skipped when nats-server is missing.
 *
 * @module
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { RequestError } from "../../server/errors.ts";
import { Logger } from "../../server/log.ts";
import { type NatsChat, type NatsChatOptions, openNatsChat } from "../../server/nats/chat.ts";
import { ensureChatStream } from "../../server/nats/chat_stream.ts";
import { CHAT_STREAM } from "../../server/nats/chat_subjects.ts";
import { natsAvailable, startNatsServer } from "../cluster/nats_fixture.ts";
import { type ChatStoreOptions, runChatContract } from "./chat_contract.ts";

const _QUIET = new Logger({ level: "error", sink: () => {} });

async function _store(options: ChatStoreOptions = {}) {
  const server = await startNatsServer();
  const log = _QUIET;
  const open = new Set<{ chat: NatsChat; nc: NatsConnection }>();
  const closeOne = async (o: { chat: NatsChat; nc: NatsConnection }) => {
    if (!open.delete(o)) return;
    await o.chat.close();
    await o.nc.close();
  };
  return {
    async open() {
      const nc = await connect({ servers: server.urls });
      let chat: NatsChat;
      try {
        chat = await openNatsChat(nc, {
          node: "n1",
          historyPerRoom: options.historyPerRoom,
          dmHistory: options.dmHistoryPerUser,
          log,
        });
      } catch (e) {
        await nc.close();
        throw e;
      }
      const o = { chat, nc };
      open.add(o);
      return {
        log: chat.log,
        feed: chat.feed,
        policy: chat.policy,
        presence: chat.presence,
        [Symbol.asyncDispose]: () => closeOne(o),
      };
    },
    async [Symbol.asyncDispose]() {
      await Promise.allSettled([...open].map(closeOne));
      await server.close();
    },
  };
}

if (natsAvailable()) runChatContract("nats", _store);

const _ignore = !natsAvailable();

async function _eventually(ok: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1_000 && !ok(); i++) await new Promise((r) => setTimeout(r, 20));
  assert(ok(), `timed out waiting for ${what}`);
}

/** The cluster chat on a fresh single server, with `extra` options. */
async function _single(extra: Partial<NatsChatOptions> = {}) {
  const server = await startNatsServer();
  const nc = await connect({
    servers: server.urls,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 100,
  });
  const chat = await openNatsChat(nc, { node: "n1", log: _QUIET, ...extra }).catch(async (e) => {
    await nc.close();
    await server.close();
    throw e;
  });
  return {
    server,
    nc,
    chat,
    async [Symbol.asyncDispose]() {
      await chat.close();
      await nc.close();
      await server.close();
    },
  };
}

Deno.test({
  name: "nats chat log: room and user names with dots keep their own subjects",
  ignore: _ignore,
}, async () => {
  await using s = await _single();
  const log = s.chat.log;
  const room = await log.append({ room: "a.b", from: "x.y", text: "dotted", ts: 1 });
  const plain = await log.append({ room: "a", from: "x", text: "plain", ts: 2 });
  const dm = await log.append({ to: "x.y", from: "z", text: "psst", ts: 3 });
  const all = { limit: 100, budget: 1_000_000 };
  assertEquals((await log.page({ room: "a.b" }, all)).messages, [room]);
  assertEquals((await log.page({ room: "a" }, all)).messages, [plain]);
  assertEquals((await log.page({ dm: "x.y" }, all)).messages, [dm]);
  assertEquals((await log.page({ dm: "x" }, all)).messages, []);
  assertEquals(await log.get(dm.id, "x"), undefined);
  assertEquals(await log.get(dm.id, "x.y"), dm);
  assertEquals(log.rooms(), ["a", "a.b"]);
});

Deno.test({
  name:
    "nats chat log: with NATS gone an append fails with unavailable at its deadline, and so does a page; both work once NATS is back",
  ignore: _ignore,
}, async () => {
  await using s = await _single({ appendDeadlineMs: 1_500, attemptMs: 500 });
  await s.chat.log.append({ room: "lobby", from: "ada", text: "before", ts: 1 });
  await s.server.servers[0]!.kill("SIGKILL");
  const t0 = Date.now();
  const e = await assertRejects(
    () => s.chat.log.append({ room: "lobby", from: "ada", text: "lost", ts: 2 }, "key-1"),
    RequestError,
  );
  assertEquals(e.code, "unavailable");
  assert(Date.now() - t0 < 10_000, "the append did not give up near its deadline");
  const p = await assertRejects(
    () => s.chat.log.page({ room: "lobby" }, { limit: 10, budget: 100_000 }),
    RequestError,
  );
  assertEquals(p.code, "unavailable");
  await s.server.servers[0]!.restart();
  const again = await s.chat.log.append(
    { room: "lobby", from: "ada", text: "again", ts: 3 },
    "key-1",
  );
  const page = await s.chat.log.page({ room: "lobby" }, { limit: 10, budget: 100_000 });
  assertEquals(page.messages.map((m) => m.text), ["before", "again"]);
  await _eventually(() => s.chat.feed.watermark() >= Number(again.id), "the feed after the outage");
});

Deno.test({
  name: "nats chat log: a message over the stream's size limit is too_large, not retried",
  ignore: _ignore,
}, async () => {
  await using s = await _single({ maxTextBytes: 4096 });
  const e = await assertRejects(
    () => s.chat.log.append({ room: "lobby", from: "ada", text: "x".repeat(64 * 1024), ts: 1 }),
    RequestError,
  );
  assertEquals(e.code, "too_large");
});

Deno.test({
  name:
    "nats chat stream: a reopen with a new history bound updates the stream; a foreign stream is refused",
  ignore: _ignore,
}, async () => {
  await using s = await _single({ historyPerRoom: 50 });
  const jsm = await jetstreamManager(s.nc);
  assertEquals((await jsm.streams.info(CHAT_STREAM)).config.max_msgs_per_subject, 50);
  const info = await ensureChatStream(jsm, { replicas: 1, historyPerRoom: 70, maxTextBytes: 4096 });
  assertEquals(info.config.max_msgs_per_subject, 70);
  await jsm.streams.delete(CHAT_STREAM);
  await jsm.streams.add({ name: CHAT_STREAM, subjects: ["elsewhere.>"] });
  await assertRejects(
    () => ensureChatStream(jsm, { replicas: 1, historyPerRoom: 70, maxTextBytes: 4096 }),
    TypeError,
    "subjects",
  );
});

Deno.test({
  name:
    "nats chat log: paging back and forth through a long history, with a filter, returns every message once",
  ignore: _ignore,
}, async () => {
  await using s = await _single();
  const log = s.chat.log;
  const sent = [];
  for (let i = 0; i < 2400; i += 100) {
    sent.push(
      ...await Promise.all(Array.from({ length: 100 }, (_, k) => {
        const n = i + k;
        return log.append(
          n % 4 === 0 ? { room: "a", from: "ada", text: `${n}`, ts: n } : n % 4 === 1
            ? {
              to: n % 8 === 1 ? "bob" : "ada",
              from: n % 8 === 1 ? "ada" : "bob",
              text: `${n}`,
              ts: n,
            }
            : { room: "b", from: "bob", text: `${n}`, ts: n },
        );
      })),
    );
  }
  const even = (m: { text: string }) => Number(m.text) % 8 < 4;
  const cases = [
    { where: { room: "a" }, keep: undefined },
    { where: { room: "a" }, keep: even },
    { where: { dm: "bob" }, keep: undefined },
    { where: { dm: "bob" }, keep: even },
  ];
  for (const { where, keep } of cases) {
    const want = sent.filter((m) =>
      ("room" in where ? m.room === where.room : m.to !== undefined) && (!keep || keep(m))
    ).map((m) => m.id);
    const back: string[] = [];
    let before: number | undefined;
    for (let i = 0; i < 1000; i++) {
      const p = await log.page(where, { limit: 37, budget: 1_000_000, before, keep });
      back.unshift(...p.messages.map((m) => m.id));
      if (!p.more) break;
      before = Number(p.before);
    }
    assertEquals(back, want, `paging back through ${JSON.stringify(where)}`);
    const fwd: string[] = [];
    let after = 0;
    for (let i = 0; i < 1000; i++) {
      const p = await log.page(where, { limit: 41, budget: 2_000, after, keep });
      fwd.push(...p.messages.map((m) => m.id));
      if (!p.more) break;
      after = Number(p.after);
    }
    assertEquals(fwd, want, `paging forward through ${JSON.stringify(where)}`);
    // one read of more than one pull
    const whole = await log.page(where, { limit: 1000, budget: 10_000_000, after: 0, keep });
    assertEquals(whole.messages.map((m) => m.id), want);
  }
});
