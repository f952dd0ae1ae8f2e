import { assertEquals, assertRejects, assertThrows } from "@std/assert";
import { join } from "@std/path";
import { RemoteError } from "../../protocol/errors.ts";
import { parseRemotePath, PathError } from "../../server/files/remote_path.ts";
import { startTestServer } from "../helpers.ts";
import { sha256File } from "./files_fixtures.ts";

/** Paths that must never resolve: traversal, absolute, odd encodings, overlong. */
const HOSTILE: string[] = [
  "..",
  "../x",
  "../../etc/passwd",
  "a/../../x",
  "a/./b",
  ".",
  "./x",
  "/etc/passwd",
  "/",
  "//server/share",
  "a\0b",
  "x\0",
  "..\\..\\x",
  "a\\b",
  "C:\\Windows",
  "a\nb",
  "a\rb",
  "a\tb",
  "\x1b[2Jx",
  "a\x7fb",
  "a\u0085b",
  "..\u2215x",
  "..\u2044x",
  "..\uff0fx",
  "a\u202eb",
  "a\u200bb",
  "\ufeffx",
  "caf\u0065\u0301", // decomposed é: not NFC
  "\ud800x",
  "x".repeat(256),
  ("a/".repeat(2100)) + "x",
  "a/".repeat(70) + "x",
  "~/../x",
  "~/..",
  "a/..",
];

Deno.test("the path parser refuses every hostile path", () => {
  assertEquals(HOSTILE.length >= 25, true);
  for (const p of HOSTILE) {
    assertThrows(() => parseRemotePath(p, ["sub"]), PathError, undefined, JSON.stringify(p));
  }
  assertThrows(() => parseRemotePath(42), PathError);
  assertThrows(() => parseRemotePath(["a"]), PathError);
});

Deno.test("the path parser resolves ordinary paths under the home", () => {
  assertEquals(parseRemotePath("a/b.txt", ["d"]), ["d", "a", "b.txt"]);
  assertEquals(parseRemotePath("~", ["d"]), []);
  assertEquals(parseRemotePath("~/x/", ["d"]), ["x"]);
  assertEquals(parseRemotePath("a//b", []), ["a", "b"]);
  assertEquals(parseRemotePath("caf\u00e9 ..x .hidden", []), ["caf\u00e9 ..x .hidden"]);
  assertEquals(parseRemotePath("x".repeat(255), []), ["x".repeat(255)]);
});

Deno.test("hostile paths are refused over the wire and nothing outside the root changes", async () => {
  await using t = await startTestServer();
  const c = await t.connect("ada");
  // A canary outside the store, and a symlink planted inside a home pointing at it.
  const canaryDir = join(t.dataDir, "outside");
  await Deno.mkdir(canaryDir);
  const canary = join(canaryDir, "canary.txt");
  await Deno.writeTextFile(canary, "do not touch");
  const home = join(t.dataDir, "files", "home", "ada");
  await c.call("file.mkdir", { path: "real" });
  await Deno.symlink(canaryDir, join(home, "evil"));
  await Deno.symlink(canary, join(home, "evil.txt"));
  const before = await sha256File(canary);
  const listing = async () => {
    const names: string[] = [];
    for await (const e of Deno.readDir(canaryDir)) names.push(e.name);
    return names.sort();
  };
  const body = new TextEncoder().encode("payload");
  const sha = "239f59ed55e737c77147cf55ad0c1b030b6d7ee748a7426952f9b852d5a935e5";
  const attempts = (p: string): [string, Record<string, unknown>][] => [
    ["file.stat", { path: p }],
    ["file.mkdir", { path: p }],
    ["file.mkdir", { path: p, parents: true }],
    ["file.rm", { path: p }],
    ["file.rmdir", { path: p }],
    ["file.mv", { from: "real", to: p }],
    ["file.mv", { from: p, to: "moved" }],
    ["file.cd", { path: p }],
    ["file.offset", { path: p, size: body.length, sha256: sha }],
    ["file.share", { path: p }],
  ];
  const planted = ["evil", "evil/canary.txt", "evil/new.txt", "evil.txt", "real/../evil"];
  for (const p of [...HOSTILE, ...planted]) {
    for (const [op, args] of attempts(p)) {
      const err = await assertRejects(() => c.call(op, args as never), RemoteError);
      assertEquals(
        ["bad_request", "forbidden", "not_found", "exists"].includes(err.code),
        true,
        `${op} ${JSON.stringify(p)}: ${err.code}`,
      );
    }
    for (const op of ["file.put", "file.get", "file.ls"]) {
      const args = op === "file.put"
        ? { path: p, size: body.length, sha256: sha, overwrite: true, parents: true }
        : { path: p };
      const { stream, result } = c.open(op, args, { fin: op !== "file.put" });
      if (op === "file.put") stream.write(body).catch(() => {});
      const err = await assertRejects(() => result, RemoteError, undefined, `${op} ${p}`);
      assertEquals(
        ["bad_request", "forbidden", "not_found"].includes(err.code),
        true,
        `${op} ${JSON.stringify(p)}: ${err.code}`,
      );
      await stream.read().catch(() => null);
    }
  }
  assertEquals(await sha256File(canary), before);
  assertEquals(await listing(), ["canary.txt"]);
  assertEquals((await Deno.lstat(join(home, "evil"))).isSymlink, true);
  // The session still works afterwards.
  assertEquals(await c.call("file.pwd"), { cwd: "~" });
});
