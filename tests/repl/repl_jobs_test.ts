/**
 * The REPL's background jobs, driven in a real terminal (`script`) against a
 * real server reached through a throttling proxy: chat goes on during an
 * upload, `/jobs` and `/cancel`, a resumed upload, two transfers at once,
 * `/quit` with a job running, the `[!cat]` prompt, and a server that goes
 * away and comes back.
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { encodeHex } from "@std/encoding/hex";
import { join } from "@std/path";
import { stripAnsiCode } from "@std/fmt/colors";
import { ChatClient } from "../../client/chat/chat_client.ts";
import { FILE_STAT, type FileStatReply } from "../../protocol/ops/files.ts";
import { startTestServer, type TestServer } from "../helpers.ts";
import { record, waitFor } from "../chat/chat_helpers.ts";
import { startExecServer } from "../exec/exec_fixtures.ts";
import { KEYS, spawnRepl } from "./pty.ts";
import { startThrottleProxy } from "./throttle_proxy.ts";

const MiB = 1024 * 1024;
/** Per connection and direction while a transfer should last: 3 MiB take ~12 s. */
const SLOW = 256 * 1024;

async function randomFile(path: string, size: number): Promise<string> {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
  await Deno.writeFile(path, data);
  return encodeHex(await crypto.subtle.digest("SHA-256", data));
}

async function storedSha(t: TestServer, user: string, path: string): Promise<string | undefined> {
  const c = await t.connect(user);
  try {
    const st = await c.call(FILE_STAT, { path, sha256: true }) as FileStatReply;
    return st.sha256;
  } finally {
    await c.close();
  }
}

Deno.test("REPL jobs: chat during an upload, /jobs, /cancel and resume, two transfers at once", async () => {
  await using t = await startTestServer();
  const dir = await Deno.makeTempDir({ prefix: "parley-jobs-" });
  await using proxy = startThrottleProxy(t.port, Infinity);
  try {
    const bigSha = await randomFile(join(dir, "big.bin"), 3 * MiB);
    const otherSha = await randomFile(join(dir, "other file.bin"), 3 * MiB);
    const key = await t.addUser("ada");
    const bob = await ChatClient.start(await t.connect("bob"));
    const got = record(bob);
    await bob.join("lobby");
    await using p = await spawnRepl({ port: proxy.port, user: "ada", key, cwd: dir });
    await p.waitFor("[#lobby]", { ms: 30_000 });
    proxy.rate = SLOW;

    // a /msg typed during the upload reaches bob before the upload ends
    await p.write(`/put big.bin${KEYS.enter}`);
    await p.waitFor("[1] uploading big.bin (3.0 MiB) in the background");
    await p.write(`/msg bob while uploading${KEYS.enter}`);
    await waitFor(() => got.msgs.some((m) => m.text === "while uploading"), "the DM at bob");
    assert(!p.text().includes("uploaded big.bin"), "the upload had not ended yet");

    // a second transfer at once, with a quoted name
    await p.write(`/put "other file.bin"${KEYS.enter}`);
    await p.waitFor("[2] uploading other file.bin");
    let mark = p.mark();
    await p.write(`/jobs${KEYS.enter}`);
    await p.waitFor(/\[1\] upload big\.bin [^\n]*ETA/, { since: mark });
    await p.waitFor(/\[2\] upload other file\.bin/, { since: mark });
    // a progress line per transfer above the prompt
    await p.waitFor(/\[1\] upload big\.bin \[[#-]+\] \d+% [^\n]*\/s ETA/, { since: mark });

    // cancel the first; it leaves a part that the same /put resumes
    mark = p.mark();
    await p.write(`/cancel 1${KEYS.enter}`);
    await p.waitFor("[1] cancelled upload big.bin; the part sent is kept", { since: mark });
    assert(!p.since(mark).includes("[2] cancelled"), "only job 1 stopped");
    proxy.rate = Infinity;
    await p.waitFor("[2] uploaded other file.bin", { since: mark, ms: 60_000 });
    mark = p.mark();
    await p.write(`/put big.bin${KEYS.enter}`);
    await p.waitFor(/uploaded big\.bin -> [^\n]*resumed at/, { since: mark, ms: 60_000 });
    assertEquals(await storedSha(t, "ada", "big.bin"), bigSha);
    assertEquals(await storedSha(t, "ada", "other file.bin"), otherSha);

    mark = p.mark();
    await p.write(`/jobs${KEYS.enter}`);
    await p.waitFor("no jobs running", { since: mark });
    await p.write(`/quit${KEYS.enter}`);
    assertEquals((await p.close()).code, 0, p.text());
    bob.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("REPL jobs: /quit with a transfer running asks; n keeps it, y cancels and exits 0", async () => {
  await using t = await startTestServer();
  const dir = await Deno.makeTempDir({ prefix: "parley-jobs-" });
  await using proxy = startThrottleProxy(t.port, Infinity);
  try {
    await randomFile(join(dir, "big.bin"), 3 * MiB);
    const key = await t.addUser("ada");
    await using p = await spawnRepl({ port: proxy.port, user: "ada", key, cwd: dir });
    await p.waitFor("[#lobby]", { ms: 30_000 });
    proxy.rate = SLOW;
    await p.write(`/put big.bin${KEYS.enter}`);
    await p.waitFor("[1] uploading big.bin");
    let mark = p.mark();
    await p.write(`/quit${KEYS.enter}`);
    await p.waitFor("1 transfer running: cancel them and quit? [y/N]", { since: mark });
    mark = p.mark();
    await p.write(`n${KEYS.enter}`);
    await p.waitFor("not quitting", { since: mark });
    await p.waitFor("[#lobby]", { since: mark });
    mark = p.mark();
    await p.write(`/quit${KEYS.enter}`);
    await p.waitFor("cancel them and quit? [y/N]", { since: mark });
    await p.write(`y${KEYS.enter}`);
    const status = await p.exited;
    assertEquals(status.code, 0, p.text());
    assert(p.since(mark).includes("[1] cancelled upload big.bin"), p.since(mark));
    await p.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("REPL: a running !cat has its own prompt; Ctrl-D and Ctrl-C give the room prompt back", async () => {
  await using t = await startExecServer();
  const key = await t.addUser("eve", { exec: true });
  await using p = await spawnRepl({ port: t.port, user: "eve", key });
  await p.waitFor("[#lobby]", { ms: 30_000 });
  let mark = p.mark();
  await p.write(`!cat${KEYS.enter}`);
  await p.waitFor("[!cat]", { since: mark });
  await p.write(`to the remote stdin${KEYS.enter}`);
  // once echoed as typed, once as cat's output
  await p.waitFor(() => stripAnsiCode(p.since(mark)).split("to the remote stdin").length >= 3);
  mark = p.mark();
  await p.write(KEYS.ctrlD);
  await p.waitFor("[#lobby]", { since: mark });
  mark = p.mark();
  await p.write(`/exec cat${KEYS.enter}`);
  await p.waitFor("[!cat]", { since: mark });
  // cat runs once it echoes a line (a signal before the command starts is not its to get)
  await p.write(`cat is up${KEYS.enter}`);
  await p.waitFor(() => stripAnsiCode(p.since(mark)).split("cat is up").length >= 3);
  mark = p.mark();
  await p.write(KEYS.ctrlC);
  await p.waitFor(/\[killed by SIGINT\]|\[exit 130\]/, { since: mark });
  await p.waitFor("[#lobby]", { since: mark });
  assert(!p.since(mark).includes("press Ctrl-C again"), "Ctrl-C went to the command");
  await p.write(`/quit${KEYS.enter}`);
  assertEquals((await p.close()).code, 0, p.text());
});

Deno.test("REPL: while the server is away it says so, queues typed lines and sends them after the reconnect", async () => {
  await using t = await startTestServer();
  await using proxy = startThrottleProxy(t.port, Infinity);
  const key = await t.addUser("ada");
  const bob = await ChatClient.start(await t.connect("bob"));
  const got = record(bob);
  await bob.join("lobby");
  await using p = await spawnRepl({ port: proxy.port, user: "ada", key });
  await p.waitFor("[#lobby]", { ms: 30_000 });
  await waitFor(() => got.events.some((e) => e.kind === "joined"), "ada joining");
  const mark = p.mark();
  await proxy.down();
  await p.waitFor("not connected — retrying in", { since: mark });
  await p.write(`typed while away${KEYS.enter}`);
  await p.waitFor("not connected: queued, sent after the reconnect", { since: mark });
  await p.waitFor("1 line queued", { since: mark });
  assert(!got.msgs.some((m) => m.text === "typed while away"));
  proxy.up();
  await p.waitFor(/reconnected/, { since: mark, ms: 30_000 });
  await waitFor(() => got.msgs.some((m) => m.text === "typed while away"), "the queued line");
  assertMatch(p.since(mark), /sending 1 queued line/);
  await p.write(`/quit${KEYS.enter}`);
  assertEquals((await p.close()).code, 0, p.text());
  bob.close();
});
