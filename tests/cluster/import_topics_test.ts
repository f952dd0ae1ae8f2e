/**
 * Importing a data dir into a cluster (`server/nats/import_chat.ts`) copies
 * room topics: a topic of the data dir reaches the cluster's `parley_chat`
 * bucket, and one the cluster already holds stays as it is. Skipped when
 * nats-server is missing.
 *
 * @module
 */
import { assertEquals } from "@std/assert";
import { connect } from "@nats-io/transport-node";
import { openEmbeddedChat } from "../../server/embedded/chat.ts";
import { Logger } from "../../server/log.ts";
import { openNatsChat } from "../../server/nats/chat.ts";
import { copyPolicy } from "../../server/nats/import_chat.ts";
import { natsAvailable, startNatsServer } from "./nats_fixture.ts";

const _QUIET = new Logger({ level: "error", sink: () => {} });

Deno.test({
  name: "cluster import: room topics are copied, and a topic the cluster holds is kept",
  ignore: !natsAvailable(),
}, async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "parley-import-topic-" });
  await using server = await startNatsServer();
  const nc = await connect({ servers: server.urls });
  try {
    await using src = await openEmbeddedChat({ dataDir, features: { chat: {} } }, _QUIET);
    await using dst = await openNatsChat(nc, { node: "n1", log: _QUIET });
    await src.policy.setTopic("dev", { text: "from the data dir", by: "ada", ts: 1 });
    await src.policy.setTopic("ops", { text: "old ops topic", by: "ada", ts: 2 });
    await dst.policy.setTopic("ops", { text: "the cluster's ops topic", by: "bob", ts: 3 });
    const r = await copyPolicy(src, dst, [], { oldIds: [], start: 0 });
    assertEquals(r.topics, 2);
    assertEquals(dst.policy.topic("dev"), { text: "from the data dir", by: "ada", ts: 1 });
    assertEquals(dst.policy.topic("ops")?.text, "the cluster's ops topic");
  } finally {
    await nc.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});
