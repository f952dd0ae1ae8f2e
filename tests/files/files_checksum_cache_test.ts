import { assertEquals, assertNotEquals } from "@std/assert";
import { join } from "@std/path";
import { downloadFile } from "../../client/files/transfer_download.ts";
import { ChecksumCache } from "../../server/embedded/files_checksum_cache.ts";
import { startTestServer } from "../helpers.ts";
import { makeFile, sha256File } from "./files_fixtures.ts";

Deno.test("a file changed on the server after a download is never served with its old checksum", async () => {
  await using t = await startTestServer();
  const c = await t.connect("ada");
  const local = await Deno.makeTempDir({ prefix: "parley-sums-" });
  try {
    const home = join(t.dataDir, "files", "home", "ada");
    await Deno.mkdir(home, { recursive: true });
    const served = join(home, "f.bin");
    await makeFile(served, 3 * 1024 * 1024 + 5, 1);
    await new Promise((r) => setTimeout(r, 2100)); // old enough to be remembered
    const dst = join(local, "f.bin");
    const first = await downloadFile(c, { path: "f.bin" }, dst);
    assertEquals(first.sha256, await sha256File(served));
    const again = await downloadFile(c, { path: "f.bin" }, dst, { overwrite: true });
    assertEquals(again.sha256, first.sha256);
    // Same size and the old mtime restored: only the content (and so the ctime) differs.
    const before = await Deno.stat(served);
    await makeFile(served, before.size, 2);
    await Deno.utime(served, before.atime!, before.mtime!);
    const changed = await downloadFile(c, { path: "f.bin" }, dst, { overwrite: true });
    assertNotEquals(changed.sha256, first.sha256);
    assertEquals(changed.sha256, await sha256File(served));
    assertEquals(await sha256File(dst), changed.sha256);
  } finally {
    await Deno.remove(local, { recursive: true });
  }
});

Deno.test("the checksum cache skips files changed in the last seconds", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-sums-" });
  try {
    await Deno.writeTextFile(join(dir, "new"), "x");
    const info = await Deno.stat(join(dir, "new"));
    const cache = new ChecksumCache();
    cache.set(info, "a".repeat(64));
    assertEquals(cache.get(info), undefined);
    cache.set(info, "a".repeat(64), info.ctime!.getTime() + 5000);
    assertEquals(cache.get(info), "a".repeat(64));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the checksum cache keeps at most its bound and forgets the oldest entry", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-sums-" });
  try {
    const cache = new ChecksumCache(2);
    const infos: Deno.FileInfo[] = [];
    for (const name of ["a", "b", "c"]) {
      await Deno.writeTextFile(join(dir, name), name);
      infos.push(await Deno.stat(join(dir, name)));
    }
    const later = Date.now() + 5000;
    cache.set(infos[0]!, "a".repeat(64), later);
    cache.set(infos[1]!, "b".repeat(64), later);
    cache.set(infos[2]!, "c".repeat(64), later);
    assertEquals(cache.get(infos[0]!), undefined);
    assertEquals(cache.get(infos[1]!), "b".repeat(64));
    assertEquals(cache.get(infos[2]!), "c".repeat(64));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
