import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import { ChatClient } from "../../client/chat/chat_client.ts";
import { ParleyClient } from "../../client/client.ts";
import { keyBytes, type SpawnedServer, spawnServer, startTestServer } from "../helpers.ts";
import { Journal } from "../../server/embedded/chat_journal.ts";

async function dial(server: SpawnedServer, user: string, key: string): Promise<ChatClient> {
  const c = await ParleyClient.connect({
    host: "127.0.0.1",
    port: server.port,
    user,
    key: keyBytes(key),
    ...server.clientOptions,
  });
  return await ChatClient.start(c);
}

Deno.test("history and undelivered DMs survive a server restart", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "parley-chat-" });
  try {
    let adaKey: string, bobKey: string;
    const sentIds: string[] = [];
    {
      await using s = await spawnServer({ dataDir });
      adaKey = await s.addUser("ada");
      bobKey = await s.addUser("bob");
      const ada = await dial(s, "ada", adaKey);
      await ada.join("lobby");
      for (let i = 0; i < 5; i++) sentIds.push((await ada.send({ room: "lobby" }, `kept ${i}`)).id);
      await ada.send({ to: "bob" }, "while you were out");
      ada.close();
      await ada.client.close();
      await s.stop("SIGTERM");
    }
    // a crash mid-write leaves a torn line; the server must still start
    await Deno.writeTextFile(join(dataDir, "chat", "rooms", "lobby.jsonl"), '{"id":"99', {
      append: true,
    });
    {
      await using s = await spawnServer({ dataDir });
      const bob = await dial(s, "bob", bobKey);
      assertEquals(bob.recent().map((m) => m.text), ["while you were out"]);
      const r = await bob.join("lobby");
      assertEquals(r.history.map((m) => m.text), [0, 1, 2, 3, 4].map((i) => `kept ${i}`));
      assertEquals(r.history.map((m) => m.id), sentIds);
      const { id } = await bob.send({ room: "lobby" }, "new");
      assert(Number(id) > Number(sentIds.at(-1)), "ids are not reused after a restart");
      assert(s.output.some((l) => l.includes("chat journal repaired")), s.output.join("\n"));
      bob.close();
      await bob.client.close();
    }
    const text = await Deno.readTextFile(join(dataDir, "chat", "rooms", "lobby.jsonl"));
    assert(text.endsWith("\n") && !text.includes('{"id":"99\n'), "torn line removed");
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a room journal is compacted to its bound and keeps the newest messages", async () => {
  await using t = await startTestServer({
    features: { chat: { historyPerRoom: 10, rateBurst: 1000 } },
  });
  const ada = await ChatClient.start(await t.connect("ada"));
  for (let i = 0; i < 45; i++) await ada.send({ room: "lobby" }, `m${i}`);
  const h = await ada.client.call("chat.history", { room: "lobby", limit: 100 }) as {
    messages: { text: string }[];
  };
  assertEquals(h.messages.map((m) => m.text), Array.from({ length: 10 }, (_, i) => `m${35 + i}`));
  const path = join(t.dataDir, "chat", "rooms", "lobby.jsonl");
  const lines = (await Deno.readTextFile(path)).trim().split("\n");
  assert(lines.length <= 20, `journal has ${lines.length} lines`);
  assertEquals(JSON.parse(lines.at(-1)!).text, "m44");
  ada.close();
});

Deno.test("a journal skips undecodable lines and cuts a torn last line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "j.jsonl");
    await Deno.writeTextFile(path, '{"n":1}\nnot json\n{"n":2}\n{"n":3');
    const load = await Journal.open(path, (v) => v as { n: number });
    assertEquals(load.entries, [{ n: 1 }, { n: 2 }]);
    assertEquals([load.skipped, load.truncated], [1, 6]);
    await load.journal.append({ n: 4 });
    await load.journal.close();
    assertEquals(await Deno.readTextFile(path), '{"n":1}\nnot json\n{"n":2}\n{"n":4}\n');
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("appends made in one turn of the event loop share one write and sync, microtasks between them or not", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "j.jsonl");
    const commits: number[][] = [];
    const journal = Journal.create<{ n: number }>(path, {
      onCommit: (entries) => commits.push(entries.map((e) => e.n)),
    });
    // As a batch of requests is handled: each append, then pending microtasks run.
    const stored: Promise<void>[] = [];
    for (let n = 0; n < 20; n++) {
      stored.push(journal.append({ n }));
      await null;
    }
    await Promise.all(stored);
    await journal.append({ n: 20 });
    await journal.close();
    assertEquals(commits, [Array.from({ length: 20 }, (_, n) => n), [20]]);
    const lines = (await Deno.readTextFile(path)).trimEnd().split("\n");
    assertEquals(lines.map((l) => JSON.parse(l).n), Array.from({ length: 21 }, (_, n) => n));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
