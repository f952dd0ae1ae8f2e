/**
 * `/topic` in the REPL, two users in real pseudo-terminals against a real
 * server: one sets the room's topic, the other is told in one line and
 * reads it with `/topic`; `/join` shows a room's topic, `/list` lists it,
 * `/topic -delete` clears it, and Tab completes `/top` to `/topic `.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { stripAnsiCode } from "@std/fmt/colors";
import { startTestServer } from "../helpers.ts";
import { KEYS, spawnRepl } from "./pty.ts";

Deno.test("REPL: /topic set by one user is seen by another, shown on /join and in /list", async () => {
  await using t = await startTestServer();
  const adaKey = await t.addUser("ada");
  const bobKey = await t.addUser("bob");
  await using ada = await spawnRepl({ port: t.port, user: "ada", key: adaKey });
  await using bob = await spawnRepl({ port: t.port, user: "bob", key: bobKey });
  await ada.waitFor("[#lobby]", { ms: 30_000 });
  await bob.waitFor("[#lobby]", { ms: 30_000 });

  let a = ada.mark();
  await ada.write(`/topic${KEYS.enter}`);
  await ada.waitFor("#lobby has no topic; /topic TEXT sets one", { since: a });

  a = ada.mark();
  let b = bob.mark();
  await ada.write(`/topic standup at 10, don't be late${KEYS.enter}`);
  const told = "ada set the topic of #lobby: standup at 10, don't be late";
  await bob.waitFor(told, { since: b });
  await ada.waitFor(told, { since: a });
  // the setter sees the change once, from the server
  await ada.write(`/time${KEYS.enter}`);
  await ada.waitFor("server time", { since: a });
  assertEquals(stripAnsiCode(ada.since(a)).split("set the topic of").length - 1, 1);

  b = bob.mark();
  await bob.write(`/topic${KEYS.enter}`);
  await bob.waitFor(/topic of #lobby: standup at 10, don't be late \(set by ada, [\d-]+ [\d:]+\)/, {
    since: b,
  });

  // another room's topic shows on /join and in /list
  a = ada.mark();
  await ada.write(`/join dev${KEYS.enter}`);
  await ada.waitFor("you are in #dev", { since: a });
  await ada.write(`/topic release train leaves Friday${KEYS.enter}`);
  await ada.waitFor("ada set the topic of #dev: release train leaves Friday", { since: a });
  b = bob.mark();
  await bob.write(`/list${KEYS.enter}`);
  await bob.waitFor("#dev (1 here): release train leaves Friday", { since: b });
  await bob.write(`/join dev${KEYS.enter}`);
  await bob.waitFor("topic of #dev: release train leaves Friday (set by ada", { since: b });

  // bob clears it; ada is told who did
  a = ada.mark();
  await bob.write(`/topic -delete${KEYS.enter}`);
  await ada.waitFor("bob cleared the topic of #dev", { since: a });

  // Tab completes the command name, with a space after it
  b = bob.mark();
  await bob.write("/top\t");
  await bob.waitFor("/topic ", { since: b });
  await bob.write(`${KEYS.enter}`);
  await bob.waitFor("#dev has no topic", { since: b });

  for (const p of [ada, bob]) {
    await p.write(`/quit${KEYS.enter}`);
    const status = await p.close();
    assert(status.code === 0, `exit ${status.code}`);
  }
});
