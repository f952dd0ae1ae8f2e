/**
 * The files feature against the embedded files backend, without a server
 * process or socket: a real client Session talks to a real server Session over
 * an in-memory transport pair, and the server side dispatches to the feature's
 * operations.
 */
import { assertEquals } from "@std/assert";
import { decodeHex } from "@std/encoding/hex";
import type { Session } from "../../protocol/session.ts";
import { openEmbeddedFiles } from "../../server/embedded/files.ts";
import { createFileFeature } from "../../server/files/mod.ts";
import { bytesOf, collect, sha256Hex } from "../backend/files_contract.ts";
import { embeddedConfig, quietLogger } from "../backend/files_embedded_fixture.ts";
import { hostFeature, remoteCode, testAccount } from "../feature_fixture.ts";
import { readAll } from "../protocol/protocol_fixture.ts";

interface _Harness extends AsyncDisposable {
  /** A new connection of `user`. */
  connect(user: string): Promise<Session>;
}

async function _start(files: Record<string, unknown> = {}): Promise<_Harness> {
  const dataDir = await Deno.makeTempDir({ prefix: "parley-files-feature-" });
  const log = quietLogger();
  const backend = await openEmbeddedFiles(embeddedConfig(dataDir, files), log);
  const feature = await createFileFeature({ backend: { files: backend }, config: files, log });
  const host = hostFeature(feature);
  return {
    connect: async (user) => (await host.connect(testAccount(user))).client,
    async [Symbol.asyncDispose]() {
      await host[Symbol.asyncDispose]();
      await backend.close();
      await Deno.remove(dataDir, { recursive: true });
    },
  };
}

async function _put(
  c: Session,
  path: string,
  data: Uint8Array,
  args: Record<string, unknown> = {},
): Promise<unknown> {
  const { stream, result } = c.open("file.put", { path, size: data.byteLength, ...args } as never);
  await stream.write(data);
  stream.end();
  return await result;
}

Deno.test("files feature: an upload is stored and downloads byte for byte with its SHA-256", async () => {
  await using h = await _start();
  const c = await h.connect("ada");
  const data = bytesOf(600_000, 4);
  const sha256 = await sha256Hex(data);
  const put = await _put(c, "one.bin", data, { sha256 }) as { sha256: string; size: number };
  assertEquals([put.sha256, put.size], [sha256, data.byteLength]);
  const { stream, result } = c.open("file.get", { path: "one.bin" }, { fin: true });
  const got = await readAll(stream);
  assertEquals(got, data);
  assertEquals((await result as { sha256: string }).sha256, sha256);
  const from = c.open("file.get", { path: "one.bin", offset: 123_456 }, { fin: true });
  assertEquals(await readAll(from.stream), data.subarray(123_456));
  assertEquals((await from.result as { sha256: string }).sha256, sha256);
});

Deno.test("files feature: a wrong SHA-256 trailer stores nothing and frees the reservation", async () => {
  await using h = await _start();
  const c = await h.connect("ada");
  const data = bytesOf(50_000, 6);
  const body = new Uint8Array(data.byteLength + 32);
  body.set(data);
  body.set(decodeHex("ff".repeat(32)), data.byteLength);
  assertEquals(
    await remoteCode(_put(c, "bad.bin", body, { size: data.byteLength, tag: "t1" })),
    "checksum",
  );
  assertEquals(await remoteCode(c.call("file.stat", { path: "bad.bin" })), "not_found");
  const usage = await c.call("file.usage") as Record<string, number>;
  assertEquals([usage.used, usage.reserved, usage.entries], [0, 0, 0]);
});

Deno.test("files feature: the current directory belongs to one connection", async () => {
  await using h = await _start();
  const one = await h.connect("ada");
  const two = await h.connect("ada");
  await one.call("file.mkdir", { path: "docs" });
  assertEquals(await one.call("file.cd", { path: "docs" }), { cwd: "~/docs" });
  assertEquals(await two.call("file.pwd"), { cwd: "~" });
  const data = bytesOf(10);
  await _put(one, "note.txt", data, { sha256: await sha256Hex(data) });
  const st = await two.call("file.stat", { path: "docs/note.txt" }) as { size: number };
  assertEquals(st.size, 10);
  assertEquals(await remoteCode(two.call("file.stat", { path: "note.txt" })), "not_found");
});

Deno.test("files feature: a connection runs at most maxTransfersPerConnection transfers", async () => {
  await using h = await _start({ maxTransfersPerConnection: 1 });
  const c = await h.connect("ada");
  const other = await h.connect("ada");
  const first = c.open("file.put", { path: "slow.bin", size: 10, tag: "slow" });
  await first.stream.write(bytesOf(4));
  // The first transfer is running once its bytes are stored.
  for (let i = 0; i < 500; i++) {
    const off = await c.call("file.offset", { path: "slow.bin", size: 10, tag: "slow" });
    if ((off as { busy: boolean }).busy) break;
    await new Promise((r) => setTimeout(r, 2));
  }
  const second = c.open("file.get", { path: "~" }, { fin: true });
  assertEquals(await remoteCode(second.result), "busy");
  await second.stream.failed;
  // Another connection has its own count.
  await other.call("file.mkdir", { path: "d" });
  const ls = other.open("file.ls", { path: "~" }, { fin: true });
  const listed = new TextDecoder().decode(await collect(ls.stream.readable));
  assertEquals(JSON.parse(listed.trim()).name, "d");
  await ls.result;
  first.stream.reset();
  await first.result.catch(() => {});
});
