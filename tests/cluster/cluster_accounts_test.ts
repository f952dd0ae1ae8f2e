/**
 * Account and moderation changes reach every node: removing a user with `parley user remove
 * --cluster` closes their session on another node; a ban given on node A closes the banned user's
 * session on node B and refuses their next login there.
 */
import { assert, assertEquals } from "@std/assert";
import type { ParleyClient } from "../../client/client.ts";
import { RemoteError } from "../../protocol/errors.ts";
import { natsAvailable, startNatsServer } from "./nats_fixture.ts";
import { addClusterUser, clusterUser, connectNodes, startParleyNode } from "./cluster_helpers.ts";

const available = natsAvailable();

/** Resolves with the reason once `client` is closed (bounded). */
function closedWithin(client: ParleyClient, ms: number): Promise<Error | undefined> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`session still ${client.state} after ${ms} ms`)),
      ms,
    );
    const off = client.onState((s, why) => {
      if (s === "closed") {
        clearTimeout(timer);
        off();
        resolve(why);
      }
    });
  });
}

Deno.test({
  name: "cluster accounts: a removal or a ban on one node closes the user's session on another",
  ignore: !available,
}, async () => {
  await using nats = await startNatsServer();
  await using a = await startParleyNode(nats.urls, "a");
  await using b = await startParleyNode(nats.urls, "b");
  const mod = await addClusterUser(nats.urls, "mod", { admin: true });
  const ada = await addClusterUser(nats.urls, "ada");
  const bob = await addClusterUser(nats.urls, "bob");

  // Removal through the operator command: ada's session on node b closes.
  const adaOnB = await connectNodes([b], "ada", ada);
  try {
    const closed = closedWithin(adaOnB, 10_000);
    await clusterUser(nats.urls, "remove", "ada");
    const why = await closed;
    assertEquals(why instanceof RemoteError ? why.code : String(why), "auth_failed");
  } finally {
    await adaOnB.close();
  }

  // A ban given through node a: bob's session on node b closes, and node b refuses his login.
  const bobOnB = await connectNodes([b], "bob", bob);
  const modOnA = await connectNodes([a], "mod", mod);
  try {
    const closed = closedWithin(bobOnB, 10_000);
    await modOnA.call("chat.ban", { user: "bob", reason: "test" });
    const why = await closed;
    assertEquals(why instanceof RemoteError ? why.code : String(why), "forbidden");
    // A banned user's login is answered with a forbidden error frame right after the proof.
    const again = await connectNodes([b], "bob", bob).catch((e) => e as Error);
    if (again instanceof Error) {
      assertEquals(again instanceof RemoteError ? again.code : String(again), "forbidden");
    } else {
      try {
        // Either the forbidden frame closed it before connect returned, or it closes now.
        if (again.state !== "closed") {
          const refused = await closedWithin(again, 10_000);
          assertEquals(
            refused instanceof RemoteError ? refused.code : String(refused),
            "forbidden",
          );
        }
        const call = await again.call("diag.echo", {}).then(() => "served", (e) => e);
        assert(call !== "served", "a banned user's request was served");
      } finally {
        await again.close();
      }
    }
  } finally {
    await bobOnB.close();
    await modOnA.close();
  }
});
