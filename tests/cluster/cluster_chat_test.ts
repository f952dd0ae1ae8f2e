/**
 * Chat across cluster nodes, end to end: a 3-server NATS cluster, real `parley serve --cluster`
 * processes, real clients. One NATS cluster for the whole file (CLUSTER.md §7).
 */
import { assert, assertEquals } from "@std/assert";
import type { ChatMessage } from "../../protocol/chat_message.ts";
import { waitFor } from "../chat/chat_helpers.ts";
import { natsAvailable, startNatsCluster } from "./nats_fixture.ts";
import {
  addClusterUser,
  chatOnNodes,
  type NodeChat,
  type ParleyNode,
  startParleyNode,
} from "./cluster_helpers.ts";

const available = natsAvailable();

/** A chat client that records every message it is handed, in order. */
async function chatOn(
  nodes: ParleyNode[],
  user: string,
  key: string,
  reconnect = false,
): Promise<NodeChat & { msgs: ChatMessage[] }> {
  const on = await chatOnNodes(nodes, user, key, { reconnect, backoffMs: 20 });
  const msgs: ChatMessage[] = [...on.chat.recent()];
  on.chat.onEvent((e) => {
    if (e.kind === "msg") msgs.push(e.msg);
  });
  return { ...on, msgs };
}

Deno.test({
  name: "cluster chat: rooms, DMs and offline DMs across nodes; a killed node's client fails over",
  ignore: !available,
}, async (t) => {
  await using nats = await startNatsCluster();
  const urls = nats.urls;
  // Load steps send faster than the default per-user rate.
  const config = { chat: { ratePerSecond: 10_000, rateBurst: 10_000 } };
  await using a = await startParleyNode(urls, "a", [], config);
  await using b = await startParleyNode(urls, "b", [], config);
  const keys: Record<string, string> = {};
  for (const u of ["ada", "bob", "carol", "dave", "eve"]) keys[u] = await addClusterUser(urls, u);

  await t.step("a message sent through A appears live and in history on B, same id", async () => {
    const ada = await chatOn([a], "ada", keys.ada!);
    const bob = await chatOn([b], "bob", keys.bob!);
    try {
      await ada.chat.join("lobby");
      await bob.chat.join("lobby");
      const sent: string[] = [];
      for (let i = 0; i < 5; i++) {
        sent.push((await ada.chat.send({ room: "lobby" }, `from a ${i}`)).id);
        sent.push((await bob.chat.send({ room: "lobby" }, `from b ${i}`)).id);
      }
      const ids = (m: ChatMessage[]) => m.filter((x) => x.room === "lobby").map((x) => x.id);
      await waitFor(
        () => sent.every((id) => ids(ada.msgs).includes(id) && ids(bob.msgs).includes(id)),
        "both see all",
      );
      // Same ids, same order, on both nodes.
      assertEquals(
        ids(ada.msgs).filter((id) => sent.includes(id)),
        ids(bob.msgs).filter((id) => sent.includes(id)),
      );
      const numeric = sent.map(Number);
      assertEquals(numeric, [...numeric].sort((x, y) => x - y));
      const history = await bob.chat.history("lobby", 100);
      assertEquals(history.map((m) => m.id).filter((id) => sent.includes(id)), sent);
      assertEquals(history.find((m) => m.id === sent[0])?.text, "from a 0");
    } finally {
      await ada.close();
      await bob.close();
    }
  });

  await t.step("a DM to a user on another node arrives live; an offline DM once", async () => {
    const ada = await chatOn([a], "ada", keys.ada!);
    const bob = await chatOn([b], "bob", keys.bob!);
    try {
      const dm = await ada.chat.send({ to: "bob" }, "psst");
      await waitFor(() => bob.msgs.some((m) => m.id === dm.id), "bob gets the DM");
      assertEquals(bob.msgs.find((m) => m.id === dm.id)?.from, "ada");
      // carol is offline: the DM waits in the stream; she logs in on the other node.
      const off = await ada.chat.send({ to: "carol" }, "while you were out");
      const carol1 = await chatOn([b], "carol", keys.carol!);
      try {
        await waitFor(() => carol1.msgs.some((m) => m.id === off.id), "carol's inbox");
        assertEquals(carol1.msgs.filter((m) => m.id === off.id).length, 1);
      } finally {
        await carol1.close();
      }
      // Delivered once: a later login (on A this time) does not get it again.
      await new Promise((r) => setTimeout(r, 300));
      const carol2 = await chatOn([a], "carol", keys.carol!);
      try {
        await new Promise((r) => setTimeout(r, 300));
        assertEquals(carol2.msgs.filter((m) => m.id === off.id).length, 0);
      } finally {
        await carol2.close();
      }
    } finally {
      await ada.close();
      await bob.close();
    }
  });

  await t.step("SIGKILL of the reader's node under load: no gap, no duplicate", async () => {
    const eve = await chatOn([b], "eve", keys.eve!); // sender, on B
    const dave = await chatOn([a, b], "dave", keys.dave!, true); // reader, on A then B
    try {
      await eve.chat.join("load");
      await dave.chat.join("load");
      assertEquals(dave.client.server.port, a.port);
      const acked: string[] = [];
      let sending = true;
      const sender = (async () => {
        for (let i = 0; sending && i < 2_000; i++) {
          acked.push((await eve.chat.send({ room: "load" }, `n${i}`)).id);
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      sender.catch(() => {}); // awaited below; a failure is reported there
      await waitFor(() => acked.length >= 50, "traffic");
      const reopened = new Promise<number>((resolve) => {
        const off = dave.client.onState((s) => {
          if (s === "open") {
            off();
            resolve(performance.now());
          }
        });
      });
      const killedAt = performance.now();
      const idsAtKill = acked.length;
      await a.stop("SIGKILL");
      const openAt = await reopened;
      await waitFor(() => acked.length >= idsAtKill + 100, "more traffic");
      sending = false;
      await sender;
      const last = acked[acked.length - 1]!;
      await waitFor(() => dave.msgs.some((m) => m.id === last), "reader caught up", 15_000);
      const seen = dave.msgs.filter((m) => m.room === "load").map((m) => m.id);
      assertEquals(new Set(seen).size, seen.length, "duplicates");
      assertEquals(seen.map(Number), [...seen.map(Number)].sort((x, y) => x - y), "order");
      const first = acked[0]!;
      assertEquals(seen.filter((id) => Number(id) >= Number(first)), acked, "gap");
      assertEquals(dave.client.server.port, b.port);
      console.log(
        `failover: reader reconnected to node b ${(openAt - killedAt).toFixed(0)} ms after ` +
          `SIGKILL of node a; ${acked.length} messages, 0 lost, 0 duplicated`,
      );
      assert(openAt - killedAt < 5_000);
    } finally {
      await dave.close();
      await eve.close();
    }
  });
});
