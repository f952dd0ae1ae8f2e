import { assertEquals } from "@std/assert";
import { ChatClient } from "../../client/chat/chat_client.ts";
import { startTestServer } from "../helpers.ts";
import { record, waitFor } from "./chat_helpers.ts";

Deno.test("an ignored user's direct messages stay hidden across a reconnect and a new login", async () => {
  await using t = await startTestServer();
  const ada = await ChatClient.start(
    await t.connect("ada", { reconnect: true, backoffMs: 200, maxBackoffMs: 200 }),
  );
  const bob = await ChatClient.start(await t.connect("bob"));
  const carol = await ChatClient.start(await t.connect("carol"));
  const got = record(ada);
  await ada.client.call("chat.ignore", { user: "bob" });
  await bob.send({ to: "ada" }, "bob before the drop");
  await carol.send({ to: "ada" }, "carol before the drop");
  await waitFor(() => got.msgs.length === 1, "carol's first DM");

  for (const ctx of t.server.byUser("ada")) await ctx.session.close();
  await waitFor(() => t.server.byUser("ada").length === 0, "ada's logout");
  await bob.send({ to: "ada" }, "bob while away");
  await carol.send({ to: "ada" }, "carol while away");
  await waitFor(
    () => got.events.some((e) => e.kind === "connection" && e.state === "restored"),
    "the reconnect",
  );
  await bob.send({ to: "ada" }, "bob after");
  await carol.send({ to: "ada" }, "carol after");
  await waitFor(() => got.msgs.length === 3, "carol's three DMs");
  await ada.client.call("chat.ignore", {}); // a round trip: anything from bob would be here
  assertEquals(got.msgs.map((m) => m.text), [
    "carol before the drop",
    "carol while away",
    "carol after",
  ]);

  // a new login: the inbox and the DM history leave bob out too
  await bob.send({ to: "ada" }, "bob to the next login");
  const later = await t.connect("ada");
  const fresh = await ChatClient.start(later);
  const history = await later.call("chat.history", { dm: true, limit: 100 }) as {
    messages: { from: string }[];
  };
  assertEquals(history.messages.filter((m) => m.from === "bob"), []);
  assertEquals(fresh.recent().filter((m) => m.from === "bob"), []);
  fresh.close();
  await later.close();
  ada.close();
  bob.close();
  carol.close();
  await ada.client.close();
  await bob.client.close();
  await carol.client.close();
});
