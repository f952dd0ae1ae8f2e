/**
 * Chat under faults: a data dir on a small tmpfs that fills up (mounting one
 * needs root, as in tests/hostile/files_test.ts). A full disk must give
 * `disk_full` to the request and leave the server serving; every message
 * acknowledged `ok` must be in the history after a restart, whatever failed
 * before it.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import { ParleyClient } from "../../client/client.ts";
import { RemoteError } from "../../protocol/errors.ts";
import { keyBytes, type SpawnedServer, spawnServer } from "../helpers.ts";

const _CHAT = { ratePerSecond: 1_000_000, rateBurst: 1_000_000, historyPerRoom: 100_000 };

/** Runs `fn` with a fresh tmpfs of `size` mounted on a temp dir; unmounts it after. */
async function withTmpfs(size: string, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "parley-chatfull-" });
  const mount = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir],
    stderr: "piped",
  }).output();
  assert(mount.success, `mounting a tmpfs needs root: ${new TextDecoder().decode(mount.stderr)}`);
  try {
    await fn(dir);
  } finally {
    await new Deno.Command("umount", { args: [dir] }).output();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Fills the file system holding `path` until a write fails with ENOSPC. */
async function fillDisk(path: string): Promise<void> {
  const f = await Deno.open(path, { write: true, create: true });
  try {
    for (const chunk of [1024 * 1024, 4096, 1]) {
      const buf = new Uint8Array(chunk);
      for (let i = 0; i < 1_000_000; i++) {
        try {
          await f.write(buf);
        } catch (e) {
          if ((e as { code?: string }).code !== "ENOSPC") throw e;
          break;
        }
      }
    }
  } finally {
    f.close();
  }
}

/** Sends (to lobby, or to `to`) and returns the id, or the error the server replied with. */
async function send(c: ParleyClient, text: string, to?: string): Promise<string | RemoteError> {
  try {
    const target = to === undefined ? { room: "lobby" } : { to };
    return (await c.call("chat.send", { ...target, text }) as { id: string }).id;
  } catch (e) {
    if (e instanceof RemoteError) return e;
    throw e;
  }
}

/** Every message id of `room` (or with `dm`, of the caller's DMs) in history, paging forward. */
async function allIds(c: ParleyClient, room: string | { dm: true }): Promise<string[]> {
  const ids: string[] = [];
  let after = "0";
  const where = typeof room === "string" ? { room } : room;
  for (let i = 0; i < 10_000; i++) {
    const h = await c.call("chat.history", { ...where, after, limit: 1000 }) as {
      messages: { id: string }[];
      more: boolean;
    };
    ids.push(...h.messages.map((m) => m.id));
    if (!h.more || h.messages.length === 0) return ids;
    after = h.messages.at(-1)!.id;
  }
  throw new Error("history did not end");
}

async function login(server: SpawnedServer, user: string, key: string): Promise<ParleyClient> {
  return await ParleyClient.connect({
    host: "127.0.0.1",
    port: server.port,
    user,
    key: keyBytes(key),
    ...server.clientOptions,
  });
}

async function startOn(dataDir: string): Promise<SpawnedServer> {
  await Deno.mkdir(dataDir, { recursive: true });
  await Deno.writeTextFile(join(dataDir, "config.json"), JSON.stringify({ chat: _CHAT }));
  return await spawnServer({ dataDir });
}

async function assertAlive(server: SpawnedServer, c: ParleyClient, label: string): Promise<void> {
  assertEquals(
    await c.call("diag.echo", { label }),
    { label },
    `${label}: the server stopped serving\n${server.output.join("\n")}`,
  );
}

Deno.test("a full disk gives disk_full, the server keeps serving, and acknowledged messages survive a restart", async () => {
  await withTmpfs("1m", async (mnt) => {
    const dataDir = join(mnt, "data");
    const acked: string[] = [];
    const ackedDms: string[] = [];
    let bobKey: string;
    {
      await using server = await startOn(dataDir);
      const ada = await server.connect("ada");
      bobKey = await server.addUser("bob");
      const bob = await login(server, "bob", bobKey);
      try {
        await ada.call("chat.join", { room: "lobby" });
        for (let i = 0; i < 5; i++) {
          const id = await send(ada, `before ${i}`);
          if (typeof id !== "string") throw id;
          acked.push(id);
        }
        await fillDisk(join(mnt, "filler"));
        // Messages of several sizes: the first that does not fit the journal's last page is
        // written in part before the disk says no, which leaves a torn line unless repaired.
        for (const size of [3900, 2000, 100, 3900]) {
          const r = await send(ada, "x".repeat(size));
          if (typeof r === "string") {
            acked.push(r);
            continue;
          }
          assertEquals(r.code, "disk_full", `a full disk should say so, not: ${r.message}`);
        }
        for (const size of [3900, 100, 3900]) {
          const r = await send(ada, "d".repeat(size), "bob");
          if (typeof r === "string") ackedDms.push(r);
          else assertEquals(r.code, "disk_full", `a full disk should say so, not: ${r.message}`);
        }
        assert(
          (await send(ada, "y".repeat(4000))) instanceof RemoteError,
          "the disk never filled up",
        );
        await assertAlive(server, bob, "disk full");
        await Deno.remove(join(mnt, "filler"));
        for (let i = 0; i < 5; i++) {
          const id = await send(ada, `after ${i}`);
          if (typeof id !== "string") throw id;
          acked.push(id);
          const dm = await send(ada, `dm after ${i}`, "bob");
          if (typeof dm !== "string") throw dm;
          ackedDms.push(dm);
        }
        assertEquals(await allIds(bob, { dm: true }), ackedDms, "DM history differs from the acks");
        assertEquals(
          await allIds(bob, "lobby"),
          acked,
          "the history differs from the acknowledged messages",
        );
      } finally {
        await ada.close();
        await bob.close();
      }
    }
    const journal = await Deno.readTextFile(join(dataDir, "chat", "rooms", "lobby.jsonl"));
    for (const line of journal.split("\n").filter((l) => l !== "")) {
      JSON.parse(line); // a torn line glued to the next one does not parse
    }
    await using again = await startOn(dataDir);
    const bob = await login(again, "bob", bobKey);
    try {
      assertEquals(await allIds(bob, "lobby"), acked, "acknowledged messages lost in a restart");
      assertEquals(await allIds(bob, { dm: true }), ackedDms, "acknowledged DMs lost in a restart");
    } finally {
      await bob.close();
    }
  });
});

Deno.test("a full disk when message ids run low gives disk_full and the server keeps serving", async () => {
  await withTmpfs("1m", async (mnt) => {
    const dataDir = join(mnt, "data");
    await using server = await startOn(dataDir);
    const ada = await server.connect("ada");
    const bob = await server.connect("bob");
    try {
      const first = await send(ada, "hello");
      assert(typeof first === "string", `first send: ${first}`);
      await fillDisk(join(mnt, "filler"));
      // Ids are reserved on disk in blocks of 10 000; half a block in, the next block is
      // reserved, which fails on this full disk.
      const codes = new Map<string, number>();
      for (let sent = 0; sent < 5200; sent += 32) {
        const batch = await Promise.all(Array.from({ length: 32 }, () => send(ada, "z")));
        for (const r of batch) {
          const code = typeof r === "string" ? "ok" : r.code;
          codes.set(code, (codes.get(code) ?? 0) + 1);
        }
      }
      // a few small ones may still fit the journal's last page; none may fail otherwise
      const seen = JSON.stringify([...codes]);
      assert([...codes.keys()].every((c) => c === "ok" || c === "disk_full"), seen);
      assert((codes.get("disk_full") ?? 0) > 5000, seen);
      await assertAlive(server, bob, "ids run low on a full disk");
      await Deno.remove(join(mnt, "filler"));
      const id = await send(ada, "space again");
      assert(typeof id === "string", `send after space was freed: ${(id as Error).message}`);
      assert(Number(id) > Number(first), `id ${id} after ${first}`);
    } finally {
      await ada.close();
      await bob.close();
    }
  });
});
