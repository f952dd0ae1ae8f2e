/**
 * Room topics through a real server process and real sockets: a member sets
 * one, anyone reads it, the other members get a `chat.topic` event, a join
 * shows it, `chat.rooms` lists it, it survives a restart, and bad requests
 * are refused with the documented codes.
 *
 * @module
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { ChatClient } from "../../client/chat/chat_client.ts";
import type { ChatEvent } from "../../client/chat/chat_types.ts";
import { RemoteError } from "../../protocol/errors.ts";
import { type ChatRoomsReply, TOPIC_MAX_CHARS } from "../../protocol/ops/chat.ts";
import { spawnServer } from "../helpers.ts";
import { record, waitFor } from "./chat_helpers.ts";

type _Topic = Extract<ChatEvent, { kind: "topic" }>;

function _topics(events: ChatEvent[]): _Topic[] {
  return events.filter((e): e is _Topic => e.kind === "topic");
}

Deno.test("a room topic: set by a member, read by anyone, told to the room, shown on join and in chat.rooms, kept across a restart", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "parley-topic-" });
  try {
    {
      await using s = await spawnServer({ dataDir });
      const ada = await ChatClient.start(await s.connect("ada"));
      const bob = await ChatClient.start(await s.connect("bob"));
      const eve = await ChatClient.start(await s.connect("eve"));
      try {
        await ada.join("dev");
        await bob.join("dev");
        const adaSaw = record(ada);
        const bobSaw = record(bob);
        const eveSaw = record(eve);
        assertEquals(await eve.topic("dev"), undefined, "a new room has a topic");
        const set = await ada.setTopic("dev", "  release on Friday  ");
        assertEquals([set?.text, set?.by], ["release on Friday", "ada"], "the text is trimmed");
        await waitFor(() => _topics(bobSaw.events).length > 0, "bob to hear of the topic");
        await waitFor(() => _topics(adaSaw.events).length > 0, "ada to hear of her own topic");
        assertEquals(_topics(bobSaw.events)[0], {
          kind: "topic",
          room: "dev",
          text: "release on Friday",
          by: "ada",
          ts: set!.ts,
        });
        // anyone reads it, in the room or not; only members hear of changes
        assertEquals(await eve.topic("dev"), set);
        assertEquals(await eve.topic("DEV"), set, "room names are folded to lower case");
        assertEquals(_topics(eveSaw.events), [], "a non-member heard of the topic");
        const joined = await eve.join("dev");
        assertEquals(joined.topic, set, "the join reply lacks the topic");
        const rooms = await eve.client.call("chat.rooms", {}) as ChatRoomsReply;
        assertEquals(rooms.rooms.find((r) => r.room === "dev")?.topic, "release on Friday");
        // a member clears it; everyone in the room hears who did
        assertEquals(await bob.setTopic("dev", ""), undefined);
        await waitFor(() => _topics(eveSaw.events).length > 0, "eve to hear of the clear");
        assertEquals(
          [_topics(eveSaw.events)[0]?.text, _topics(eveSaw.events)[0]?.by],
          ["", "bob"],
        );
        assertEquals(await ada.topic("dev"), undefined);
        await bob.setTopic("dev", "kept across a restart ✓");
      } finally {
        for (const c of [ada, bob, eve]) {
          c.close();
          await c.client.close();
        }
      }
      await s.stop("SIGTERM");
    }
    await using s = await spawnServer({ dataDir });
    const cy = await ChatClient.start(await s.connect("cy"));
    try {
      const t = await cy.topic("dev");
      assertEquals([t?.text, t?.by], ["kept across a restart ✓", "bob"], "the topic was lost");
      assertEquals((await cy.join("dev")).topic?.text, "kept across a restart ✓");
    } finally {
      cy.close();
      await cy.client.close();
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a room topic: refusals — unknown room, not a member, muted, too long, control characters", async () => {
  await using s = await spawnServer();
  const root = await s.connect("root", { admin: true });
  const ada = await ChatClient.start(await s.connect("ada"));
  const bob = await ChatClient.start(await s.connect("bob"));
  const code = async (p: Promise<unknown>) => (await assertRejects(() => p, RemoteError)).code;
  try {
    await ada.join("dev");
    assertEquals(await code(bob.topic("nowhere")), "not_found");
    assertEquals(await code(bob.setTopic("nowhere", "x")), "not_found");
    // bob is not in #dev: he may read, not set
    const e = await assertRejects(() => bob.setTopic("dev", "mine now"), RemoteError);
    assertEquals(e.code, "forbidden");
    assert(e.message.includes("/join dev"), e.message);
    // an admin may set the topic of a room they are not in
    const byAdmin = await root.call("chat.topic", { room: "dev", text: "admin was here" }) as {
      topic?: { by: string };
    };
    assertEquals(byAdmin.topic?.by, "root");
    assertEquals(await code(ada.setTopic("dev", "x".repeat(TOPIC_MAX_CHARS + 1))), "too_large");
    // the limit counts code points, not UTF-16 units or bytes
    const emoji = "🙂".repeat(TOPIC_MAX_CHARS);
    assertEquals((await ada.setTopic("dev", emoji))?.text, emoji);
    for (const bad of ["two\nlines", "tab\there", "bell\x07", "c1\u0085"]) {
      assertEquals(await code(ada.setTopic("dev", bad)), "bad_request", JSON.stringify(bad));
    }
    assertEquals(
      await code(ada.client.call("chat.topic", { room: "dev", text: 5 })),
      "bad_request",
    );
    assertEquals(await code(ada.client.call("chat.topic", { room: "Bad Room" })), "bad_request");
    await root.call("chat.mute", { user: "ada", minutes: 5 });
    assertEquals(await code(ada.setTopic("dev", "muted")), "forbidden");
    assertEquals((await ada.topic("dev"))?.text, emoji, "a refused topic changed the topic");
  } finally {
    for (const c of [ada, bob]) {
      c.close();
      await c.client.close();
    }
    await root.close();
  }
});
