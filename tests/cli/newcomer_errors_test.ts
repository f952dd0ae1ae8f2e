/**
 * The errors a newcomer meets first, met as a newcomer meets them: `parley`
 * runs as its own process (and the REPL in a pseudo-terminal). A plaintext
 * connection to a port that is not Parley, a bad room name, a download into
 * a directory that cannot be written, a file that exists, a typo and a port
 * in use each get a plain sentence that says what to do — without the
 * operations' wire names, part files or stack traces — and the exit code of
 * the table in cli/exit_codes.ts.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { stripAnsiCode } from "@std/fmt/colors";
import { join } from "@std/path";
import { EXIT } from "../../cli/exit_codes.ts";
import { startTestServer } from "../helpers.ts";
import { tempDir } from "../files/files_fixtures.ts";
import { KEYS, spawnRepl } from "../repl/pty.ts";
import { cliEnv, type CliResult, runCli } from "./cli_helpers.ts";

/** Internal names that must not reach a user: operations, fields, part files. */
const _INTERNAL = /\b(chat|file|exec)\.[a-z]+\b|\broom: |\bpath: |\.parley-part|writefile|os error/;

function assertPlain(text: string, what: string): void {
  const m = _INTERNAL.exec(text);
  assert(m === null, `${what}: ${JSON.stringify(m?.[0])} leaks in: ${text}`);
}

/** A TCP port that accepts connections, sends `banner` (if any) and then stays silent. */
function fakePort(banner?: string): AsyncDisposable & { port: number } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      if (banner !== undefined) await conn.write(new TextEncoder().encode(banner)).catch(() => 0);
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting.catch(() => {});
      for (const c of conns) {
        try {
          c.close();
        } catch (e) {
          if (!(e instanceof Deno.errors.BadResource)) throw e;
        }
      }
    },
  };
}

/** The key of nobody: these ports never get as far as a login. */
const _ANY_KEY = "00".repeat(32);

Deno.test("a plaintext connection to a port that is not Parley says what is there", async () => {
  await using silent = fakePort();
  await using ssh = fakePort("SSH-2.0-OpenSSH_9.6\r\n");
  await using http = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("hello"),
  );
  const at = (port: number) => cliEnv(`parley+plain://ada@127.0.0.1:${port}`, _ANY_KEY);
  const [quiet, banner, web, flag] = await Promise.all([
    runCli({ env: at(silent.port) }, "ls"),
    runCli({ env: at(ssh.port) }, "send", "lobby", "hi"),
    runCli({ env: at(http.addr.port) }, "ls"),
    // The --plain flag dials the same way as a parley+plain:// address.
    runCli(
      { env: { PARLEY_SERVER: `ada@127.0.0.1:${ssh.port}`, PARLEY_KEY: _ANY_KEY } },
      "ls",
      "--plain",
    ),
  ]);
  const cases: [string, CliResult, string][] = [
    [
      "silent",
      quiet,
      `parley: 127.0.0.1:${silent.port} accepted the connection but answered nothing`,
    ],
    [
      "ssh",
      banner,
      `parley: 127.0.0.1:${ssh.port} is not a Parley server: it sent "SSH-2.0-OpenSSH_9.6"`,
    ],
    ["http", web, `parley: 127.0.0.1:${http.addr.port} is not a Parley server: it sent "HTTP/1.1`],
    ["--plain", flag, `parley: 127.0.0.1:${ssh.port} is not a Parley server: it sent "SSH-2.0`],
  ];
  for (const [what, r, expected] of cases) {
    assertEquals(r.code, EXIT.unreachable, `${what}: ${r.stderr}`);
    assertStringIncludes(r.stderr, expected, what);
    assertStringIncludes(r.stderr, "is the port right?", what);
    assertEquals(r.stderr.trim().split("\n").length, 1, `${what}: ${r.stderr}`);
  }
});

Deno.test("a bad room name gets a sentence, from parley send and from /join", async () => {
  await using t = await startTestServer();
  const key = await t.addUser("ada");
  const send = await runCli({ env: cliEnv(t.url("ada"), key) }, "send", "Bad Room!", "hi");
  assertEquals(send.code, EXIT.refused, send.stderr);
  assertStringIncludes(send.stderr, 'bad room name "Bad Room!": room names are 1-32 of a-z');
  assertPlain(send.stderr, "parley send");

  await using repl = await spawnRepl({ port: t.port, user: "ada", key });
  await repl.waitFor("[#lobby]");
  let mark = repl.mark();
  await repl.write("/join Bad!Room" + KEYS.enter);
  await repl.waitFor("room names are", { since: mark });
  const joined = stripAnsiCode(repl.since(mark));
  // The REPL may fold the name to lower case before sending it, as the server does.
  assertMatch(joined, /bad room name "bad!room"/i);
  assertPlain(joined, "/join");
  // A typo'd command gets a suggestion, not just "unknown".
  mark = repl.mark();
  await repl.write("/jion lobby" + KEYS.enter);
  await repl.waitFor("did you mean /join", { since: mark });
  await repl.write("/quit" + KEYS.enter);
  assertEquals((await repl.close()).code, 0);
});

/** Whether this process can make a directory it cannot write (root needs setpriv). */
const _canDenyWrites = Deno.uid() !== 0 ||
  new Deno.Command("setpriv", { args: ["--help"], stdout: "null", stderr: "null" }).outputSync()
    .success;

/** `parley ARGS` as {@linkcode runCli}, without root's power to write anywhere. */
function runUnprivileged(
  env: Record<string, string>,
  cwd: string,
  ...args: string[]
): Promise<CliResult> {
  // Root writes into a read-only directory unless it drops CAP_DAC_OVERRIDE.
  const wrapper = Deno.uid() === 0
    ? ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    : [];
  return runCli({ env, cwd, wrapper }, ...args);
}

Deno.test({
  name: "a download into a directory that cannot be written says so, not which part file failed",
  ignore: !_canDenyWrites,
  async fn() {
    await using t = await startTestServer();
    await using tmp = await tempDir();
    const env = cliEnv(t.url("ada"), await t.addUser("ada"));
    await Deno.writeTextFile(join(tmp.path, "notes.txt"), "notes\n");
    assertEquals((await runCli({ env, cwd: tmp.path }, "put", "notes.txt")).code, EXIT.ok);
    const ro = join(tmp.path, "ro");
    await Deno.mkdir(ro);
    await Deno.chmod(ro, 0o555);
    try {
      const r = await runUnprivileged(env, tmp.path, "get", "notes.txt", "ro/");
      assertEquals(r.code, EXIT.error, r.stderr);
      assertStringIncludes(r.stderr, "parley: cannot write in ro: permission denied");
      assertStringIncludes(r.stderr, "choose a directory you can write");
      assertPlain(r.stderr, "get into ro/");
      assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
      // A directory that does not exist is named, with how to make it.
      const gone = await runCli({ env, cwd: tmp.path }, "get", "notes.txt", "nodir/notes.txt");
      assertEquals(gone.code, EXIT.notFound, gone.stderr);
      assertStringIncludes(gone.stderr, "cannot write in nodir: it does not exist");
      assertStringIncludes(gone.stderr, "mkdir -p nodir");
      assertPlain(gone.stderr, "get into nodir/");
    } finally {
      await Deno.chmod(ro, 0o755);
    }
    assertEquals([...Deno.readDirSync(ro)], []);
  },
});

Deno.test("a file that exists names the --overwrite flag that replaces it", async () => {
  await using t = await startTestServer();
  await using tmp = await tempDir();
  const env = cliEnv(t.url("ada"), await t.addUser("ada"));
  const run = (...args: string[]) => runCli({ env, cwd: tmp.path }, ...args);
  await Deno.writeTextFile(join(tmp.path, "a.txt"), "a\n");
  assertEquals((await run("put", "a.txt")).code, EXIT.ok);
  assertEquals((await run("put", "a.txt", "b.txt")).code, EXIT.ok);
  const cases: [string, CliResult][] = [
    ["put", await run("put", "a.txt")],
    ["mv", await run("mv", "a.txt", "b.txt")],
    ["get", await run("get", "a.txt")],
  ];
  for (const [what, r] of cases) {
    assertEquals(r.code, EXIT.conflict, `${what}: ${r.stderr}`);
    assertStringIncludes(r.stderr, "already exists; pass --overwrite to replace it", what);
  }
  assertEquals((await run("put", "a.txt", "--overwrite")).code, EXIT.ok);
});

Deno.test("a missing local file and a refused path are plain sentences", async () => {
  await using t = await startTestServer();
  await using tmp = await tempDir();
  const env = cliEnv(t.url("ada"), await t.addUser("ada"));
  const missing = await runCli({ env, cwd: tmp.path }, "put", "nofile.txt");
  assertEquals(missing.code, EXIT.notFound, missing.stderr);
  assertEquals(missing.stderr.trim(), "parley: nofile.txt does not exist");
  const up = await runCli({ env, cwd: tmp.path }, "stat", "../etc");
  assertEquals(up.code, EXIT.refused, up.stderr);
  assertStringIncludes(up.stderr, 'cannot use "../etc": ".." is not allowed in a path');
  assertPlain(up.stderr, "stat ../etc");
});

Deno.test("typos get a did-you-mean for commands and subcommands", async () => {
  const [command, sub] = await Promise.all([runCli({}, "conect"), runCli({}, "user", "ad")]);
  assertEquals(command.code, EXIT.usage, command.stderr);
  assertStringIncludes(command.stderr, "did you mean connect?");
  assertEquals(sub.code, EXIT.usage, sub.stderr);
  assertStringIncludes(sub.stderr, "did you mean add?");
  // The problem and where the usage is, not the whole help.
  assert(command.stderr.trim().split("\n").length <= 3, command.stderr);
});

Deno.test("a port in use is one line that says to pass --port", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (taken.addr as Deno.NetAddr).port;
  await using data = await tempDir();
  const r = await runCli(
    {},
    "serve",
    "--plain",
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "--data",
    data.path,
  );
  assertEquals(r.code, EXIT.error, r.stderr);
  assertEquals(
    r.stderr.trim(),
    `parley: port ${port} on 127.0.0.1 is in use (another parley serve?); ` +
      "pass --port N or stop the other server",
  );
});
