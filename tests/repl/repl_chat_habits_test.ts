/**
 * Chat habits of the REPL, driven in real terminals (`script`, and tmux
 * where what the screen shows matters) against a real server: a pasted
 * block arrives whole and in order under the server's rate, a line over the
 * size limit arrives split, your own line is shown once, `/query` and `/r`,
 * completion of quoted file names and of commands for a non-admin, `/help`
 * at 40 columns.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import { stripAnsiCode } from "@std/fmt/colors";
import { ChatClient } from "../../client/chat/chat_client.ts";
import { FILE_STAT, type FileStatReply } from "../../protocol/ops/files.ts";
import { startTestServer } from "../helpers.ts";
import { record, waitFor } from "../chat/chat_helpers.ts";
import { KEYS, spawnRepl } from "./pty.ts";
import { tmuxRepl } from "./tmux.ts";

Deno.test("REPL: a pasted 15-line block arrives whole and in order; a 5000-byte line arrives split", async () => {
  await using t = await startTestServer();
  const key = await t.addUser("ada");
  const bob = await ChatClient.start(await t.connect("bob"));
  const got = record(bob);
  await bob.join("lobby");
  await using p = await spawnRepl({ port: t.port, user: "ada", key });
  await p.waitFor("[#lobby]", { ms: 30_000 });
  await waitFor(() => got.events.some((e) => e.kind === "joined"), "ada joining");

  // the server takes 10 at once and 5 a second: a paste of 15 is paced, not refused
  const lines = Array.from({ length: 15 }, (_, i) => `trace line ${i + 1} at frame ${i * 7}`);
  const mark = p.mark();
  await p.write(lines.join("\r") + "\r");
  await waitFor(() => got.msgs.length >= 15, "15 lines at bob", 30_000);
  assertEquals(got.msgs.map((m) => m.text), lines);
  const shown: string = stripAnsiCode(p.since(mark));
  assert(!/slow down|not sent/.test(shown), `nothing refused: ${shown}`);
  await p.waitFor(/\d+ messages wait: sending in order, at most 5 a second/, { since: mark });
  const said: string = stripAnsiCode(p.since(mark));
  assertEquals(said.split("sending in order").length - 1, 1, "said once");

  // 5000 bytes in two-byte characters: several messages that together are the line
  const long = "é".repeat(1200) + " " + "ü".repeat(1299) + "!";
  assertEquals(new TextEncoder().encode(long).byteLength, 5000);
  got.msgs.length = 0;
  const mark2 = p.mark();
  await p.write(long + "\r");
  await waitFor(
    () => got.msgs.map((m) => m.text).join("").length >= long.length,
    "the long line at bob",
    30_000,
  );
  assert(got.msgs.length >= 2, "sent as several messages");
  assertEquals(got.msgs.map((m) => m.text).join(""), long);
  for (const m of got.msgs) assert(new TextEncoder().encode(m.text).byteLength <= 4096);
  await p.waitFor(/a long line was sent as \d messages/, { since: mark2 });
  await p.write(`/quit${KEYS.enter}`);
  assertEquals((await p.close()).code, 0);
  await bob.client.close();
});

Deno.test("REPL: your own line is shown once, as the server's message; /clear clears the screen", async () => {
  await using t = await startTestServer();
  const key = await t.addUser("ada");
  await using r = await tmuxRepl({ port: t.port, user: "ada", key });
  await r.waitScreen((s) => s.some((l) => l.includes("[#lobby]")), "the prompt");
  await r.type("hello only once");
  await r.key("Enter");
  const screen = await r.waitScreen(
    (s) => s.some((l) => l.includes("<ada> hello only once")),
    "the server's copy",
  );
  assertEquals(
    screen.filter((l) => l.includes("hello only once")).length,
    1,
    screen.join("\n"),
  );
  // /clear leaves only the prompt
  await r.type("/clear");
  await r.key("Enter");
  const cleared = await r.waitScreen(
    (s) => !s.some((l) => l.includes("hello only once")) && s.some((l) => l.includes("[#lobby]")),
    "a cleared screen with the prompt redrawn",
  );
  assertEquals(cleared.filter((l) => l !== ""), ["[#lobby]"]);
});

Deno.test("REPL: /query sends plain lines as direct messages, /r answers the last one", async () => {
  await using t = await startTestServer();
  const key = await t.addUser("ada");
  const bob = await ChatClient.start(await t.connect("bob"));
  const got = record(bob);
  await bob.join("lobby");
  await using p = await spawnRepl({ port: t.port, user: "ada", key });
  await p.waitFor("[#lobby]", { ms: 30_000 });

  let mark = p.mark();
  await p.write(`/query bob${KEYS.enter}`);
  await p.waitFor("[@bob]", { since: mark });
  await p.write(`just between us${KEYS.enter}`);
  await waitFor(() => got.msgs.some((m) => m.text === "just between us"), "the DM at bob");
  const dm = got.msgs.find((m) => m.text === "just between us")!;
  assertEquals([dm.to, dm.room], ["bob", undefined]);
  // a room command without a room says where lines go and how to get back
  await p.write(`/history${KEYS.enter}`);
  await p.waitFor("your lines go to bob (/query); name a room, or /query alone", { since: mark });
  await p.write(`/query${KEYS.enter}`);
  mark = p.mark();
  await p.waitFor("your lines go to #lobby again");

  // /r goes to whoever wrote last
  await bob.send({ to: "ada" }, "are you there?");
  await p.waitFor("are you there?", { since: mark });
  await p.write(`/r yes, I'm here${KEYS.enter}`);
  await waitFor(() => got.msgs.some((m) => m.text === "yes, I'm here"), "the reply at bob");
  assertEquals(got.msgs.find((m) => m.text === "yes, I'm here")!.to, "bob");
  // and a plain line goes to the room again
  await p.write(`back in the room${KEYS.enter}`);
  await waitFor(() => got.msgs.some((m) => m.text === "back in the room"), "the room line");
  assertEquals(got.msgs.find((m) => m.text === "back in the room")!.room, "lobby");
  await p.write(`/quit${KEYS.enter}`);
  assertEquals((await p.close()).code, 0);
  await bob.client.close();
});

Deno.test("REPL: Tab completes a file name with a space quoted, and /put reads it back", async () => {
  await using t = await startTestServer();
  const key = await t.addUser("ada");
  const dir = await Deno.makeTempDir({ prefix: "parley-complete-" });
  try {
    await Deno.writeTextFile(join(dir, "my notes.txt"), "notes\n");
    await Deno.writeTextFile(join(dir, "my file.txt"), "file\n");
    await using p = await spawnRepl({ port: t.port, user: "ada", key, cwd: dir });
    await p.waitFor("[#lobby]", { ms: 30_000 });
    const mark = p.mark();
    // two names share "'my ": Tab inserts that much, quote open; then "n" and Tab finish it
    await p.write("/put my" + KEYS.tab);
    await p.waitFor("/put 'my ", { since: mark });
    await p.write("n" + KEYS.tab);
    await p.waitFor("/put 'my notes.txt'", { since: mark });
    await p.write(KEYS.enter);
    await p.waitFor("uploaded my notes.txt", { since: mark, ms: 30_000 });
    const c = await t.connect("ada");
    try {
      const st = await c.call(FILE_STAT, { path: "my notes.txt" }) as FileStatReply;
      assertEquals(st.size, 6);
    } finally {
      await c.close();
    }
    await p.write(`/quit${KEYS.enter}`);
    assertEquals((await p.close()).code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("REPL: completion offers admin commands only to admins, with a space after one match", async () => {
  await using t = await startTestServer();
  const adaKey = await t.addUser("ada");
  const rootKey = await t.addUser("root", { admin: true });
  {
    await using p = await spawnRepl({ port: t.port, user: "ada", key: adaKey });
    await p.waitFor("[#lobby]", { ms: 30_000 });
    let mark = p.mark();
    await p.write("/");
    await p.waitFor("/", { since: mark });
    await p.write(KEYS.tab);
    // the first Tab completes what all share (nothing); wait for it before the second lists them
    await new Promise((r) => setTimeout(r, 300));
    await p.write(KEYS.tab);
    await p.waitFor("/who", { since: mark });
    await p.waitFor("/unignore", { since: mark });
    for (const admin of ["/kick", "/ban", "/mute", "/unban", "/unmute"]) {
      assert(!p.since(mark).includes(admin), `${admin} offered to a non-admin`);
    }
    // /un: only /unignore for a non-admin, completed with a space after it
    mark = p.mark();
    await p.write(KEYS.ctrlU + "/un" + KEYS.tab);
    await p.waitFor("/unignore", { since: mark });
    await p.write("bob");
    await p.waitFor("/unignore bob", { since: mark });
    await p.write(KEYS.ctrlU + `/quit${KEYS.enter}`);
    assertEquals((await p.close()).code, 0);
  }
  await using p = await spawnRepl({ port: t.port, user: "root", key: rootKey });
  await p.waitFor("[#lobby]", { ms: 30_000 });
  const mark = p.mark();
  await p.write("/kic" + KEYS.tab);
  await p.waitFor("/kick", { since: mark });
  await p.write("x");
  await p.waitFor("/kick x", { since: mark });
  await p.write(KEYS.ctrlU + `/quit${KEYS.enter}`);
  assertEquals((await p.close()).code, 0);
});

Deno.test("REPL: /help fits a 40-column terminal", async () => {
  await using t = await startTestServer();
  const key = await t.addUser("ada");
  await using p = await spawnRepl({ port: t.port, user: "ada", key, cols: 40 });
  await p.waitFor("[#lobby]", { ms: 30_000 });
  const mark = p.mark();
  await p.write(`/help${KEYS.enter}`);
  await p.waitFor("Tab completes", { since: mark });
  await p.waitFor("file names.", { since: mark });
  const text: string = stripAnsiCode(p.since(mark));
  // each printed line follows a prompt that is then erased: drop the prompts
  const lines = text.split(/\r?\n|\r/).map((l) => l.replaceAll("[#lobby] ", "")).filter((l) =>
    l !== "" && !l.includes("/help")
  );
  assert(lines.some((l) => l.includes("/join ROOM")), text);
  const long = lines.filter((l) => l.length > 40);
  assertEquals(long, [], "lines over 40 columns");
  await p.write(`/quit${KEYS.enter}`);
  assertEquals((await p.close()).code, 0);
});

Deno.test("REPL: lines refused as too fast (another login spent the rate) are sent again, in order", async () => {
  await using t = await startTestServer();
  const key = await t.addUser("ada");
  const bob = await ChatClient.start(await t.connect("bob"));
  const got = record(bob);
  await bob.join("lobby");
  await using p = await spawnRepl({ port: t.port, user: "ada", key });
  await p.waitFor("[#lobby]", { ms: 30_000 });
  await waitFor(() => got.events.some((e) => e.kind === "joined"), "ada joining");
  // ada's other login spends the whole burst: the REPL's next lines meet rate_limited
  const other = await ChatClient.start(await t.connect("ada"));
  await other.join("lobby");
  for (let i = 0; i < 10; i++) await other.send({ room: "lobby" }, `other ${i}`);
  await waitFor(() => got.msgs.length === 10, "the other login's burst");
  const lines = Array.from({ length: 6 }, (_, i) => `paced ${i + 1}`);
  const mark = p.mark();
  await p.write(lines.join("\r") + "\r");
  await waitFor(() => got.msgs.length >= 16, "the six lines at bob", 30_000);
  assertEquals(got.msgs.slice(10).map((m) => m.text), lines);
  const shown: string = stripAnsiCode(p.since(mark));
  assert(!/slow down|not sent/.test(shown), `nothing refused: ${shown}`);
  assertEquals(shown.split("sending in order").length - 1, 1, "pacing said once");
  other.close();
  await other.client.close();
  await p.write(`/quit${KEYS.enter}`);
  assertEquals((await p.close()).code, 0);
  await bob.client.close();
});

Deno.test("REPL: /away answers a DM once, /history @USER, a bell on a DM, Tab on a name at line start", async () => {
  await using t = await startTestServer();
  const key = await t.addUser("ada");
  const bob = await ChatClient.start(await t.connect("bob"));
  const got = record(bob);
  await bob.join("lobby");
  await using p = await spawnRepl({ port: t.port, user: "ada", key });
  await p.waitFor("[#lobby]", { ms: 30_000 });

  let mark = p.mark();
  await p.write(`/away at lunch${KEYS.enter}`);
  await p.waitFor("you are away (at lunch)", { since: mark });
  await bob.send({ to: "ada" }, "lunch?");
  await bob.send({ to: "ada" }, "hello?");
  await p.waitFor("hello?", { since: mark });
  assert(p.since(mark).includes("\x07"), "a bell for a direct message on a terminal");
  await waitFor(() => got.msgs.some((m) => m.text === "is away: at lunch"), "the away answer");
  mark = p.mark();
  await p.write(`/away${KEYS.enter}`);
  await p.waitFor("you are back; 2 direct messages arrived while you were away", { since: mark });
  assertEquals(got.msgs.filter((m) => m.from === "ada").map((m) => [m.text, m.me, m.to]), [
    ["is away: at lunch", true, "bob"],
  ]);

  mark = p.mark();
  await p.write(`/history @bob${KEYS.enter}`);
  // the away answer is stored when ada's client saw "lunch?": before or after "hello?"
  await p.waitFor(/lunch\?[^]*hello\?/, { since: mark });
  await p.waitFor(/lunch\?[^]*is away: at lunch/, { since: mark });

  mark = p.mark();
  await p.write("bo" + KEYS.tab);
  await p.waitFor("bob:", { since: mark });
  await p.write("see you");
  await p.waitFor("bob: see you", { since: mark });
  await p.write(KEYS.enter);
  await waitFor(() => got.msgs.some((m) => m.text === "bob: see you"), "the line at bob");
  await p.write(`/quit${KEYS.enter}`);
  assertEquals((await p.close()).code, 0);
  await bob.client.close();
});

Deno.test("REPL without a terminal: 30 piped lines all arrive in order before it exits", async () => {
  await using t = await startTestServer();
  const key = await t.addUser("ada");
  const bob = await ChatClient.start(await t.connect("bob"));
  const got = record(bob);
  await bob.join("lobby");
  await using p = await spawnRepl({ port: t.port, user: "ada", key, pty: false });
  const lines = Array.from({ length: 30 }, (_, i) => `piped ${i + 1}`);
  await p.write(lines.map((l) => l + "\n").join(""));
  // end of input right away: the REPL leaves only after the paced lines are sent
  assertEquals((await p.close()).code, 0);
  await waitFor(() => got.msgs.length >= 30, "30 lines at bob", 30_000);
  assertEquals(got.msgs.map((m) => m.text), lines);
  assert(p.text().includes("-- sending"), p.text());
  await bob.client.close();
});
