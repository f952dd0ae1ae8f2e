/**
 * Quota accounting holds against a user playing games with it: moving a
 * file onto itself, pipelining uploads past the check, interrupting uploads,
 * and random concurrent put/mv/rm/abort from several connections, after
 * which the usage the server reports equals the bytes on disk.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import { createHash } from "node:crypto";
import { ParleyClient } from "../../client/client.ts";
import { RemoteError } from "../../protocol/errors.ts";
import { keyBytes, startTestServer, type TestServer } from "../helpers.ts";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

interface Usage {
  used: number;
  reserved: number;
  entries: number;
}

const usage = async (c: ParleyClient) => (await c.call("file.usage")) as Usage;

/** Deterministic pseudo-random numbers (xorshift32). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

function bytes(n: number, seed: number): Uint8Array {
  const next = rng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(next() * 256);
  return out;
}

/** Uploads `data`; resolves with the reply or the error. */
async function put(
  c: ParleyClient,
  path: string,
  data: Uint8Array,
  extra: Record<string, unknown> = {},
): Promise<unknown> {
  const { stream, result } = c.open("file.put", {
    path,
    size: data.byteLength,
    sha256: sha(data),
    ...extra,
  });
  result.catch(() => {});
  try {
    if (data.byteLength > 0) await stream.write(data);
    stream.end();
  } catch {
    // refused mid-way; the result says why
  }
  return await result.catch((e) => e);
}

/**
 * Starts an upload, sends part of it, waits (bounded) for `landed` if given,
 * then resets the stream.
 */
async function abortedPut(
  c: ParleyClient,
  path: string,
  data: Uint8Array,
  sent: number,
  landed?: () => Promise<boolean>,
) {
  const { stream, result } = c.open("file.put", {
    path,
    size: data.byteLength,
    sha256: sha(data),
    overwrite: true,
  });
  result.catch(() => {});
  try {
    if (sent > 0) await stream.write(data.subarray(0, sent));
    for (let i = 0; landed && i < 200 && !(await landed()); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
  } catch {
    // refused already
  }
  stream.reset("cancel", "aborted by the test");
  await result.catch(() => {});
}

/** Bytes of regular files and number of entries under `dir`. */
async function du(dir: string, total = { bytes: 0, entries: 0 }) {
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    total.entries++;
    if (e.isDirectory) await du(p, total);
    else if (e.isFile) total.bytes += (await Deno.lstat(p)).size;
  }
  return total;
}

/** Bytes of `user`'s partial uploads in the store's temp dir. */
async function partialBytes(dataDir: string, user: string): Promise<number> {
  const tmp = join(dataDir, "files", ".parley-tmp");
  let total = 0;
  for await (const e of Deno.readDir(tmp)) {
    if (!e.name.endsWith(".json")) continue;
    const meta = JSON.parse(await Deno.readTextFile(join(tmp, e.name))) as { user: string };
    if (meta.user !== user) continue;
    const part = join(tmp, e.name.replace(/\.json$/, ".part"));
    try {
      total += (await Deno.lstat(part)).size;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  return total;
}

/** What is on disk for `user`: bytes of files in the home plus partial uploads. */
async function onDisk(t: TestServer, user: string): Promise<number> {
  return (await du(join(t.dataDir, "files", "home", user))).bytes +
    await partialBytes(t.dataDir, user);
}

/**
 * Waits (bounded) until no upload of the user is running and the reported
 * usage equals the bytes on disk; returns the last pair seen.
 */
async function settled(t: TestServer, c: ParleyClient, user: string) {
  let u = await usage(c);
  let disk = await onDisk(t, user);
  for (let i = 0; i < 100 && (u.reserved !== 0 || u.used !== disk); i++) {
    await new Promise((r) => setTimeout(r, 50));
    u = await usage(c);
    disk = await onDisk(t, user);
  }
  return { usage: u, disk };
}

Deno.test("moving a file onto itself changes neither the file nor the usage", async () => {
  await using t = await startTestServer();
  const c = await t.connect("ada");
  const data = bytes(1000, 1);
  await put(c, "f", data);
  await c.call("file.mkdir", { path: "d" });
  await put(c, "d/g", data);
  assertEquals((await usage(c)).used, 2000);
  const moves = [
    { from: "f", to: "f", overwrite: true },
    { from: "f", to: "~/f", overwrite: true },
    { from: "f", to: "f" },
    { from: "f", to: "~", overwrite: true },
    { from: "d/g", to: "d", overwrite: true },
    { from: "d", to: "~", overwrite: true },
    { from: "d", to: "d" },
  ];
  for (let round = 0; round < 3; round++) {
    for (const m of moves) {
      await c.call("file.mv", m);
      assertEquals((await usage(c)).used, 2000, `after mv ${JSON.stringify(m)}`);
    }
  }
  const home = join(t.dataDir, "files", "home", "ada");
  assertEquals(await Deno.readFile(join(home, "f")), data);
  assertEquals(await Deno.readFile(join(home, "d", "g")), data);
  // A real move still works and is still counted.
  await c.call("file.mv", { from: "d/g", to: "f", overwrite: true });
  assertEquals((await usage(c)).used, 1000);
});

Deno.test("pipelined uploads reserve their space before any is accepted", async () => {
  await using t = await startTestServer({ features: { files: { quotaBytes: 10_000 } } });
  const c = await t.connect("ada");
  // 16 uploads of 1000 bytes, all requested before any byte is sent: 10 fit.
  const uploads = Array.from({ length: 16 }, (_, i) => {
    const data = bytes(1000, 100 + i);
    const { stream, result } = c.open("file.put", {
      path: `p${i}`,
      size: data.byteLength,
      sha256: sha(data),
    });
    result.catch(() => {});
    return { data, stream, result };
  });
  await Promise.all(uploads.map(async (u) => {
    try {
      await u.stream.write(u.data);
      u.stream.end();
    } catch {
      // refused; the result says why
    }
  }));
  const results = await Promise.all(uploads.map((u) => u.result.catch((e) => e)));
  const ok = results.filter((r) => !(r instanceof Error)).length;
  const refused = results.filter((r) => r instanceof RemoteError && r.code === "quota").length;
  assertEquals(ok, 10, `accepted ${ok} uploads of 1000 bytes under a 10000-byte quota`);
  assertEquals(refused, 6);
  const s = await settled(t, c, "ada");
  assertEquals(s.usage.used, 10_000);
  assertEquals(s.disk, 10_000);
});

Deno.test("an interrupted upload counts against the quota until it is resumed or swept", async () => {
  await using t = await startTestServer({ features: { files: { quotaBytes: 100_000 } } });
  const c = await t.connect("ada");
  const big = bytes(80_000, 7);
  await abortedPut(c, "big", big, 50_000, async () => await partialBytes(t.dataDir, "ada") > 0);
  const s = await settled(t, c, "ada");
  assertEquals(s.usage.reserved, 0);
  assertEquals(s.usage.used, s.disk, "usage differs from the bytes on disk");
  assert(s.disk > 0, "the interrupted upload left no bytes");
  // What the partial holds is not free: a file that fits only without it is refused.
  const other = await put(c, "other", bytes(100_000 - s.disk + 1, 8));
  assert(other instanceof RemoteError && other.code === "quota", `not refused: ${other}`);
  // Resuming the same upload is not counted twice.
  const { offset } = await c.call("file.offset", {
    path: "big",
    size: big.byteLength,
    sha256: sha(big),
    overwrite: true,
  }) as { offset: number };
  assertEquals(offset, s.disk);
  const done = await put(c, "big", big.subarray(offset), {
    offset,
    size: big.byteLength,
    sha256: sha(big),
    overwrite: true,
  }) as { resumedFrom: number };
  assertEquals(done.resumedFrom, offset);
  const after = await settled(t, c, "ada");
  assertEquals(after.usage.used, 80_000);
  assertEquals(after.disk, 80_000);
});

Deno.test("usage equals the bytes on disk after random concurrent put/mv/rm/abort", async () => {
  await using t = await startTestServer({
    features: { files: { quotaBytes: 48 * 1024, maxPartialsPerUser: 4 } },
  });
  const conns = [await t.connect("ada"), await t.connect("ada"), await t.connect("ada")];
  await conns[0]!.call("file.mkdir", { path: "d" });
  const names = ["a", "b", "c", "d/a", "d/b", "~/a", "d"];
  const rounds = 40;
  const worker = async (c: ParleyClient, seed: number) => {
    const next = rng(seed);
    const pick = () => names[Math.floor(next() * names.length)]!;
    for (let i = 0; i < rounds; i++) {
      const r = next();
      const size = Math.floor(next() * 8192);
      try {
        if (r < 0.35) {
          await put(c, pick(), bytes(size, seed * 1000 + i), { overwrite: next() < 0.5 });
        } else if (r < 0.55) {
          // The same few contents, so some uploads resume an interrupted one.
          await abortedPut(c, pick(), bytes(size, i % 3), Math.floor(next() * size));
        } else if (r < 0.8) {
          await c.call("file.mv", { from: pick(), to: pick(), overwrite: next() < 0.7 });
        } else {
          await c.call("file.rm", { path: pick() });
        }
      } catch (e) {
        if (!(e instanceof RemoteError)) throw e;
      }
    }
  };
  for (const seed of [1, 2, 3]) {
    await Promise.all(conns.map((c, i) => worker(c, seed * 10 + i)));
    const s = await settled(t, conns[0]!, "ada");
    assertEquals(s.usage.reserved, 0, `seed ${seed}: bytes still reserved`);
    assertEquals(s.usage.used, s.disk, `seed ${seed}: usage differs from the bytes on disk`);
    const home = await du(join(t.dataDir, "files", "home", "ada"));
    assertEquals(s.usage.entries, home.entries, `seed ${seed}: entry count differs`);
  }
});

Deno.test("empty files and directories are bounded by an entry cap", async () => {
  await using t = await startTestServer({ features: { files: { maxEntriesPerUser: 5 } } });
  const c = await t.connect("ada");
  await c.call("file.mkdir", { path: "a/b", parents: true });
  await put(c, "a/e1", new Uint8Array(0));
  await put(c, "a/e2", new Uint8Array(0));
  await put(c, "e3", new Uint8Array(0));
  assertEquals((await usage(c)).entries, 5);
  for (
    const attempt of [
      () => c.call("file.mkdir", { path: "x" }),
      () => c.call("file.mkdir", { path: "a/b/c", parents: true }),
      () =>
        put(c, "e4", new Uint8Array(0)).then((r) => {
          if (r instanceof Error) throw r;
        }),
    ]
  ) {
    const e = await attempt().then(() => undefined, (err) => err);
    assert(e instanceof RemoteError && e.code === "quota", `not refused: ${e}`);
  }
  // Replacing a file adds no entry; removing one makes room.
  await put(c, "e3", new Uint8Array(0), { overwrite: true });
  await c.call("file.rm", { path: "e3" });
  await c.call("file.mkdir", { path: "x" });
  assertEquals((await usage(c)).entries, 5);
});

Deno.test("uploads per user are capped, running ones included; interrupted ones make room", async () => {
  await using t = await startTestServer({ features: { files: { maxPartialsPerUser: 2 } } });
  const a = await t.connect("ada");
  const b = await t.connect("ada");
  const data = bytes(10_000, 3);
  // Two uploads left running on two connections.
  const running = [a, b].map((c, i) => {
    const { stream, result } = c.open("file.put", {
      path: `run${i}`,
      size: data.byteLength,
      sha256: sha(data),
    });
    result.catch(() => {});
    return { stream, result };
  });
  await Promise.all(running.map((r) => r.stream.write(data.subarray(0, 1000))));
  for (let i = 0; i < 100 && (await usage(a)).reserved < 2 * data.byteLength; i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const third = await put(a, "third", data);
  assert(third instanceof RemoteError && third.code === "busy", `not refused: ${third}`);
  for (const r of running) r.stream.reset("cancel", "stopped by the test");
  await Promise.all(running.map((r) => r.result.catch(() => {})));
  await settled(t, a, "ada");
  // Both are now interrupted uploads; a new one drops the oldest.
  const done = await put(a, "third", data) as { size: number };
  assertEquals(done.size, data.byteLength);
  const s = await settled(t, a, "ada");
  let parts = 0;
  for await (const e of Deno.readDir(join(t.dataDir, "files", ".parley-tmp"))) {
    if (e.name.endsWith(".part")) parts++;
  }
  assert(parts <= 1, `${parts} partial uploads kept`);
  assertEquals(s.usage.used, s.disk);
});

Deno.test("interrupted uploads are counted after a restart, and stale ones are swept at start", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "parley-quota-" });
  let key = "";
  const again = (t: TestServer) =>
    ParleyClient.connect({
      host: "127.0.0.1",
      port: t.port,
      user: "ada",
      key: keyBytes(key),
      tls: false,
    });
  try {
    {
      await using t = await startTestServer({ dataDir });
      key = await t.addUser("ada");
      const c = await t.connect("ada");
      const data = bytes(50_000, 4);
      await abortedPut(c, "p", data, 20_000, async () => await partialBytes(dataDir, "ada") > 0);
      const s = await settled(t, c, "ada");
      assert(s.usage.used > 0 && s.usage.used === s.disk, JSON.stringify(s));
    }
    const left = await partialBytes(dataDir, "ada");
    assert(left > 0);
    {
      await using t = await startTestServer({ dataDir });
      await using c = await again(t);
      assertEquals((await usage(c)).used, left, "the partial is not counted after a restart");
    }
    // 0.0001 h is 0.36 s: after a second the partial is stale and the start sweeps it.
    await new Promise((r) => setTimeout(r, 1000));
    {
      await using t = await startTestServer({
        dataDir,
        features: { files: { partialTtlHours: 0.0001 } },
      });
      await using c = await again(t);
      assertEquals((await usage(c)).used, 0);
      assertEquals(await partialBytes(dataDir, "ada"), 0);
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
