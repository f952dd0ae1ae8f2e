/**
 * Room topics across cluster nodes, end to end: a 3-server NATS cluster, two
 * real `parley serve --cluster` processes, real clients. A topic set through
 * one node is told to the room's members on the other, shown when joining
 * there, and a clear through the other node names who cleared it.
 *
 * @module
 */
import { assertEquals } from "@std/assert";
import type { ChatEvent } from "../../client/chat/chat_types.ts";
import { record, waitFor } from "../chat/chat_helpers.ts";
import { natsAvailable, startNatsCluster } from "./nats_fixture.ts";
import { addClusterUser, chatOnNodes, startParleyNode } from "./cluster_helpers.ts";

type _Topic = Extract<ChatEvent, { kind: "topic" }>;
const _topics = (events: ChatEvent[]) =>
  events.filter((e): e is _Topic => e.kind === "topic").map((e) => [e.room, e.text, e.by]);

Deno.test({
  name: "cluster chat: a topic set on one node reaches the room on the other, and shows on join",
  ignore: !natsAvailable(),
}, async () => {
  await using nats = await startNatsCluster();
  const urls = nats.urls;
  await using a = await startParleyNode(urls, "a", []);
  await using b = await startParleyNode(urls, "b", []);
  const keys: Record<string, string> = {};
  for (const u of ["ada", "bob", "cy"]) keys[u] = await addClusterUser(urls, u);
  const ada = await chatOnNodes([a], "ada", keys.ada!);
  const bob = await chatOnNodes([b], "bob", keys.bob!);
  const cy = await chatOnNodes([b], "cy", keys.cy!);
  try {
    await ada.chat.join("dev");
    await bob.chat.join("dev");
    const bobSaw = record(bob.chat);
    const adaSaw = record(ada.chat);
    await ada.chat.setTopic("dev", "ship it");
    await waitFor(() => _topics(bobSaw.events).length > 0, "bob on node b to hear of the topic");
    assertEquals(_topics(bobSaw.events), [["dev", "ship it", "ada"]]);
    // cy, on node b, reads it and sees it when joining
    assertEquals((await cy.chat.topic("dev"))?.text, "ship it");
    assertEquals((await cy.chat.join("dev")).topic?.by, "ada");
    // a clear through node b reaches ada on node a, naming bob
    await bob.chat.setTopic("dev", "");
    await waitFor(() => _topics(adaSaw.events).length >= 2, "ada on node a to hear of the clear");
    assertEquals(_topics(adaSaw.events), [["dev", "ship it", "ada"], ["dev", "", "bob"]]);
    assertEquals(await ada.chat.topic("dev"), undefined);
  } finally {
    for (const c of [ada, bob, cy]) await c.close();
  }
});
