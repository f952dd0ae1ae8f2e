/**
 * A chat flood: one account sends hundreds of messages as fast as it can,
 * plus oversized ones. Flood control must refuse most of them with
 * `rate_limited` (the flooder's connection stays open), other users' messages
 * must still arrive, history must only grow, and the server's memory must
 * return near its baseline.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { RemoteError } from "../../protocol/errors.ts";
import { startTarget } from "./harness.ts";

const FLOOD = 300;

Deno.test("a chat flood is rate limited while other users keep chatting", async () => {
  await using target = await startTarget({
    users: ["observer", "ada", "mallory"],
    config: { chat: { ratePerSecond: 5, rateBurst: 10, maxTextBytes: 4096 } },
  });
  const ada = await target.client("ada");
  const seen: string[] = [];
  ada.on("chat.msg", (m) => seen.push(String((m as { text?: unknown }).text)));
  await ada.call("chat.join", { room: "lobby" });
  const mallory = await target.client("mallory");
  await mallory.call("chat.join", { room: "lobby" });
  await target.baseline();

  const results = await Promise.allSettled(
    Array.from(
      { length: FLOOD },
      (_, i) => mallory.call("chat.send", { room: "lobby", text: `flood ${i}` }),
    ),
  );
  const accepted = results.filter((r) => r.status === "fulfilled").length;
  const codes = new Set(
    results.flatMap((r) => r.status === "rejected" ? [(r.reason as RemoteError).code] : []),
  );
  assert(accepted < FLOOD / 2, `flood control let ${accepted} of ${FLOOD} messages through`);
  assertEquals([...codes], ["rate_limited"]);

  // Oversized messages are refused with a clear error, not stored.
  const big = await mallory.call("chat.send", { room: "lobby", text: "x".repeat(50_000) }).then(
    () => undefined,
    (e) => e as RemoteError,
  );
  assert(big instanceof RemoteError, "a 50 000-byte message should be refused");

  // The flooder's connection is still usable, and so is everyone else's.
  assertEquals(await mallory.call("diag.echo", { still: "open" }), { still: "open" });
  const observer = await target.client("observer");
  await observer.call("chat.join", { room: "lobby" });
  await observer.call("chat.send", { room: "lobby", text: "hello after the flood" });
  for (let i = 0; i < 200 && !seen.includes("hello after the flood"); i++) {
    await new Promise((r) => setTimeout(r, 25));
  }
  assert(seen.includes("hello after the flood"), "a normal message was not delivered");
  const floodSeen = seen.filter((t) => t.startsWith("flood ")).length;
  assert(floodSeen <= accepted, `${floodSeen} flood messages delivered, ${accepted} accepted`);
  await target.check("chat flood", { grows: ["chat/"] });
});
