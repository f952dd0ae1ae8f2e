/**
 * Room topics across two cluster nodes (`server/nats/chat_policy.ts`): a
 * topic set or cleared on one node reaches the other node's subscribers,
 * with who set or cleared it, and its reads. Skipped when nats-server is
 * missing.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import type { PolicyChange } from "../../server/backend/chat.ts";
import { Logger } from "../../server/log.ts";
import { openNatsChat } from "../../server/nats/chat.ts";
import { CHAT_BUCKET } from "../../server/nats/chat_policy.ts";
import { natsAvailable, startNatsServer } from "../cluster/nats_fixture.ts";

const _QUIET = new Logger({ level: "error", sink: () => {} });

async function _eventually(ok: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !ok(); i++) await new Promise((r) => setTimeout(r, 20));
  assert(ok(), `timed out waiting for ${what}`);
}

Deno.test({
  name:
    "nats chat policy: a topic set or cleared on one node is told to the other, with who did it",
  ignore: !natsAvailable(),
}, async () => {
  await using server = await startNatsServer();
  const ncA = await connect({ servers: server.urls });
  const ncB = await connect({ servers: server.urls });
  try {
    await using a = await openNatsChat(ncA, { node: "n1", log: _QUIET });
    await using b = await openNatsChat(ncB, { node: "n2", log: _QUIET });
    const told: PolicyChange[] = [];
    const stop = b.policy.subscribe((c) => told.push(c));
    try {
      const topic = { text: "deploys at noon", by: "ada", ts: 1_000 };
      await a.policy.setTopic("ops", topic);
      await _eventually(() => told.length >= 1, "the other node to hear of the topic");
      assertEquals(told[0], { kind: "topic", room: "ops", topic });
      assertEquals(b.policy.topic("ops"), topic);
      assertEquals(b.policy.topicRooms(), ["ops"]);
      await a.policy.setTopic("ops", { text: "", by: "bob", ts: 2_000 });
      await _eventually(() => told.length >= 2, "the other node to hear of the clear");
      assertEquals(told[1], {
        kind: "topic",
        room: "ops",
        topic: { text: "", by: "bob", ts: 2_000 },
      });
      assertEquals([b.policy.topic("ops"), a.policy.topicRooms(), b.policy.topicRooms()], [
        undefined,
        [],
        [],
      ]);
      // the clearing record is not kept: the key is deleted, and the delete is not told again
      const kv = await new Kvm(ncA).open(CHAT_BUCKET);
      const entry = await kv.get("topic.ops");
      assert(entry === null || entry.operation !== "PUT", "the cleared topic's record is kept");
      await a.policy.setTopic("ops", { text: "back", by: "ada", ts: 3_000 });
      await _eventually(() => told.length >= 3, "the other node to hear of the next topic");
      assertEquals(told.map((c) => c.kind === "topic" && c.topic.text), [
        "deploys at noon",
        "",
        "back",
      ]);
    } finally {
      stop();
    }
  } finally {
    await ncA.close();
    await ncB.close();
  }
});
