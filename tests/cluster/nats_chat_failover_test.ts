/**
 * The chat stream's raft leader killed with SIGKILL under load: 300 keyed
 * sends through two nodes (one connected to the leader's server, one to
 * another), the leader killed a third of the way through and restarted 3 s
 * later. Every acknowledged send must be stored exactly once and handed out
 * once, in order, by both nodes' feeds. The stall is printed, not asserted.
 * Skipped without nats-server.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import type { ChatMessage } from "../../server/backend/chat.ts";
import { ensureChatStreamSoon } from "../../server/nats/chat_stream.ts";
import { CHAT_STREAM } from "../../server/nats/chat_subjects.ts";
import { type ChatNode, chatNode, eventually, ids } from "./nats_chat_fixture.ts";
import { natsAvailable, startNatsCluster } from "./nats_fixture.ts";

const _SENDS = 300;
const _KILL_AT = 100;
const _EVERY_MS = 10;
const _IN_FLIGHT = 16;
const _RESTART_AFTER_MS = 3_000;
/** Times a send that failed with `unavailable` is tried again with its key, like a client would. */
const _CLIENT_TRIES = 4;

/** Largest gap between consecutive instants (ms). */
function _maxGap(times: readonly number[]): number {
  const t = [...times].sort((a, b) => a - b);
  let gap = 0;
  for (let i = 1; i < t.length; i++) gap = Math.max(gap, t[i]! - t[i - 1]!);
  return Math.round(gap);
}

Deno.test({
  name:
    "nats chat: a stream leader killed with SIGKILL under load loses no acknowledged send and stores none twice",
  ignore: !natsAvailable(),
}, async () => {
  await using cluster = await startNatsCluster();
  const admin = await connect({ servers: cluster.urls });
  let leaderIdx: number;
  try {
    const jsm = await jetstreamManager(admin);
    await ensureChatStreamSoon(jsm, { replicas: 3, historyPerRoom: 1000, maxTextBytes: 4096 });
    const leader = (await jsm.streams.info(CHAT_STREAM)).cluster?.leader;
    leaderIdx = cluster.servers.findIndex((s) => s.name === leader);
    assert(leaderIdx >= 0, `no leader among the servers: ${leader}`);
  } finally {
    await admin.close();
  }
  const leader = cluster.servers[leaderIdx]!;
  const order = (first: number) => [0, 1, 2].map((k) => cluster.urls[(first + k) % 3]!);
  await using a = await chatNode(order(leaderIdx), "a");
  await using b = await chatNode(order(leaderIdx + 1), "b");

  const acked = new Map<string, ChatMessage>();
  const ackAt: number[] = [];
  let retried = 0;
  const failed: unknown[] = [];
  const send = async (i: number): Promise<void> => {
    const key = `s${i}`;
    const via: ChatNode = i % 2 ? a : b;
    for (let attempt = 1;; attempt++) {
      try {
        const m = await via.chat.log.append(
          { room: "load", from: "ada", text: key, ts: Date.now() },
          key,
        );
        acked.set(key, m);
        ackAt.push(performance.now());
        return;
      } catch (e) {
        if (attempt >= _CLIENT_TRIES) return void failed.push(e);
        retried++;
      }
    }
  };

  const t0 = performance.now();
  let killedAt = 0;
  let restarted: Promise<void> | undefined;
  const inflight = new Set<Promise<void>>();
  for (let i = 0; i < _SENDS; i++) {
    if (i === _KILL_AT) {
      await leader.kill("SIGKILL");
      killedAt = performance.now();
      restarted = new Promise((r) => setTimeout(r, _RESTART_AFTER_MS)).then(() => leader.restart());
    }
    while (inflight.size >= _IN_FLIGHT) await Promise.race(inflight);
    const p = send(i).finally(() => inflight.delete(p));
    inflight.add(p);
    await new Promise((r) => setTimeout(r, _EVERY_MS));
  }
  await Promise.all(inflight);
  const sentIn = performance.now() - t0;
  await restarted;

  assertEquals(failed, [], "sends failed after every retry");
  assertEquals(acked.size, _SENDS);
  const want = ids([...acked.values()]).sort((x, y) => x - y);
  assertEquals(new Set(want).size, _SENDS, "two sends got the same id");
  const last = want.at(-1)!;
  await eventually(
    () => a.chat.feed.watermark() >= last && b.chat.feed.watermark() >= last,
    "both feeds to reach the last acknowledged id",
    60_000,
  );
  for (const n of [a, b]) {
    const seen = ids(n.seen);
    for (let i = 1; i < seen.length; i++) assert(seen[i]! > seen[i - 1]!, "feed out of order");
    assertEquals(ids(n.seen.filter((m) => m.room === "load")), want);
  }
  const stored: ChatMessage[] = [];
  for (let after = 0, more = true; more;) {
    const p = await b.chat.log.page({ room: "load" }, { limit: 100, budget: 1_000_000, after });
    stored.push(...p.messages);
    more = p.more;
    after = Number(p.after);
  }
  assertEquals(ids(stored), want, "the stream holds other messages than those acknowledged");
  assertEquals(new Set(stored.map((m) => m.text)).size, _SENDS, "a send was stored twice");

  const after = (times: number[]) => times.filter((t) => t > killedAt);
  console.log(JSON.stringify({
    sends: _SENDS,
    sendRatePerS: Math.round(_SENDS / (sentIn / 1000)),
    clientRetries: retried,
    ackStallMs: _maxGap(ackAt),
    feedStallMs: {
      a: _maxGap([killedAt, ...after(a.at)]),
      b: _maxGap([killedAt, ...after(b.at)]),
    },
    watchdogRestarts: {
      a: a.chat.natsFeed.stats().restarts,
      b: b.chat.natsFeed.stats().restarts,
    },
  }));
});
