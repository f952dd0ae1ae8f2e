/**
 * A user rotates their own key (`account.rotate`, the REPL's `/rotate`):
 * only over TLS, the new key is returned once, the old one stops working,
 * the user's other sessions close and the rotating one goes on.
 *
 * @module
 */
import { assertEquals, assertMatch, assertRejects } from "@std/assert";
import { ParleyClient } from "../../client/client.ts";
import { ACCOUNT_REPL_COMMANDS } from "../../client/account_repl.ts";
import type { ReplContext } from "../../client/repl_command.ts";
import type { RemoteError } from "../../protocol/errors.ts";
import { keyBytes, startTestServer } from "../helpers.ts";
import { waitFor } from "../chat/chat_helpers.ts";

Deno.test("/rotate over TLS: a new key once, the old one refused, other sessions closed", async () => {
  await using t = await startTestServer({ plain: false });
  const oldKey = await t.addUser("ada");
  const options = {
    host: "127.0.0.1",
    port: t.port,
    user: "ada",
    key: keyBytes(oldKey),
    ...t.clientOptions,
    keySource: "env" as const,
  };
  await using me = await ParleyClient.connect({ ...options, reconnect: true, backoffMs: 50 });
  await using other = await ParleyClient.connect(options);
  const printed: string[] = [];
  const ctx = { client: me, print: (l: string) => printed.push(l) } as unknown as ReplContext;
  const rotate = ACCOUNT_REPL_COMMANDS.find((c) => c.name === "rotate")!;
  await rotate.run(ctx, [], "");
  const newKey = /new key \(shown once, keep it secret\): ([0-9a-f]{64})/.exec(printed.join("\n"))
    ?.[1];
  if (!newKey || newKey === oldKey) throw new Error(`no new key: ${printed.join("\n")}`);
  assertMatch(printed.join("\n"), /update PARLEY_KEY/);
  // The other session of the same user is closed; this one goes on.
  const why = await other.session.closed;
  assertEquals((why as RemoteError).code, "auth_failed");
  assertEquals(await me.call("diag.echo", { still: "here" }), { still: "here" });
  // The old key no longer logs in; the new one does (and the client reconnects with it).
  const refused = await assertRejects(() => ParleyClient.connect(options));
  assertEquals((refused as RemoteError).code, "auth_failed");
  await using fresh = await ParleyClient.connect({ ...options, key: keyBytes(newKey) });
  assertEquals(await fresh.call("diag.echo", { fresh: 1 }), { fresh: 1 });
  me.session.close().catch(() => {});
  await waitFor(() => me.state === "open" && me.session.state === "open", "reconnected");
  assertEquals(await me.call("diag.echo", { after: "reconnect" }), { after: "reconnect" });
});

Deno.test("a new key is never sent over plaintext", async () => {
  await using t = await startTestServer({ plain: true });
  const c = await t.connect("ada");
  const e = await assertRejects(() => c.call("account.rotate", {}));
  assertEquals((e as RemoteError).code, "forbidden");
  assertEquals(await c.call("diag.echo", { ok: 1 }), { ok: 1 });
});
