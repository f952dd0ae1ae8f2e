/**
 * The NATS server that leads the chat stream is killed with SIGKILL while a user sends through a
 * Parley node: every acknowledged send reaches readers on both nodes exactly once, in order, and
 * the stall is bounded. Real `parley serve --cluster` processes on a 3-server NATS cluster.
 */
import { assert, assertEquals } from "@std/assert";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import type { ChatMessage } from "../../protocol/chat_message.ts";
import { waitFor } from "../chat/chat_helpers.ts";
import { natsAvailable, startNatsCluster } from "./nats_fixture.ts";
import {
  addClusterUser,
  chatOnNodes,
  connectNodes,
  type ParleyNode,
  startParleyNode,
} from "./cluster_helpers.ts";

const available = natsAvailable();

async function reader(node: ParleyNode, user: string, key: string) {
  const on = await chatOnNodes([node], user, key);
  const msgs: ChatMessage[] = [];
  on.chat.onEvent((e) => {
    if (e.kind === "msg" && e.msg.room === "load") msgs.push(e.msg);
  });
  await on.chat.join("load");
  return { ...on, msgs };
}

Deno.test({
  name: "cluster: the chat stream's NATS leader killed under load loses no acknowledged send",
  ignore: !available,
}, async () => {
  await using nats = await startNatsCluster();
  const config = { chat: { ratePerSecond: 10_000, rateBurst: 10_000 } };
  await using a = await startParleyNode(nats.urls, "a", [], config);
  await using b = await startParleyNode(nats.urls, "b", [], config);
  const keys: Record<string, string> = {};
  for (const u of ["ada", "bob", "carol"]) keys[u] = await addClusterUser(nats.urls, u);
  const sender = await connectNodes([a], "ada", keys.ada!);
  const onA = await reader(a, "carol", keys.carol!);
  const onB = await reader(b, "bob", keys.bob!);
  const admin = await connect({ servers: nats.urls });
  try {
    const acked: { id: string; at: number }[] = [];
    let failures = 0;
    let sending = true;
    const loop = (async () => {
      for (let i = 0; sending && i < 5_000; i++) {
        try {
          const r = await sender.call("chat.send", { room: "load", text: `n${i}` }) as {
            id: string;
          };
          acked.push({ id: r.id, at: performance.now() });
        } catch {
          failures++;
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    loop.catch(() => {}); // awaited below
    await waitFor(() => acked.length >= 50, "traffic", 10_000);
    const jsm = await jetstreamManager(admin);
    const leader = (await jsm.streams.info("PARLEY_MSG")).cluster?.leader;
    const victim = nats.servers.find((s) => s.name === leader);
    if (!victim) throw new Error(`no leader for PARLEY_MSG (${leader})`);
    const killedAt = performance.now();
    const before = acked.length;
    await victim.kill("SIGKILL");
    await waitFor(() => acked.length >= before + 100, "sends after the kill", 30_000);
    await victim.restart();
    const afterRestart = acked.length;
    await waitFor(() => acked.length >= afterRestart + 50, "sends after the restart", 30_000);
    sending = false;
    await loop;
    const ids = acked.map((x) => x.id);
    const last = ids[ids.length - 1]!;
    for (const r of [onA, onB]) {
      await waitFor(() => r.msgs.some((m) => m.id === last), "readers caught up", 20_000);
      const seen = r.msgs.map((m) => m.id).filter((id) => Number(id) >= Number(ids[0]));
      assertEquals(seen, ids, "a reader's ids differ from the acknowledged sends");
    }
    let stall = 0;
    for (let i = 1; i < acked.length; i++) {
      if (acked[i]!.at >= killedAt) stall = Math.max(stall, acked[i]!.at - acked[i - 1]!.at);
    }
    console.log(
      `NATS leader ${leader} killed: ${acked.length} sends acknowledged, ${failures} failed, ` +
        `longest stall ${stall.toFixed(0)} ms; both nodes' readers saw every one once, in order`,
    );
    assertEquals(failures, 0);
    assert(stall < 15_000, `stall ${stall} ms`);
  } finally {
    await admin.close();
    await onA.close();
    await onB.close();
    await sender.close();
  }
});
