/**
 * Presence across nodes with a short TTL: a node killed with SIGKILL takes its users out of `who`
 * on the other node within the TTL and a sweep; a user whose client fails over to the other node
 * within the grace is never seen leaving.
 */
import { assert } from "@std/assert";
import type { ChatClient } from "../../client/chat/chat_client.ts";
import type { ChatEvent } from "../../client/chat/chat_types.ts";
import { natsAvailable, startNatsServer } from "./nats_fixture.ts";
import {
  addClusterUser,
  chatOnNodes,
  type ParleyNode,
  startParleyNode,
} from "./cluster_helpers.ts";

const available = natsAvailable();
const TTL_MS = 3000;

async function chatOn(nodes: ParleyNode[], user: string, key: string, reconnect = false) {
  const on = await chatOnNodes(nodes, user, key, { reconnect, backoffMs: 20 });
  const events: ChatEvent[] = [];
  on.chat.onEvent((e) => events.push(e));
  await on.chat.join("lobby");
  return { ...on, events };
}

async function whoIn(chat: ChatClient): Promise<string[]> {
  return (await chat.who("lobby")).map((u) => u.name).sort();
}

Deno.test({
  name:
    "cluster presence: a killed node's users leave who within the TTL; a failover does not flap",
  ignore: !available,
}, async () => {
  await using nats = await startNatsServer();
  const config = { cluster: { presenceTtlMs: TTL_MS } };
  await using a = await startParleyNode(nats.urls, "a", [], config);
  await using b = await startParleyNode(nats.urls, "b", [], config);
  const keys: Record<string, string> = {};
  for (const u of ["ada", "bob", "dave"]) keys[u] = await addClusterUser(nats.urls, u);
  const ada = await chatOn([a], "ada", keys.ada!); // only on a: goes with it
  const dave = await chatOn([a, b], "dave", keys.dave!, true); // fails over to b
  const bob = await chatOn([b], "bob", keys.bob!); // watches from b
  try {
    let who: string[] = [];
    for (let i = 0; i < 100 && !(who.includes("ada") && who.includes("dave")); i++) {
      who = await whoIn(bob.chat);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert(who.includes("ada") && who.includes("dave"), `who on b: ${who}`);
    bob.events.length = 0;
    const killedAt = performance.now();
    await a.stop("SIGKILL");
    let goneAfter = -1;
    for (let i = 0; i < 200 && goneAfter < 0; i++) {
      who = await whoIn(bob.chat);
      if (!who.includes("ada")) goneAfter = performance.now() - killedAt;
      else await new Promise((r) => setTimeout(r, 50));
    }
    assert(goneAfter >= 0, `ada still in who on b: ${who}`);
    assert(goneAfter < TTL_MS * 2 + 2000, `ada left who after ${goneAfter} ms`);
    assert(who.includes("dave"), `dave missing from who after failover: ${who}`);
    // No "left" for dave (joins and leaves are the cluster's: cluster_chat_idempotency_test.ts
    // also checks that no "joined" is announced when his client rejoins on node b).
    const left = bob.events.filter((e) => e.kind === "left" && e.user === "dave");
    assert(left.length === 0, `dave was shown leaving: ${JSON.stringify(left)}`);
    const rejoined = bob.events.filter((e) => e.kind === "joined" && e.user === "dave").length;
    console.log(
      `presence: a killed node's user left who on the other node ${goneAfter.toFixed(0)} ms ` +
        `after SIGKILL (TTL ${TTL_MS} ms); the user who failed over: no left, ${rejoined} joined`,
    );
  } finally {
    await bob.close();
    await dave.close();
    await ada.close();
  }
});
