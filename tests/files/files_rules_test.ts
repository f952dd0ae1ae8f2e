import { assertEquals, assertRejects } from "@std/assert";
import { join } from "@std/path";
import { createHash } from "node:crypto";
import { RemoteError } from "../../protocol/errors.ts";
import { resumeTag, uploadFile } from "../../client/files/transfer_upload.ts";
import { downloadFile } from "../../client/files/transfer_download.ts";
import { listRemote } from "../../client/files/file_list.ts";
import { startTestServer } from "../helpers.ts";
import { exists, makeFile, sha256File, tempDir } from "./files_fixtures.ts";

const hex = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function putBytes(
  c: {
    open: (
      op: string,
      args: never,
    ) => { stream: { write(b: Uint8Array): Promise<void>; end(): void }; result: Promise<unknown> };
  },
  path: string,
  bytes: Uint8Array,
  extra: Record<string, unknown> = {},
): Promise<unknown> {
  const { stream, result } = c.open("file.put", {
    path,
    size: bytes.length,
    sha256: hex(bytes),
    ...extra,
  } as never);
  await stream.write(bytes).catch(() => {});
  stream.end();
  return await result;
}

Deno.test("a wrong declared SHA-256 is refused and no file appears", async () => {
  await using t = await startTestServer();
  const c = await t.connect("ada");
  const bytes = new TextEncoder().encode("hello world");
  const { stream, result } = c.open("file.put", {
    path: "x.txt",
    size: bytes.length,
    sha256: hex(new TextEncoder().encode("hello worle")),
  });
  await stream.write(bytes);
  stream.end();
  const err = await assertRejects(() => result, RemoteError);
  assertEquals(err.code, "checksum");
  const home = join(t.dataDir, "files", "home", "ada");
  assertEquals(await exists(join(home, "x.txt")), false);
  const tmp: string[] = [];
  for await (const e of Deno.readDir(join(t.dataDir, "files", ".parley-tmp"))) tmp.push(e.name);
  assertEquals(tmp, []);
});

Deno.test("quota and largest file size are refused up front with clear errors", async () => {
  await using t = await startTestServer({
    features: { files: { quotaBytes: 1000, maxFileBytes: 600 } },
  });
  const c = await t.connect("ada");
  const big = await assertRejects(
    () => c.call("file.offset", { path: "a", size: 601, sha256: "0".repeat(64) }),
    RemoteError,
  );
  assertEquals(big.code, "too_large");
  await putBytes(c as never, "a", new Uint8Array(600));
  const over = await assertRejects(
    () => putBytes(c as never, "b", new Uint8Array(500).fill(1)),
    RemoteError,
    "quota",
  );
  assertEquals(over.code, "quota");
  await putBytes(c as never, "b", new Uint8Array(400).fill(1));
  assertEquals(((await c.call("file.usage")) as { used: number }).used, 1000);
  // Overwriting counts only the difference; removing frees space.
  await putBytes(c as never, "b", new Uint8Array(300).fill(2), { overwrite: true });
  await c.call("file.rm", { path: "a" });
  assertEquals(((await c.call("file.usage")) as { used: number }).used, 300);
  // Quotas are per user.
  const other = await t.connect("bob");
  await putBytes(other as never, "a", new Uint8Array(600));
});

Deno.test("a bad files config is refused at start with the key named", async () => {
  await assertRejects(
    async () => {
      await using _t = await startTestServer({ features: { files: { quotaBytes: -1 } } });
    },
    TypeError,
    "files.quotaBytes",
  );
});

Deno.test("overwrite needs the flag, for put and mv", async () => {
  await using t = await startTestServer();
  const c = await t.connect("ada");
  await putBytes(c as never, "a", new Uint8Array([1]));
  const e = await assertRejects(() => putBytes(c as never, "a", new Uint8Array([2])), RemoteError);
  assertEquals(e.code, "exists");
  await putBytes(c as never, "b", new Uint8Array([3]));
  const m = await assertRejects(() => c.call("file.mv", { from: "b", to: "a" }), RemoteError);
  assertEquals(m.code, "exists");
  await c.call("file.mv", { from: "b", to: "a", overwrite: true });
  const home = join(t.dataDir, "files", "home", "ada");
  assertEquals(await Deno.readFile(join(home, "a")), new Uint8Array([3]));
  assertEquals(await exists(join(home, "b")), false);
});

Deno.test("two clients uploading the same name at once leave one complete file", async () => {
  await using t = await startTestServer();
  await using tmp = await tempDir();
  const a = await t.connect("ada");
  const b = await t.connect("ada");
  const fa = join(tmp.path, "a.bin");
  const fb = join(tmp.path, "b.bin");
  await makeFile(fa, 8 * 1024 * 1024 + 1, 1);
  await makeFile(fb, 8 * 1024 * 1024 + 5, 2);
  for (const overwrite of [false, true]) {
    const rs = await Promise.allSettled([
      uploadFile(a, fa, "same.bin", { overwrite }),
      uploadFile(b, fb, "same.bin", { overwrite }),
    ]);
    const ok = rs.filter((r) => r.status === "fulfilled").length;
    if (!overwrite) assertEquals(ok, 1);
    const got = await sha256File(join(t.dataDir, "files", "home", "ada", "same.bin"));
    assertEquals([await sha256File(fa), await sha256File(fb)].includes(got), true);
    await a.call("file.rm", { path: "same.bin" });
  }
});

Deno.test("an upload cut off when its connection drops resumes from the server's offset", async () => {
  await using t = await startTestServer();
  await using tmp = await tempDir();
  const src = join(tmp.path, "big.bin");
  await makeFile(src, 48 * 1024 * 1024, 9);
  const c1 = await t.connect("ada");
  let closing: Promise<void> | undefined;
  await assertRejects(() =>
    uploadFile(c1, src, "big.bin", {
      onProgress: (p) => {
        if (p.phase === "send" && p.done > 16 * 1024 * 1024) closing ??= c1.close();
      },
    })
  );
  await closing;
  assertEquals(await exists(join(t.dataDir, "files", "home", "ada", "big.bin")), false);
  const c2 = await t.connect("ada");
  // The server notices the closed connection asynchronously: wait for the offset.
  // The partial is keyed by the local file's resume tag (modification time, inode).
  const tag = resumeTag(await Deno.stat(src));
  let offset = 0;
  for (let i = 0; i < 100 && offset === 0; i++) {
    const r = await c2.call("file.offset", {
      path: "big.bin",
      size: 48 * 1024 * 1024,
      tag,
    }) as { offset: number; busy: boolean };
    offset = r.busy ? 0 : r.offset;
    if (offset === 0) await new Promise((r) => setTimeout(r, 20));
  }
  assertEquals(offset > 0, true, "the server kept none of the cut-off upload");
  const r = await uploadFile(c2, src, "big.bin");
  assertEquals(r.resumedFrom > 0, true);
  assertEquals(r.transferred, 48 * 1024 * 1024 - r.resumedFrom);
  assertEquals(
    await sha256File(join(t.dataDir, "files", "home", "ada", "big.bin")),
    await sha256File(src),
  );
});

Deno.test("cd, pwd, ls, stat, mkdir, mv, rm and rmdir work inside the home", async () => {
  await using t = await startTestServer();
  const c = await t.connect("ada");
  await c.call("file.mkdir", { path: "a/b", parents: true });
  assertEquals(await c.call("file.cd", { path: "a" }), { cwd: "~/a" });
  assertEquals(await c.call("file.pwd"), { cwd: "~/a" });
  await putBytes(c as never, "f.txt", new TextEncoder().encode("abc"));
  const st = await c.call("file.stat", { path: "~/a/f.txt", sha256: true }) as Record<
    string,
    unknown
  >;
  assertEquals([st.type, st.size, st.sha256], ["file", 3, hex(new TextEncoder().encode("abc"))]);
  assertEquals((await listRemote(c, undefined)).entries.map((e) => e.name), ["b", "f.txt"]);
  await c.call("file.mv", { from: "f.txt", to: "b" });
  assertEquals((await listRemote(c, "~", { recursive: true })).entries.map((e) => e.name), [
    "a",
    "a/b",
    "a/b/f.txt",
  ]);
  const notEmpty = await assertRejects(() => c.call("file.rmdir", { path: "b" }), RemoteError);
  assertEquals(notEmpty.message.includes("not empty"), true);
  const isDir = await assertRejects(() => c.call("file.rm", { path: "b" }), RemoteError);
  assertEquals(isDir.message.includes("rmdir"), true);
  await c.call("file.rm", { path: "b/f.txt" });
  await c.call("file.rmdir", { path: "b" });
  const into = await assertRejects(() => c.call("file.mv", { from: "~/a", to: "~/a/x" }));
  assertEquals((into as RemoteError).code, "bad_request");
  assertEquals(await c.call("file.cd", {}), { cwd: "~" });
  // Another session has its own directory.
  const c2 = await t.connect("ada");
  assertEquals(await c2.call("file.pwd"), { cwd: "~" });
});

Deno.test("a shared file can be fetched by another user and is verified", async () => {
  await using t = await startTestServer();
  await using tmp = await tempDir();
  const ada = await t.connect("ada");
  const bob = await t.connect("bob");
  const src = join(tmp.path, "pic.bin");
  await makeFile(src, 123_457, 4);
  await uploadFile(ada, src, "shared/pic.bin", { parents: true });
  const s = await ada.call("file.share", { path: "shared/pic.bin" }) as {
    id: string;
    sha256: string;
    size: number;
  };
  assertEquals(s.sha256, await sha256File(src));
  const dst = join(tmp.path, "got.bin");
  await downloadFile(bob, { shared: s.id, sha256: s.sha256 }, dst);
  assertEquals(await sha256File(dst), s.sha256);
  // A wrong expected checksum (e.g. a tampered message) is detected and nothing is kept.
  const bad = join(tmp.path, "bad.bin");
  await assertRejects(
    () => downloadFile(bob, { shared: s.id, sha256: "f".repeat(64) }, bad),
    Error,
    "SHA-256",
  );
  assertEquals(await exists(bad), false);
  assertEquals(await exists(bad + ".parley-part"), false);
  // Bob cannot reach Ada's home by path.
  const e = await assertRejects(() => bob.call("file.stat", { path: "shared/pic.bin" }));
  assertEquals((e as RemoteError).code, "not_found");
});

Deno.test("pings stay answered while a large upload runs on the same connection", async () => {
  await using t = await startTestServer();
  await using tmp = await tempDir();
  const c = await t.connect("ada");
  const src = join(tmp.path, "big.bin");
  await makeFile(src, 256 * 1024 * 1024, 5);
  const rtts: number[] = [];
  let sending = false;
  const upload = uploadFile(c, src, "big.bin", {
    onProgress: (p) => (sending = p.phase === "send"),
  });
  let done = false;
  upload.finally(() => (done = true));
  while (!done && rtts.length < 2000) {
    if (sending) rtts.push(await c.session.ping());
    else await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 10));
  }
  await upload;
  rtts.sort((a, b) => a - b);
  const q = (f: number) => rtts[Math.min(rtts.length - 1, Math.floor(rtts.length * f))] ?? NaN;
  console.log(
    `ping during a 256 MiB upload: n=${rtts.length} p50=${q(0.5).toFixed(2)} ms ` +
      `p99=${q(0.99).toFixed(2)} ms max=${q(1).toFixed(2)} ms`,
  );
  assertEquals(rtts.length > 0, true);
});
