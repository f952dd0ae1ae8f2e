/**
 * Hostile file requests that try to deny service: hundreds of pipelined
 * whole-file checksums, moves that build a tree past the depth or path
 * length limits, and listings of directories far larger than a frame
 * header. After each, the server still serves others, no stored byte
 * changed and memory stayed near its baseline.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import { createHash } from "node:crypto";
import type { ParleyClient } from "../../client/client.ts";
import { listRemote } from "../../client/files/file_list.ts";
import { RemoteError } from "../../protocol/errors.ts";
import { MAX_DEPTH } from "../../server/files/remote_path.ts";
import type { RawHeader } from "../../protocol/frame_codec.ts";
import { putBytes } from "../files/files_fixtures.ts";
import { RSS_MARGIN, startTarget, type Target } from "./harness.ts";
import { concat, macFrame, rawLogin, send } from "./raw.ts";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

function put(c: ParleyClient, path: string, data: Uint8Array, parents = false) {
  return putBytes(c, path, data, { parents });
}

/** The remote error a call ends with (fails the test if it succeeds). */
async function refused(p: Promise<unknown>): Promise<RemoteError> {
  const r = await p.then((v) => v, (e) => e);
  assert(r instanceof RemoteError, `expected a refusal, got ${JSON.stringify(r)}`);
  return r;
}

/** CPU time a process has used, in whole seconds (`ps -o cputimes`). */
async function cpuSeconds(pid: number): Promise<number> {
  const out = await new Deno.Command("ps", { args: ["-o", "cputimes=", "-p", String(pid)] })
    .output();
  return Number(new TextDecoder().decode(out.stdout).trim()) || 0;
}

/**
 * Sends `n` copies of a request in one write on a raw logged-in connection
 * and collects the `res` headers (bounded by a deadline).
 */
async function pipelined(
  target: Target,
  user: string,
  n: number,
  op: string,
  args: Record<string, unknown>,
): Promise<RawHeader[]> {
  const raw = await rawLogin(target.port, user, target.keys[user]!);
  const out: RawHeader[] = [];
  const timer = setTimeout(() => raw.conn.close(), 60_000);
  try {
    const frames = Array.from(
      { length: n },
      (_, i) => macFrame(raw.mac, { t: "req", id: i + 1, op, args }),
    );
    assert(await send(raw.conn, concat(...frames)), "the server closed the connection");
    while (out.length < n) {
      const f = await raw.link.reader.next();
      if (!f) break;
      if (f.header.t === "res") out.push(f.header);
    }
  } finally {
    clearTimeout(timer);
    try {
      raw.conn.close();
    } catch {
      // closed by the deadline
    }
  }
  return out;
}

Deno.test("400 pipelined checksum requests are capped per user and do not grow memory", async () => {
  await using target = await startTarget();
  const ada = await target.client("ada");
  const observer = await target.client("observer");
  const data = new Uint8Array(8 * 1024 * 1024);
  crypto.getRandomValues(data.subarray(0, 65536));
  const digest = sha(data);
  await put(ada, "big.bin", data);
  await put(observer, "mine.txt", new TextEncoder().encode("observer's"));
  await target.baseline();
  const base = await target.rss();
  const cpuBefore = await cpuSeconds(target.pid);
  let peak = base;
  let sampling = true;
  const sampler = (async () => {
    for (let i = 0; sampling && i < 3000; i++) {
      peak = Math.max(peak, await target.rss());
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const attack = pipelined(target, "ada", 400, "file.stat", { path: "big.bin", sha256: true });
  // Another user's checksum is served meanwhile.
  const theirs = await observer.call("file.stat", { path: "mine.txt", sha256: true }) as {
    sha256: string;
  };
  assertEquals(theirs.sha256, sha(new TextEncoder().encode("observer's")));
  const replies = await attack;
  sampling = false;
  await sampler;
  const cpu = await cpuSeconds(target.pid) - cpuBefore;
  assertEquals(replies.length, 400, "not every request was answered");
  let ok = 0;
  let busy = 0;
  let hashBusy = 0;
  for (const r of replies) {
    if (r.ok === true) {
      assertEquals((r.data as { sha256: string }).sha256, digest);
      ok++;
    } else {
      assertEquals(r.code, "busy", String(r.msg));
      busy++;
      if (/checksum/.test(String(r.msg))) hashBusy++;
    }
  }
  console.log(
    `400 pipelined sha256 stats: ${ok} answered, ${busy} busy (${hashBusy} by the hashing cap); ` +
      `server RSS peak +${((peak - base) / 2 ** 20).toFixed(1)} MiB, CPU ~${cpu} s`,
  );
  assert(hashBusy > 0, "no request was refused by the hashing cap");
  assert(ok >= 2, "no checksum was computed");
  assert(
    peak - base < RSS_MARGIN,
    `server RSS grew by ${((peak - base) / 2 ** 20).toFixed(1)} MiB during the attack`,
  );
  await target.check("pipelined checksums");
});

Deno.test("mv refuses to build a tree deeper or longer than the limits", async () => {
  await using target = await startTarget();
  const ada = await target.client("ada");
  const chain = (name: string, n: number) => Array(n).fill(name).join("/");
  // Two 40-level trees: either fits, one under the other would be 80 levels.
  await ada.call("file.mkdir", { path: chain("a", 40), parents: true });
  await ada.call("file.mkdir", { path: chain("b", 40), parents: true });
  await put(ada, `${chain("a", 40)}/leaf.txt`, new TextEncoder().encode("leaf"));
  await target.baseline();
  const deep = await refused(ada.call("file.mv", { from: "a", to: chain("b", 40) }));
  assertEquals(deep.code, "bad_request");
  assert(deep.message.includes(`${MAX_DEPTH} levels`), deep.message);
  // The trick behind a 1 008-level tree: move a tree under itself over and over.
  const again = await refused(ada.call("file.mv", { from: "b", to: chain("a", 40) }));
  assertEquals(again.code, "bad_request");
  // 200-byte names: 12 levels (2 411 bytes) under 10 levels (2 009 bytes) is too long.
  const x = "x".repeat(200);
  const y = "y".repeat(200);
  await ada.call("file.mkdir", { path: chain(x, 12), parents: true });
  await ada.call("file.mkdir", { path: chain(y, 10), parents: true });
  await target.baseline();
  const long = await refused(ada.call("file.mv", { from: x, to: chain(y, 10) }));
  assertEquals(long.code, "bad_request");
  assert(/longer than \d+ bytes/.test(long.message), long.message);
  // mkdir -p and put -p are held to the same limits.
  assertEquals(
    (await refused(ada.call("file.mkdir", { path: chain("c", MAX_DEPTH + 1), parents: true })))
      .code,
    "bad_request",
  );
  assertEquals(
    (await refused(put(ada, `${chain("c", MAX_DEPTH)}/f`, new Uint8Array(1), true))).code,
    "bad_request",
  );
  // 16 names of 255 bytes (4 095 bytes) fit the protocol's limit but not the
  // server's PATH_MAX once under the data dir: a clear refusal, not an internal error.
  assertEquals(
    (await refused(ada.call("file.mkdir", { path: chain("z".repeat(255), 16), parents: true })))
      .code,
    "bad_request",
  );
  await target.check("deep moves");
  // Moves within the limits still work: 40 levels under 20 is 61.
  await ada.call("file.mkdir", { path: chain("c", 20), parents: true });
  await ada.call("file.mv", { from: "a", to: chain("c", 20) });
  const moved = await ada.call("file.stat", {
    path: `${chain("c", 20)}/${chain("a", 40)}/leaf.txt`,
  });
  assertEquals((moved as { size: number }).size, 4);
  const listing = await listRemote(ada, "~", { recursive: true });
  const depth = Math.max(...listing.entries.map((e) => e.name.split("/").length));
  assert(depth <= MAX_DEPTH, `a listed path is ${depth} levels deep`);
});

Deno.test("a directory of many long names lists completely, never as one oversized reply", async () => {
  await using target = await startTarget();
  const ada = await target.client("ada");
  // 400 names of 250 bytes: about 100 KiB of names, well past a 64 KiB header.
  const names = Array.from(
    { length: 400 },
    (_, i) => `${String(i).padStart(4, "0")}${"n".repeat(246)}`,
  );
  await ada.call("file.mkdir", { path: "many" });
  const home = join(target.dataDir, "files", "home", "ada", "many");
  for (const n of names) await Deno.mkdir(join(home, n));
  await Deno.writeFile(join(home, names[0]!, "inner.txt"), new Uint8Array(3));
  await target.baseline();
  const flat = await listRemote(ada, "many");
  assertEquals(flat.entries.map((e) => e.name), names);
  const deep = await listRemote(ada, "many", { recursive: true });
  assertEquals(deep.entries.length, names.length + 1);
  assertEquals(deep.entries[1]!.name, `${names[0]}/inner.txt`);
  await target.check("long listing");
});
