/**
 * NATS gone under a running node: sessions stay open, requests that need NATS fail with
 * `unavailable`, and the node carries on once NATS is back (it reconnects for ever).
 */
import { assert, assertEquals } from "@std/assert";
import { RemoteError } from "../../protocol/errors.ts";
import { natsAvailable, startNatsServer } from "./nats_fixture.ts";
import { addClusterUser, connectNodes, startParleyNode } from "./cluster_helpers.ts";

const available = natsAvailable();

Deno.test({
  name: "NATS outage: the session stays open, sends fail with unavailable, then work again",
  ignore: !available,
}, async () => {
  await using nats = await startNatsServer();
  await using node = await startParleyNode(nats.urls, "a");
  const key = await addClusterUser(nats.urls, "ada");
  const client = await connectNodes([node], "ada", key);
  try {
    await client.call("chat.join", { room: "lobby" });
    await client.call("chat.send", { room: "lobby", text: "before" });
    await nats.servers[0]!.kill("SIGKILL");
    const t0 = performance.now();
    const err = await client.call("chat.send", { room: "lobby", text: "during" }).then(
      () => undefined,
      (e) => e,
    );
    const failedAfter = performance.now() - t0;
    assert(err instanceof RemoteError, String(err));
    assertEquals(err.code, "unavailable", err.message);
    assertEquals(client.state, "open");
    await nats.servers[0]!.restart();
    const t1 = performance.now();
    let sent: { id: string } | undefined;
    for (let i = 0; i < 100 && !sent; i++) {
      sent = await client.call("chat.send", { room: "lobby", text: "after" }).then(
        (r) => r as { id: string },
        async () => {
          await new Promise((r) => setTimeout(r, 200));
          return undefined;
        },
      );
    }
    assert(sent, "no send succeeded after NATS came back");
    console.log(
      `NATS outage: send failed with unavailable after ${failedAfter.toFixed(0)} ms; ` +
        `sends work again ${(performance.now() - t1).toFixed(0)} ms after NATS restarted`,
    );
  } finally {
    await client.close();
  }
});
