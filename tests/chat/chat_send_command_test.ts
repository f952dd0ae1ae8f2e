import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import { ChatClient } from "../../client/chat/chat_client.ts";
import { ROOT, startTestServer } from "../helpers.ts";
import { record, waitFor } from "./chat_helpers.ts";

async function send(port: number, key: string, ...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-read",
      "--allow-env",
      join(ROOT, "main.ts"),
      "send",
      ...args,
    ],
    env: {
      PARLEY_SERVER: `parley+plain://127.0.0.1:${port}`,
      PARLEY_USER: "ada",
      PARLEY_KEY: key,
      XDG_CONFIG_HOME: "/nonexistent",
      NO_COLOR: "1",
    },
    stdin: "null",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("parley send posts to a room or a user and exits 0 on delivery", async () => {
  await using t = await startTestServer();
  const key = await t.addUser("ada");
  const bob = await ChatClient.start(await t.connect("bob"));
  const got = record(bob);
  await bob.join("lobby");
  assertEquals((await send(t.port, key, "#lobby", "build", "finished")).code, 0);
  assertEquals((await send(t.port, key, "@bob", "psst")).code, 0);
  await waitFor(() => got.msgs.length === 2, "both messages");
  assertEquals(got.msgs.map((m) => [m.room ?? `@${m.to}`, m.text]), [
    ["lobby", "build finished"],
    ["@bob", "psst"],
  ]);
  bob.close();
});

Deno.test("parley send exits non-zero with a clear message when it cannot deliver", async () => {
  await using t = await startTestServer();
  const key = await t.addUser("ada");
  const unknown = await send(t.port, key, "@nobody", "hi");
  assertEquals(unknown.code, 4); // not found (docs/cli.md "Exit codes")
  assert(unknown.stderr.includes("no user named nobody"), unknown.stderr);
  const usage = await send(t.port, key, "lobby");
  assertEquals(usage.code, 2);
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = (l.addr as Deno.NetAddr).port;
  l.close();
  const refused = await send(closedPort, key, "lobby", "hi");
  assertEquals(refused.code, 3);
  assert(refused.stderr.includes(`nothing listens on 127.0.0.1:${closedPort}`), refused.stderr);
});
