import { assertEquals, assertRejects } from "@std/assert";
import { join } from "@std/path";
import { RemoteError } from "../../protocol/errors.ts";
import { uploadFile } from "../../client/files/transfer_upload.ts";
import { downloadFile } from "../../client/files/transfer_download.ts";
import { downloadTree, uploadTree } from "../../client/files/transfer_tree.ts";
import { startTestServer } from "../helpers.ts";
import { exists, makeFile, sha256File, tempDir } from "./files_fixtures.ts";

for (const size of [0, 1, 65_537, 3 * 1024 * 1024 + 7, 200 * 1024 * 1024 + 3]) {
  Deno.test(`a ${size}-byte file round-trips byte for byte`, async () => {
    await using t = await startTestServer();
    await using tmp = await tempDir();
    const c = await t.connect("ada");
    const src = join(tmp.path, "src.bin");
    await makeFile(src, size, size + 1);
    const want = await sha256File(src);
    const up = await uploadFile(c, src, "f.bin");
    assertEquals([up.size, up.sha256, up.remote], [size, want, "~/f.bin"]);
    const stored = join(t.dataDir, "files", "home", "ada", "f.bin");
    assertEquals(await sha256File(stored), want);
    const dst = join(tmp.path, "dst.bin");
    const down = await downloadFile(c, { path: "f.bin" }, dst);
    assertEquals(down.sha256, want);
    assertEquals(await sha256File(dst), want);
    assertEquals(await exists(dst + ".parley-part"), false);
  });
}

Deno.test("a directory tree uploads and downloads recursively", async () => {
  await using t = await startTestServer();
  await using tmp = await tempDir();
  const c = await t.connect("ada");
  const src = join(tmp.path, "src");
  await Deno.mkdir(join(src, "a", "b"), { recursive: true });
  await Deno.mkdir(join(src, "empty"));
  await makeFile(join(src, "top.txt"), 10, 1);
  await makeFile(join(src, "a", "mid.bin"), 70_000, 2);
  await makeFile(join(src, "a", "b", "deep.bin"), 0, 3);
  await Deno.symlink("/etc/passwd", join(src, "link"));
  const up = await uploadTree(c, src, "proj");
  assertEquals(up.files.length, 3);
  assertEquals(up.skipped, [join(src, "link")]);
  const dst = join(tmp.path, "dst");
  const down = await downloadTree(c, "proj", dst);
  assertEquals(down.files.length, 3);
  for (const rel of ["top.txt", "a/mid.bin", "a/b/deep.bin"]) {
    assertEquals(await sha256File(join(dst, rel)), await sha256File(join(src, rel)));
  }
  assertEquals((await Deno.stat(join(dst, "empty"))).isDirectory, true);
  assertEquals(await exists(join(dst, "link")), false);
});

Deno.test("a download does not replace a local file without overwrite", async () => {
  await using t = await startTestServer();
  await using tmp = await tempDir();
  const c = await t.connect("ada");
  const src = join(tmp.path, "src.bin");
  await makeFile(src, 1000, 1);
  await uploadFile(c, src, "f.bin");
  const dst = join(tmp.path, "dst.bin");
  await Deno.writeTextFile(dst, "mine");
  await assertRejects(() => downloadFile(c, { path: "f.bin" }, dst), Error, "already exists");
  assertEquals(await Deno.readTextFile(dst), "mine");
  await downloadFile(c, { path: "f.bin" }, dst, { overwrite: true });
  assertEquals(await sha256File(dst), await sha256File(src));
  await assertRejects(() => uploadFile(c, src, "f.bin"), RemoteError, "already exists");
});
