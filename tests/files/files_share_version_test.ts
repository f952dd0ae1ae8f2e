/**
 * A share serves exactly what was shared: after the owner replaces the file
 * with other bytes of the same size, a holder gets an error and not one byte
 * of the new content. Share records are bounded per user.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { concat } from "@std/bytes/concat";
import type { ParleyClient } from "../../client/client.ts";
import { RemoteError } from "../../protocol/errors.ts";
import { putBytes } from "./files_fixtures.ts";
import { startTestServer } from "../helpers.ts";

function filled(n: number, value: number): Uint8Array {
  return new Uint8Array(n).fill(value);
}

function put(c: ParleyClient, path: string, data: Uint8Array, overwrite = false) {
  return putBytes(c, path, data, { overwrite });
}

/** Fetches a share: the bytes received (whatever happens) and the reply or error. */
async function fetchShared(c: ParleyClient, id: string) {
  const { stream, result } = c.open("file.get", { shared: id }, { fin: true });
  result.catch(() => {});
  const got: Uint8Array[] = [];
  try {
    for (let b = await stream.read(); b; b = await stream.read()) got.push(b.slice());
  } catch {
    // reset by the server; the result says why
  }
  return { bytes: concat(got), reply: await result.catch((e) => e) };
}

Deno.test("a shared file replaced by other bytes of the same size is never served", async () => {
  await using t = await startTestServer();
  const ada = await t.connect("ada");
  const bob = await t.connect("bob");
  const original = filled(256 * 1024, 0x41);
  await put(ada, "photo.jpg", original);
  const { id } = await ada.call("file.share", { path: "photo.jpg" }) as { id: string };
  const before = await fetchShared(bob, id);
  assertEquals(before.bytes, original, "the unchanged share is served");
  const replacement = filled(original.byteLength, 0x42);
  await put(ada, "photo.jpg", replacement, true);
  const after = await fetchShared(bob, id);
  assertEquals(
    after.bytes.indexOf(0x42),
    -1,
    `${after.bytes.byteLength} bytes of the new content reached the share holder`,
  );
  const refused = after.reply as RemoteError;
  assert(refused instanceof RemoteError, `not refused: ${refused}`);
  assertEquals(refused.code, "not_found");
  assertEquals(after.bytes.byteLength, 0);
  // Putting the shared content back serves it again.
  await put(ada, "photo.jpg", original, true);
  assertEquals((await fetchShared(bob, id)).bytes, original);
});

Deno.test("share records are bounded per user; forgotten shares of removed files make room", async () => {
  await using t = await startTestServer({ features: { files: { maxSharesPerUser: 3 } } });
  const ada = await t.connect("ada");
  for (let i = 0; i < 4; i++) await put(ada, `f${i}`, filled(10, i));
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    ids.push((await ada.call("file.share", { path: `f${i}` }) as { id: string }).id);
  }
  // Sharing the same file again gives the same record, not a new one.
  for (let i = 0; i < 5; i++) {
    assertEquals((await ada.call("file.share", { path: "f0" }) as { id: string }).id, ids[0]);
  }
  const full = await ada.call("file.share", { path: "f3" }).catch((e) => e);
  assert(full instanceof RemoteError && full.code === "quota", `not refused: ${full}`);
  await ada.call("file.rm", { path: "f1" });
  const { id } = await ada.call("file.share", { path: "f3" }) as { id: string };
  assert(!ids.includes(id));
  let records = 0;
  for await (const _ of Deno.readDir(`${t.dataDir}/files/shares`)) records++;
  assertEquals(records, 3);
});
