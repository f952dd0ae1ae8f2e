/**
 * Cluster chat on a real 3-server NATS cluster (`nats_fixture.ts`): two
 * chat instances ("nodes", each on its own server) share ids and order; a
 * keyed append is stored once; the feed's watchdog recovers a stalled
 * consumer; and a stream leader killed with SIGKILL under load loses no
 * acknowledged send and stores none twice. Skipped without nats-server.
 *
 * @module
 */
import { assert, assertEquals, assertGreater } from "@std/assert";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { CHAT_STREAM, roomSubject } from "../../server/nats/chat_subjects.ts";
import { chatNode, eventually, ids } from "./nats_chat_fixture.ts";
import { natsAvailable, type NatsCluster, startNatsCluster } from "./nats_fixture.ts";

const available = natsAvailable();

/** Deletes the chat stream, so the next step starts on an empty one. */
async function _fresh(cluster: NatsCluster): Promise<void> {
  const nc = await connect({ servers: cluster.urls });
  try {
    await (await jetstreamManager(nc)).streams.delete(CHAT_STREAM).catch(() => false);
  } finally {
    await nc.close();
  }
}

Deno.test({ name: "nats chat on a 3-server cluster", ignore: !available }, async (t) => {
  await using cluster = await startNatsCluster();
  const urls = (first: number) => [0, 1, 2].map((k) => cluster.urls[(first + k) % 3]!);

  await t.step("two nodes see the same ids in the same order", async () => {
    await using a = await chatNode(urls(0), "a");
    await using b = await chatNode(urls(1), "b");
    const sent = await Promise.all(
      Array.from({ length: 60 }, (_, i) => {
        const n = i % 2 ? a : b;
        return n.chat.log.append(
          i % 5 === 0
            ? { to: "bob", from: "ada", text: `dm ${i}`, ts: Date.now() }
            : { room: `r${i % 3}`, from: i % 2 ? "ada" : "bob", text: `m ${i}`, ts: i },
        );
      }),
    );
    const last = Math.max(...ids(sent));
    await eventually(
      () => a.chat.feed.watermark() >= last && b.chat.feed.watermark() >= last,
      "both feeds",
    );
    assertEquals(ids(a.seen), ids(b.seen), "the nodes' feeds differ");
    assertEquals(a.seen, b.seen);
    assertEquals(ids(a.seen), ids(sent).sort((x, y) => x - y));
    assertEquals(b.chat.log.rooms(), ["r0", "r1", "r2"]);
    assertEquals(a.chat.log.epoch(), b.chat.log.epoch());
  });

  await t.step("appends made in one turn go to NATS in one socket write", async () => {
    await _fresh(cluster);
    await using a = await chatNode(urls(0), "a");
    // The connection's transport is where nats.js hands each flush of its outbound buffer to
    // the socket; every call is one write.
    type Sender = { send: (frame: Uint8Array) => void };
    const transport = (a.nc as unknown as { protocol?: { transport?: Partial<Sender> } })
      .protocol?.transport;
    assert(typeof transport?.send === "function", "nats.js no longer has protocol.transport.send");
    const sender = transport as Sender;
    const send = sender.send;
    const writes: string[] = [];
    sender.send = (frame: Uint8Array) => {
      writes.push(new TextDecoder().decode(frame));
      send.call(sender, frame);
    };
    const appends = [];
    try {
      for (let i = 0; i < 10; i++) {
        appends.push(a.chat.log.append({ room: "turn", from: "ada", text: `m ${i}`, ts: i }));
        // Requests of one batch are handled with microtasks between them, time enough for
        // nats.js to flush what it has.
        for (let k = 0; k < 5; k++) await Promise.resolve();
      }
      await Promise.all(appends);
    } finally {
      sender.send = send;
    }
    const subject = roomSubject("turn");
    const carrying = writes.filter((w) => w.includes(subject));
    assertEquals(carrying.length, 1, `appends went out in ${carrying.length} writes`);
    assertEquals(carrying[0]!.split(`PUB ${subject} `).length - 1, 10);
    assertEquals(ids(await Promise.all(appends)), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  await t.step("an append retried with the same key is stored once", async () => {
    await _fresh(cluster);
    await using a = await chatNode(urls(0), "a");
    await using b = await chatNode(urls(1), "b");
    const first = await a.chat.log.append(
      { room: "lobby", from: "ada", text: "once", ts: 1 },
      "k-1",
    );
    const again = await b.chat.log.append(
      { room: "lobby", from: "ada", text: "once", ts: 2 },
      "k-1",
    );
    assertEquals(
      again,
      { ...first, duplicate: true },
      "a retry through another node did not return the first message",
    );
    const other = await a.chat.log.append(
      { room: "lobby", from: "bob", text: "once", ts: 3 },
      "k-1",
    );
    assertGreater(
      Number(other.id),
      Number(first.id),
      "another sender's key was taken as a retry",
    );
    const page = await b.chat.log.page({ room: "lobby" }, { limit: 100, budget: 1_000_000 });
    assertEquals(page.messages, [first, other]);
    await eventually(() => a.seen.length === 2, "the feed");
    assertEquals(a.seen, [first, other]);
  });

  await t.step("the watchdog replaces a consumer that stalls", async () => {
    await _fresh(cluster);
    // heartbeats so slow that the client would not notice the lost consumer for a minute
    await using a = await chatNode(urls(0), "a", {
      feed: { heartbeatMs: 30_000, expiresMs: 60_000, checkMs: 300 },
    });
    const before = await a.chat.log.append({ room: "lobby", from: "ada", text: "before", ts: 1 });
    await eventually(() => a.seen.length === 1, "the first message");
    const jsm = await jetstreamManager(a.nc);
    const names: string[] = [];
    for await (const ci of jsm.consumers.list(CHAT_STREAM)) names.push(ci.name);
    assertEquals(names.length, 1, `consumers: ${names}`);
    await jsm.consumers.delete(CHAT_STREAM, names[0]!);
    const t0 = performance.now();
    const after = [];
    for (let i = 0; i < 5; i++) {
      after.push(await a.chat.log.append({ room: "lobby", from: "ada", text: `a${i}`, ts: i }));
    }
    await eventually(() => a.seen.length === 6, "the watchdog to recover the feed", 20_000);
    assertEquals(a.seen, [before, ...after]);
    assertGreater(a.chat.natsFeed.stats().restarts, 0);
    console.log(
      `watchdog: feed resumed ${Math.round(a.at.at(-1)! - t0)} ms after its consumer was deleted`,
    );
  });
});
