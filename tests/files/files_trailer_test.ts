import { assertEquals, assertMatch, assertRejects } from "@std/assert";
import { join } from "@std/path";
import { createHash } from "node:crypto";
import { RemoteError } from "../../protocol/errors.ts";
import type { ParleyClient } from "../../client/client.ts";
import { resumeTag, uploadFile } from "../../client/files/transfer_upload.ts";
import { startTestServer } from "../helpers.ts";
import { exists, makeFile, sha256File, tempDir } from "./files_fixtures.ts";

const digest = (b: Uint8Array) => new Uint8Array(createHash("sha256").update(b).digest());
const hex = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

function bytesOf(n: number, seed = 7): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/** Opens a tagged `file.put` and sends `parts` in order, then fin. */
async function putTagged(
  c: ParleyClient,
  args: Record<string, unknown>,
  ...parts: Uint8Array[]
): Promise<unknown> {
  const { stream, result } = c.open("file.put", args);
  result.catch(() => {});
  try {
    for (const p of parts) await stream.write(p);
    stream.end();
  } catch {
    // A refusal resets the stream; the reply says why.
  }
  return await result;
}

async function tmpEntries(dataDir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(join(dataDir, "files", ".parley-tmp"))) out.push(e.name);
  return out.sort();
}

Deno.test("a tagged upload with its SHA-256 sent after the bytes is stored", async () => {
  await using t = await startTestServer();
  const c = await t.connect("ada");
  const bytes = bytesOf(300_000);
  const r = await putTagged(
    c,
    { path: "a.bin", size: bytes.length, tag: "m1-i2" },
    bytes.subarray(0, 100_000),
    // The last file bytes and the trailer in one write: the server splits them.
    new Uint8Array([...bytes.subarray(100_000), ...digest(bytes)]),
  ) as { sha256: string; size: number; resumedFrom: number };
  assertEquals(r.sha256, hex(bytes));
  assertEquals(r.size, bytes.length);
  assertEquals(r.resumedFrom, 0);
  assertEquals(await Deno.readFile(join(t.dataDir, "files", "home", "ada", "a.bin")), bytes);
  assertEquals(await tmpEntries(t.dataDir), []);
});

Deno.test("a wrong SHA-256 trailer is refused, nothing appears and the partial is dropped", async () => {
  await using t = await startTestServer();
  const c = await t.connect("ada");
  const bytes = bytesOf(50_000);
  const wrong = digest(bytes);
  wrong[0]! ^= 1;
  const err = await assertRejects(
    () => putTagged(c, { path: "w.bin", size: bytes.length, tag: "t1" }, bytes, wrong),
    RemoteError,
  );
  assertEquals(err.code, "checksum");
  assertEquals(await exists(join(t.dataDir, "files", "home", "ada", "w.bin")), false);
  assertEquals(await tmpEntries(t.dataDir), []);
});

Deno.test("a tagged upload cut off before its trailer resumes with only the trailer", async () => {
  await using t = await startTestServer();
  const c = await t.connect("ada");
  const bytes = bytesOf(80_000);
  const args = { path: "r.bin", size: bytes.length, tag: "m5" };
  const err = await assertRejects(() => putTagged(c, args, bytes), RemoteError);
  assertEquals(err.code, "bad_request");
  assertMatch(err.message, /trailer/);
  assertEquals(await exists(join(t.dataDir, "files", "home", "ada", "r.bin")), false);
  // Same tag: the server has every byte. Another tag is another upload.
  assertEquals((await c.call("file.offset", args) as { offset: number }).offset, bytes.length);
  assertEquals(
    (await c.call("file.offset", { ...args, tag: "m6" }) as { offset: number }).offset,
    0,
  );
  const r = await putTagged(c, { ...args, offset: bytes.length }, digest(bytes)) as {
    resumedFrom: number;
    sha256: string;
  };
  assertEquals(r.resumedFrom, bytes.length);
  assertEquals(r.sha256, hex(bytes));
  assertEquals(await Deno.readFile(join(t.dataDir, "files", "home", "ada", "r.bin")), bytes);
});

Deno.test("tagged uploads refuse malformed arguments and extra bytes", async () => {
  await using t = await startTestServer();
  const c = await t.connect("ada");
  const bytes = bytesOf(1000);
  const refusals: [Record<string, unknown>, Uint8Array[]][] = [
    [{ path: "x", size: 1000, tag: "t", sha256: hex(bytes) }, [bytes, digest(bytes)]],
    [{ path: "x", size: 1000, tag: "has space" }, [bytes, digest(bytes)]],
    [{ path: "x", size: 1000, tag: "" }, [bytes, digest(bytes)]],
    [{ path: "x", size: 1000, tag: "x".repeat(129) }, [bytes, digest(bytes)]],
    [{ path: "x", size: 1000, tag: "t" }, [bytes, digest(bytes), new Uint8Array(1)]],
    [{ path: "x", size: 1000 }, [bytes]],
  ];
  for (const [args, parts] of refusals) {
    const err = await assertRejects(() => putTagged(c, args, ...parts), RemoteError);
    assertEquals(err.code, "bad_request", JSON.stringify(args));
  }
  assertEquals(await exists(join(t.dataDir, "files", "home", "ada", "x")), false);
  const off = await assertRejects(
    () => c.call("file.offset", { path: "x", size: 1, tag: "a/b" }),
    RemoteError,
  );
  assertEquals(off.code, "bad_request");
});

Deno.test("uploadFile starts over when the server's partial does not match the local file", async () => {
  await using t = await startTestServer();
  const c = await t.connect("ada");
  await using dir = await tempDir();
  const local = join(dir.path, "f.bin");
  await makeFile(local, 3 << 20, 11);
  const info = await Deno.stat(local);
  // A partial under the local file's tag whose first MiB is other bytes.
  const { stream, result } = c.open("file.put", {
    path: "f.bin",
    size: info.size,
    tag: resumeTag(info),
  });
  result.catch(() => {});
  await stream.write(bytesOf(1 << 20, 3));
  await new Promise((r) => setTimeout(r, 100));
  stream.reset("cancel", "test: cut off");
  await assertRejects(() => result);
  let offset = 0;
  for (let i = 0; i < 50 && offset === 0; i++) {
    await new Promise((r) => setTimeout(r, 20));
    ({ offset } = await c.call("file.offset", {
      path: "f.bin",
      size: info.size,
      tag: resumeTag(info),
    }) as { offset: number });
  }
  assertEquals(offset > 0, true);
  const r = await uploadFile(c, local, "f.bin");
  assertEquals(r.resumedFrom, 0);
  assertEquals(r.sha256, await sha256File(local));
  assertEquals(await sha256File(join(t.dataDir, "files", "home", "ada", "f.bin")), r.sha256);
});
