/**
 * The one-shot commands in scripts, run as processes against a real server:
 * `-` for standard input and output, sharing a file and fetching it by the
 * chat message's id, `user set` seen by the running server, `ls -l` sizes,
 * plural forms and NFC remote names.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { join } from "@std/path";
import { ChatClient } from "../../client/chat/chat_client.ts";
import { EXIT, EXIT_BROKEN_PIPE } from "../../cli/exit_codes.ts";
import { RemoteError } from "../../protocol/errors.ts";
import { CHAT_MUTE } from "../../protocol/ops/chat.ts";
import { parleyProcessArgs, runParleyUser, startTestServer } from "../helpers.ts";
import { makeFile, sha256File, tempDir } from "../files/files_fixtures.ts";
import { record, waitFor } from "../chat/chat_helpers.ts";
import { cliEnv, runCli } from "./cli_helpers.ts";

const _LIMITS = { loginFailuresPerUser: 1000, loginFailuresPerAddress: 1000 };

Deno.test("send - posts standard input; an empty one is a usage error", async () => {
  await using t = await startTestServer({ limits: _LIMITS });
  const key = await t.addUser("ada");
  const bob = await ChatClient.start(await t.connect("bob"));
  const got = record(bob);
  await bob.join("lobby");
  const env = cliEnv(t.url("ada"), key);
  const sent = await runCli({ env, stdin: "line one\nline two\n" }, "send", "lobby", "-");
  assertEquals(sent.code, EXIT.ok, sent.stderr);
  await waitFor(() => got.msgs.length === 1, "the message from stdin");
  assertEquals(got.msgs[0]!.text, "line one\nline two");
  const empty = await runCli({ env, stdin: "" }, "send", "lobby", "-");
  assertEquals(empty.code, EXIT.usage);
  assertStringIncludes(empty.stderr, "standard input was empty");
  bob.close();
});

Deno.test("get REMOTE - writes exactly the file to stdout and nothing else", async () => {
  await using t = await startTestServer({ limits: _LIMITS });
  await using tmp = await tempDir();
  const key = await t.addUser("ada");
  const env = cliEnv(t.url("ada"), key);
  const src = join(tmp.path, "data.bin");
  await makeFile(src, 3 * 1024 * 1024 + 17, 5);
  assertEquals((await runCli({ env }, "put", "-q", src, "data.bin")).code, EXIT.ok);
  const r = await runCli({ env }, "get", "data.bin", "-");
  assertEquals(r.code, EXIT.ok, r.stderr);
  assertEquals(r.stderr, "");
  assertEquals(r.bytes, await Deno.readFile(src));
  // No local file appears, and --json or -r cannot go with -.
  assertEquals([...Deno.readDirSync(tmp.path)].map((e) => e.name), ["data.bin"]);
  assertEquals((await runCli({ env }, "get", "--json", "data.bin", "-")).code, EXIT.usage);
  assertEquals((await runCli({ env }, "get", "-r", "data.bin", "-")).code, EXIT.usage);
});

Deno.test("get REMOTE - whose reader stops early exits 141 without a message", async () => {
  await using t = await startTestServer({ limits: _LIMITS });
  await using tmp = await tempDir();
  const key = await t.addUser("ada");
  const env = cliEnv(t.url("ada"), key);
  const src = join(tmp.path, "big.bin");
  await makeFile(src, 64 * 1024 * 1024, 2);
  assertEquals((await runCli({ env }, "put", "-q", src, "big.bin")).code, EXIT.ok);
  const child = new Deno.Command(Deno.execPath(), {
    args: parleyProcessArgs("get", "big.bin", "-"),
    env: { NO_COLOR: "1", XDG_CONFIG_HOME: "/nonexistent", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.getReader();
  const first = await reader.read();
  assert(!first.done && first.value.byteLength > 0);
  await reader.cancel(); // as `| head -c 1` does
  const status = await child.status;
  const stderr = new TextDecoder().decode(
    await new Response(child.stderr).arrayBuffer(),
  );
  assertEquals(status.code, EXIT_BROKEN_PIPE, stderr);
  assertEquals(stderr, "");
});

Deno.test("share posts a file that others fetch by the message id", async () => {
  await using t = await startTestServer({ limits: _LIMITS });
  await using tmp = await tempDir();
  const adaKey = await t.addUser("ada");
  const bobKey = await t.addUser("bob");
  const ada = cliEnv(t.url("ada"), adaKey);
  const bob = cliEnv(t.url("bob"), bobKey);
  const watcher = await ChatClient.start(await t.connect("cy"));
  const got = record(watcher);
  await watcher.join("team");
  const src = join(tmp.path, "notes.txt");
  await Deno.writeTextFile(src, "minutes of today\n");

  const shared = await runCli(
    { env: ada },
    "share",
    "--json",
    src,
    "--room",
    "#team",
    "--text",
    "the minutes",
  );
  assertEquals(shared.code, EXIT.ok, shared.stderr);
  const info = JSON.parse(shared.stdout) as { id: string; room: string; name: string };
  assertEquals([info.room, info.name], ["team", "notes.txt"]);
  await waitFor(() => got.msgs.length === 1, "the shared file's message");
  const msg = got.msgs[0]!;
  assertEquals([msg.id, msg.text, msg.file?.name], [info.id, "the minutes", "notes.txt"]);

  // Another user fetches it by the message id: to stdout and into a directory.
  const out = await runCli({ env: bob }, "get", "--shared", info.id, "-");
  assertEquals(out.code, EXIT.ok, out.stderr);
  assertEquals(out.stdout, "minutes of today\n");
  await Deno.mkdir(join(tmp.path, "in"));
  const saved = await runCli({ env: bob, cwd: tmp.path }, "get", "--shared", info.id, "in/");
  assertEquals(saved.code, EXIT.ok, saved.stderr);
  assertEquals(await sha256File(join(tmp.path, "in", "notes.txt")), await sha256File(src));

  // Without --room it goes to the default room; sharing the same file again reuses the upload.
  const again = await runCli({ env: ada }, "share", src);
  assertEquals(again.code, EXIT.ok, again.stderr);
  assertMatch(
    again.stdout,
    /^shared notes\.txt \(17 B\) in #lobby as message (\d+); fetch it with: parley get --shared \1\n$/,
  );

  // A message without a file, and an id that is neither a message id nor a share id.
  const plain = await runCli({ env: ada }, "send", "team", "no file here");
  assertEquals(plain.code, EXIT.ok);
  await waitFor(() => got.msgs.length === 2, "the plain message");
  const none = await runCli({ env: bob }, "get", "--shared", got.msgs[1]!.id, "-");
  assertEquals(none.code, EXIT.notFound);
  assertStringIncludes(none.stderr, "carries no file");
  assertEquals((await runCli({ env: bob }, "get", "--shared", "x1", "-")).code, EXIT.usage);
  watcher.close();
});

Deno.test("user set grants and takes rights; the running server applies them", async () => {
  await using t = await startTestServer({ limits: _LIMITS });
  await t.addUser("bob");
  const ada = await t.connect("ada");
  const unmute = () => ada.call(CHAT_MUTE, { user: "bob", off: true });
  const refused = await unmute().then(() => undefined, (e) => e);
  assert(refused instanceof RemoteError && refused.code === "forbidden", String(refused));

  const taken = await runParleyUser(t.dataDir, "add", "ada", "--admin");
  assertEquals(taken.code, EXIT.conflict, taken.stderr);
  assertStringIncludes(taken.stderr, "parley user set ada");

  const set = await runParleyUser(t.dataDir, "set", "ada", "--admin", "--exec");
  assertEquals(set.code, EXIT.ok, set.stderr);
  assertEquals(set.stdout, "User ada: admin,exec.\n");
  let ok = false;
  for (let i = 0; i < 200 && !ok; i++) {
    ok = await unmute().then(() => true, () => false);
    if (!ok) await new Promise((r) => setTimeout(r, 50));
  }
  assert(ok, "ada's open connection did not become admin");
  const list = JSON.parse((await runParleyUser(t.dataDir, "list", "--json")).stdout) as {
    name: string;
    admin: boolean;
    exec: boolean;
  }[];
  const listed = list.find((u) => u.name === "ada");
  assertEquals([listed?.admin, listed?.exec], [true, true]);
  const none = await runParleyUser(t.dataDir, "set", "ada");
  assertEquals(none.code, EXIT.usage);
  const back = await runParleyUser(t.dataDir, "set", "ada", "--no-exec", "--no-admin", "--json");
  assertEquals(back.code, EXIT.ok, back.stderr);
  assertEquals([JSON.parse(back.stdout).admin, JSON.parse(back.stdout).exec], [false, false]);
});

Deno.test("ls -l shows sizes for people, tree transfers count in plural forms, names go NFC", async () => {
  await using t = await startTestServer({ limits: _LIMITS });
  await using tmp = await tempDir();
  const key = await t.addUser("ada");
  const env = cliEnv(t.url("ada"), key);
  const run = (...args: string[]) => runCli({ env, cwd: tmp.path }, ...args);
  await Deno.mkdir(join(tmp.path, "one", "sub"), { recursive: true });
  await Deno.writeFile(join(tmp.path, "one", "sub", "k.bin"), new Uint8Array(2048));
  const nfd = "cafe\u0301.txt"; // as macOS writes "café.txt"
  await Deno.writeTextFile(join(tmp.path, nfd), "x");

  const tree = await run("put", "-r", "one");
  assertEquals(tree.code, EXIT.ok, tree.stderr);
  assertStringIncludes(tree.stdout, "uploaded 1 file (2.0 KiB) in 2 directories to one\n");
  const back = await run("get", "-r", "one", "copy");
  assertStringIncludes(back.stdout, "downloaded 1 file (2.0 KiB) in 2 directories into copy\n");

  const long = await run("ls", "-l", "one/sub");
  assertEquals(long.code, EXIT.ok, long.stderr);
  assertMatch(long.stdout, /^- +2\.0 KiB \d{4}-\d\d-\d\d \d\d:\d\d:\d\d k\.bin\n$/);
  assertMatch((await run("ls", "--bytes", "one/sub")).stdout, /^- +2048 .* k\.bin\n$/);
  assertMatch((await run("ls", "-l")).stdout, /^d +- .* one\/\n$/);

  assertEquals((await run("put", nfd)).code, EXIT.ok);
  const listed = JSON.parse((await run("ls", "--json")).stdout) as { entries: { name: string }[] };
  const names = listed.entries.map((e) => e.name);
  assert(names.includes("caf\u00e9.txt"), JSON.stringify(names));
  assert(!names.includes(nfd), JSON.stringify(names));
  const homeNames = [...Deno.readDirSync(join(t.dataDir, "files", "home", "ada"))].map((e) =>
    e.name
  );
  assert(homeNames.includes("caf\u00e9.txt"), JSON.stringify(homeNames));
});
