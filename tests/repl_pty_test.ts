import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import { ChatClient } from "../client/chat/chat_client.ts";
import { startTestServer } from "./helpers.ts";
import { type ReplProc, spawnRepl } from "./repl/pty.ts";
import { record, waitFor } from "./chat/chat_helpers.ts";

/** Runs `parley connect` for `user`, optionally inside a pseudo-terminal (`script`). */
function connect(
  port: number,
  user: string,
  key: string,
  options: { pty: boolean; home: string; env?: Record<string, string>; extra?: string[] },
): Promise<ReplProc> {
  return spawnRepl({ port, user, key, ...options });
}

Deno.test("the REPL in a terminal sends typed lines and shows incoming ones above the prompt", async () => {
  await using t = await startTestServer();
  const home = await Deno.makeTempDir({ prefix: "parley-home-" });
  try {
    const adaKey = await t.addUser("ada");
    const bob = await ChatClient.start(await t.connect("bob"));
    const got = record(bob);
    await bob.join("lobby");
    const p = await connect(t.port, "ada", adaKey, { pty: true, home });
    try {
      await waitFor(() => p.out().includes("[#lobby]"), "the prompt", 30_000);
      await waitFor(() => got.events.some((e) => e.kind === "joined"), "ada joining");
      await p.write("hello from the terminal\r");
      await waitFor(() => got.msgs.length === 1, "ada's message at bob");
      assertEquals([got.msgs[0]!.from, got.msgs[0]!.text], ["ada", "hello from the terminal"]);
      // a half-typed line survives an incoming message
      await p.write("draft in progress");
      await waitFor(() => p.out().includes("draft in progress"), "the echo of typed text");
      const mark = p.out().length;
      await bob.send({ room: "lobby" }, "an interruption");
      await waitFor(() => p.out().slice(mark).includes("an interruption"), "bob's message");
      await waitFor(
        () => /an interruption[^]*\[#lobby\][^]*draft in progress/.test(p.out().slice(mark)),
        "the prompt and draft redrawn after the message",
      );
      assert(p.out().includes("\x1b["), "colours and cursor control on a terminal");
      assert(/\d\d:\d\d/.test(p.out().slice(mark)), "time stamps on a terminal");
      // tab completion of commands and user names
      await p.write("\x15/joi");
      await waitFor(() => p.out().endsWith("/joi"), "typed /joi");
      await p.write("\t");
      await waitFor(() => p.out().includes("/join"), "/joi completed to /join");
      await p.write("\x15hi @bo");
      await waitFor(() => p.out().endsWith("@bo"), "typed @bo");
      await p.write("\t");
      await waitFor(() => p.out().includes("@bob"), "@bo completed to @bob");
      // a lost connection is shown, then what was missed
      const lost = p.out().length;
      for (const ctx of t.server.byUser("ada")) await ctx.session.close();
      await waitFor(() => t.server.byUser("ada").length === 0, "ada's logout");
      await bob.send({ room: "lobby" }, "said while you were away");
      await waitFor(() => p.out().slice(lost).includes("connection lost"), "loss shown");
      await waitFor(
        () => /reconnected/.test(p.out().slice(lost)),
        "reconnection shown",
      );
      assert(p.out().slice(lost).includes("said while you were away"), p.out().slice(lost));
      await p.write("\x15/quit\r");
      const status = await p.close();
      assertEquals(status.code, 0, p.out() + p.err());
      const hist = join(home, ".config", "parley", "history");
      assert((await Deno.readTextFile(hist)).includes("hello from the terminal"));
      assertEquals((await Deno.stat(hist)).mode! & 0o777, 0o600);
    } finally {
      await p.close();
    }
    bob.close();
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("the REPL without a terminal prints plain lines and quits at end of input", async () => {
  await using t = await startTestServer();
  const home = await Deno.makeTempDir({ prefix: "parley-home-" });
  try {
    const adaKey = await t.addUser("ada");
    const bob = await ChatClient.start(await t.connect("bob"));
    const got = record(bob);
    await bob.join("lobby");
    await bob.send({ room: "lobby" }, "earlier words");
    const p = await connect(t.port, "ada", adaKey, { pty: false, home });
    try {
      await waitFor(() => p.out().includes("<bob> earlier words"), "history on join", 30_000);
      await p.write("piped hello\n/nonsense\n");
      await waitFor(() => got.msgs.some((m) => m.text === "piped hello"), "piped line at bob");
      await waitFor(() => p.out().includes("unknown command /nonsense"), "error shown");
      const status = await p.close();
      assertEquals(status.code, 0, p.out() + p.err());
      assert(!p.out().includes("\x1b"), `no escape codes when piped: ${JSON.stringify(p.out())}`);
      assert(!/\d\d:\d\d <bob>/.test(p.out()), "no time stamps when piped");
    } finally {
      await p.close();
    }
    bob.close();
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
