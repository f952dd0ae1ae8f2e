/**
 * `parley cluster import` end to end: a single server's data dir, filled by real clients, copied
 * into a 3-node NATS cluster by the command run as its own process; a cluster node then serves
 * the same users (old keys), history (same order and text), files (same bytes and mtimes), shares
 * and bans. The import is refused while a server holds the data dir, and refused into a cluster
 * that holds data unless `--merge` is given.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { join } from "@std/path";
import { createHash } from "node:crypto";
import type { ClientOptions, ParleyClient } from "../../client/client.ts";
import type { ChatMessage } from "../../protocol/chat_message.ts";
import { RemoteError } from "../../protocol/errors.ts";
import { openEmbeddedBackend } from "../../server/embedded/mod.ts";
import { loadConfig } from "../../server/config.ts";
import { Logger } from "../../server/log.ts";
import { parleyProcessArgs, parleyUser, spawnServer } from "../helpers.ts";
import { readAll } from "../protocol/protocol_fixture.ts";
import { natsAvailable, startNatsCluster } from "./nats_fixture.ts";
import { connectNodes, startParleyNode } from "./cluster_helpers.ts";

const available = natsAvailable();
const CONFIG = { chat: { ratePerSecond: 1000, rateBurst: 1000 } };

/** Runs `parley cluster ARGS` as its own process. */
async function clusterCommand(...args: string[]): Promise<{ code: number; out: string }> {
  const o = await new Deno.Command(Deno.execPath(), {
    args: parleyProcessArgs("cluster", ...args),
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const t = new TextDecoder();
  return { code: o.code, out: t.decode(o.stdout) + t.decode(o.stderr) };
}

async function put(c: ParleyClient, path: string, data: Uint8Array): Promise<void> {
  const sha256 = createHash("sha256").update(data).digest("hex");
  const { stream, result } = c.open("file.put", {
    path,
    size: data.byteLength,
    sha256,
    parents: true,
  });
  await stream.write(data);
  stream.end();
  await result;
}

async function get(c: ParleyClient, path: string): Promise<Uint8Array> {
  const { stream, result } = c.open("file.get", { path }, { fin: true });
  const data = await readAll(stream);
  await result;
  return data;
}

/** A room's (or, with `dm`, the caller's direct messages') whole history, oldest first. */
async function history(c: ParleyClient, where: { room: string } | { dm: true }) {
  const out: ChatMessage[] = [];
  let after = "0";
  for (let i = 0; i < 1000; i++) {
    const h = await c.call("chat.history", { ...where, after, limit: 1000 }) as {
      messages: ChatMessage[];
      more: boolean;
    };
    out.push(...h.messages);
    if (!h.more || h.messages.length === 0) return out;
    after = h.messages.at(-1)!.id;
  }
  throw new Error("history did not end");
}

/** What a reader compares: everything but the id. */
const said = (ms: ChatMessage[]) =>
  ms.map((m) => `${m.room ?? `@${m.to}`} ${m.from} ${m.ts} ${m.text}`);

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >> 9)) & 0xff;
  return b;
}

/** How a login of `user` ends: "forbidden", or "served" when a request of theirs was answered. */
async function loginOutcome(nodes: { port: number }[], user: string, key: string) {
  const c = await connectNodes(nodes, user, key).catch((e) => e as Error);
  if (c instanceof Error) return c instanceof RemoteError ? c.code : String(c);
  try {
    // The refusal may arrive just after connect returned: then the request fails.
    const served = await c.call("diag.echo", {}).then(() => "served", (e) => e);
    if (served === "served") return "served";
    if (served instanceof RemoteError) return served.code;
    // The forbidden frame closed the connection before the request went out.
    return c.state === "closed" ? "forbidden" : String(served);
  } finally {
    await c.close();
  }
}

Deno.test({
  name: "cluster import: a single server's accounts, history, files, shares and bans move into " +
    "a NATS cluster and a cluster node serves them",
  ignore: !available,
}, async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "parley-import-src-" });
  const otherDir = await Deno.makeTempDir({ prefix: "parley-import-other-" });
  try {
    await Deno.writeTextFile(join(dataDir, "config.json"), JSON.stringify(CONFIG));
    const keys: Record<string, string> = {};
    const big = bytes(3 * 1048576 + 4321, 1);
    const small = new TextEncoder().encode("hello, cluster\n");
    const deep = bytes(70_000, 2);
    const before: Record<string, string[]> = {};
    let shareId = "";
    let fileStat: Record<string, unknown> = {};

    await using nats = await startNatsCluster();
    const urls = nats.urls.join(",");

    // 1. A single server, filled by real clients.
    const server = await spawnServer({ dataDir });
    try {
      keys.mod = await server.addUser("mod", { admin: true });
      keys.ada = await server.addUser("ada", { exec: true });
      keys.bob = await server.addUser("bob");
      keys.cyd = await server.addUser("cyd");
      // The server's transport (TLS pinned to its certificate where it serves TLS).
      const transport = (server as { clientOptions?: Partial<ClientOptions> }).clientOptions ?? {};
      const ada = await connectNodes([server], "ada", keys.ada, transport);
      const bob = await connectNodes([server], "bob", keys.bob, transport);
      const mod = await connectNodes([server], "mod", keys.mod, transport);
      try {
        for (const c of [ada, bob, mod]) {
          await c.call("chat.join", { room: "lobby" });
          await c.call("chat.join", { room: "dev" });
        }
        for (let i = 0; i < 30; i++) {
          const who = [ada, bob, mod][i % 3]!;
          await who.call("chat.send", { room: i % 2 ? "dev" : "lobby", text: `message ${i}` });
          if (i % 5 === 0) await ada.call("chat.send", { to: "bob", text: `psst ${i}` });
          if (i % 7 === 0) await bob.call("chat.send", { to: "ada", text: `re ${i} ünïcödé` });
        }
        await put(ada, "hello.txt", small);
        await put(ada, "docs/notes/deep/deep.bin", deep);
        await put(ada, "big.bin", big);
        await ada.call("file.mkdir", { path: "empty/inner", parents: true });
        await put(bob, "bob.txt", small);
        shareId = (await ada.call("file.share", { path: "big.bin" }) as { id: string }).id;
        fileStat = await ada.call("file.stat", { path: "docs/notes/deep/deep.bin" }) as Record<
          string,
          unknown
        >;
        await ada.call("chat.ignore", { user: "cyd" });
        await mod.call("chat.ban", { user: "cyd", reason: "spam" });
        before.lobby = said(await history(ada, { room: "lobby" }));
        before.dev = said(await history(bob, { room: "dev" }));
        before.adaDm = said(await history(ada, { dm: true }));
        before.bobDm = said(await history(bob, { dm: true }));
        // ada takes her direct messages: her delivery mark reaches her last one.
        await ada.call("chat.inbox", {});
        assertEquals(
          (await ada.call("chat.inbox", {}) as { messages: ChatMessage[] }).messages,
          [],
        );
        await mod.call("chat.mute", { user: "bob", minutes: 60 });
      } finally {
        await Promise.all([ada.close(), bob.close(), mod.close()]);
      }
      assertEquals(before.lobby!.length, 15);
      assertEquals(before.adaDm!.length, 6 + 5);

      // 2. Refused while the server holds the data dir.
      const busy = await clusterCommand("import", "--data", dataDir, "--cluster", urls);
      assertEquals(busy.code, 1, busy.out);
      assertStringIncludes(busy.out, "in use by another Parley process");
      assertStringIncludes(busy.out, "parley serve");
      // So is a second server on the same data dir.
      const second = await spawnServer({ dataDir }).then(
        async (s) => {
          await s.stop();
          return "started";
        },
        (e) => String(e),
      );
      assertStringIncludes(second, "in use by another Parley process");
    } finally {
      await server.stop();
    }

    // 3. The import, as an operator runs it.
    const run = await clusterCommand("import", "--data", dataDir, "--cluster", urls);
    assertEquals(run.code, 0, run.out);
    assertStringIncludes(run.out, "accounts  5 copied");
    assertStringIncludes(run.out, `parley serve --cluster ${urls} --node NAME`);
    assertStringIncludes(run.out, "audit logs are not copied");
    const mapped = new RegExp(`share ${shareId} -> ([0-9a-f]{32})`).exec(run.out);
    const newShare = mapped?.[1];
    assert(newShare, run.out);

    // Run again: nothing to do, and the check passes again.
    const again = await clusterCommand("import", "--data", dataDir, "--cluster", urls);
    assertEquals(again.code, 0, again.out);
    assertStringIncludes(again.out, "already there");
    assertMatch(again.out, / 0 appended now/);

    // 4. Another data dir is refused: the cluster holds data now. With --merge it goes in.
    const zedKey = (JSON.parse(await parleyUser(otherDir, "add", "zed", "--json")) as {
      key: string;
    }).key;
    await parleyUser(otherDir, "add", "ada");
    const refused = await clusterCommand("import", "--data", otherDir, "--cluster", urls);
    assertEquals(refused.code, 1, refused.out);
    assertStringIncludes(refused.out, "already holds 5 accounts");
    assertStringIncludes(refused.out, "--merge");
    const merged = await clusterCommand("import", "--data", otherDir, "--cluster", urls, "--merge");
    assertEquals(merged.code, 0, merged.out);
    assertStringIncludes(merged.out, "kept as the cluster has them (not copied): ada");

    // 5. A cluster node serves it all.
    await using node = await startParleyNode(nats.urls, "a", [], CONFIG);
    const ada = await connectNodes([node], "ada", keys.ada);
    const bob = await connectNodes([node], "bob", keys.bob);
    try {
      assertEquals(said(await history(ada, { room: "lobby" })), before.lobby);
      assertEquals(said(await history(bob, { room: "dev" })), before.dev);
      assertEquals(said(await history(ada, { dm: true })), before.adaDm);
      assertEquals(said(await history(bob, { dm: true })), before.bobDm);
      assertEquals(await get(ada, "big.bin"), big);
      assertEquals(await get(ada, "hello.txt"), small);
      assertEquals(await get(ada, "docs/notes/deep/deep.bin"), deep);
      assertEquals(await get(bob, "bob.txt"), small);
      const stat = await ada.call("file.stat", { path: "docs/notes/deep/deep.bin" }) as Record<
        string,
        unknown
      >;
      assertEquals([stat.size, stat.mtime], [fileStat.size, fileStat.mtime]);
      const inner = await ada.call("file.stat", { path: "empty/inner" }) as { type: string };
      assertEquals(inner.type, "dir");
      const shared = await bob.call("file.stat", { shared: newShare }) as { size: number };
      assertEquals(shared.size, big.byteLength);
      // The delivery mark, moved to the new ids: nothing is offered to ada again.
      assertEquals((await ada.call("chat.inbox", {}) as { messages: ChatMessage[] }).messages, []);
      // The mute holds.
      const muted = await bob.call("chat.send", { room: "lobby", text: "still muted?" })
        .then(() => "sent", (e) => e instanceof RemoteError ? e.code : String(e));
      assertEquals(muted, "forbidden");
      const ignored = await ada.call("chat.ignore", {}) as { ignored: string[] };
      assertEquals(ignored.ignored, ["cyd"]);
    } finally {
      await Promise.all([ada.close(), bob.close()]);
    }
    // The ban holds; the merged-in user logs in with the key of the other data dir.
    assertEquals(await loginOutcome([node], "cyd", keys.cyd!), "forbidden");
    assertEquals(await loginOutcome([node], "zed", zedKey), "served");
    assertEquals(await loginOutcome([node], "mod", keys.mod!), "served");
  } finally {
    await Deno.remove(dataDir, { recursive: true });
    await Deno.remove(otherDir, { recursive: true });
  }
});

/** Starts `parley cluster ARGS`; resolves when a line matches `until` (the process still runs). */
async function startClusterCommand(until: RegExp, ...args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: parleyProcessArgs("cluster", ...args),
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines: string[] = [];
  let matched = false;
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  try {
    while (!matched) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        lines.push(buf.slice(0, i));
        if (until.test(buf.slice(0, i))) matched = true;
        buf = buf.slice(i + 1);
      }
    }
  } finally {
    reader.releaseLock();
  }
  return { child, lines, matched };
}

Deno.test({
  name: "cluster import: killed in the middle of the messages, a second run continues where " +
    "the first stopped: every message once, in order",
  ignore: !available,
}, async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "parley-import-resume-" });
  try {
    const total = 6000;
    const config = { chat: { historyPerRoom: 10_000 } };
    await Deno.writeTextFile(join(dataDir, "config.json"), JSON.stringify(config));
    const key = await parleyUserKey(dataDir, "ada");
    {
      // The data dir, written through the embedded backend (as a server would).
      await using backend = await openEmbeddedBackend(
        await loadConfig({ dataDir }),
        new Logger({ level: "error" }),
      );
      for (let i = 0; i < total; i++) {
        await backend.chat.log.append({
          room: i % 3 ? "lobby" : "dev",
          from: "ada",
          text: `message ${i}`,
          ts: 1_700_000_000_000 + i,
        });
      }
    }
    await using nats = await startNatsCluster();
    const urls = nats.urls.join(",");
    const first = await startClusterCommand(
      /^messages: \d+\//,
      "import",
      "--data",
      dataDir,
      "--cluster",
      urls,
    );
    first.child.kill("SIGKILL");
    await first.child.stdout.cancel().catch(() => {});
    const status = await first.child.status;
    assert(first.matched, `the import ended before its first progress line:\n${first.lines}`);
    assertEquals(status.signal, "SIGKILL");

    const second = await clusterCommand("import", "--data", dataDir, "--cluster", urls);
    assertEquals(second.code, 0, second.out);
    assertStringIncludes(second.out, "continuing the import started on");
    assertMatch(second.out, new RegExp(`messages: ${total} in place \\((\\d+) appended now\\)`));
    const appended = Number(/\((\d+) appended now\)/.exec(second.out)![1]);
    assert(appended > 0 && appended < total, second.out);

    await using node = await startParleyNode(nats.urls, "a", [], config);
    const ada = await connectNodes([node], "ada", key);
    try {
      const lobby = await history(ada, { room: "lobby" });
      const dev = await history(ada, { room: "dev" });
      const want = (room: string) =>
        Array.from({ length: total }, (_, i) => i)
          .filter((i) => (i % 3 ? "lobby" : "dev") === room).map((i) => `message ${i}`);
      assertEquals(lobby.map((m) => m.text), want("lobby"));
      assertEquals(dev.map((m) => m.text), want("dev"));
      const ids = [...lobby, ...dev].map((m) => Number(m.id)).sort((a, b) => a - b);
      assertEquals(ids, Array.from({ length: total }, (_, i) => i + 1));
    } finally {
      await ada.close();
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

/** Adds an account to a data dir with `parley user add`; returns its key. */
async function parleyUserKey(dataDir: string, name: string): Promise<string> {
  return (JSON.parse(await parleyUser(dataDir, "add", name, "--json")) as { key: string }).key;
}
