/**
 * The one exit-code table: docs/cli.md shows exactly the rows of
 * cli/exit_codes.ts, every command's --help lists them, and the commands,
 * run as processes against a real server, exit with them.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { join } from "@std/path";
import { EXEC_FAILURE, EXIT, EXIT_HELP, EXIT_TABLE } from "../../cli/exit_codes.ts";
import { ROOT, startTestServer } from "../helpers.ts";
import { tempDir } from "../files/files_fixtures.ts";
import { cliEnv, closedPort, runCli } from "./cli_helpers.ts";

/** The commands log in many at once, some with a wrong key: no login limits in the way. */
const _MANY_LOGINS = { loginFailuresPerUser: 1000, loginFailuresPerAddress: 1000 };

/** The rows of the first table under `## Exit codes` in docs/cli.md. */
async function docsTable(): Promise<{ code: number; meaning: string }[]> {
  const text = await Deno.readTextFile(join(ROOT, "docs", "cli.md"));
  const section = text.split(/^## Exit codes$/m)[1] ?? "";
  assert(section !== "", 'docs/cli.md has no "## Exit codes" section');
  const rows: { code: number; meaning: string }[] = [];
  for (const line of section.split("\n")) {
    if (rows.length > 0 && !line.startsWith("|")) break;
    const cells = line.split("|").slice(1, -1).map((c) => c.trim());
    if (cells.length !== 2 || !/^\d+$/.test(cells[0]!)) continue;
    rows.push({ code: Number(cells[0]), meaning: cells[1]! });
  }
  return rows;
}

Deno.test("docs/cli.md shows exactly the exit codes of cli/exit_codes.ts", async () => {
  assertEquals(await docsTable(), EXIT_TABLE.map((r) => ({ code: r.code, meaning: r.meaning })));
  assertEquals(EXIT_TABLE.map((r) => r.code), Object.values(EXIT).sort((a, b) => a - b));
});

Deno.test("every command's --help lists the exit codes", async () => {
  const commands = [
    ["send"],
    ["put"],
    ["get"],
    ["share"],
    ["ls"],
    ["stat"],
    ["rm"],
    ["mv"],
    ["mkdir"],
    ["rmdir"],
    ["ping"],
    ["user"],
  ];
  const results = await Promise.all(commands.map((c) => runCli({}, ...c, "--help")));
  for (const [i, r] of results.entries()) {
    assertEquals(r.code, 0, `${commands[i]} --help: ${r.stderr}`);
    assertStringIncludes(r.stdout, EXIT_HELP, `${commands[i]} --help`);
  }
  const exec = await runCli({}, "exec", "--help");
  assertStringIncludes(exec.stdout, 'docs/cli.md "Exit codes"');
  assertStringIncludes(exec.stdout, "255");
});

Deno.test("usage, connection and authentication failures exit with the table's codes", async () => {
  await using t = await startTestServer({ limits: _MANY_LOGINS });
  const key = await t.addUser("ada");
  const env = cliEnv(t.url("ada"), key);
  const wrongKey = cliEnv(t.url("ada"), key.replace(/^./, key[0] === "0" ? "1" : "0"));
  const badKey = cliEnv(t.url("ada"), "abc");
  const downPort = closedPort();
  const down = cliEnv(`parley+plain://ada@127.0.0.1:${downPort}`, key);
  const cases: [string, Record<string, string>, string[], number][] = [
    ["unknown option", env, ["ls", "--bogus"], EXIT.usage],
    ["no arguments", env, ["get"], EXIT.usage],
    ["no text", env, ["send", "lobby"], EXIT.usage],
    ["ping --count nonsense", env, ["ping", "--count", "x"], EXIT.usage],
    ["malformed key", badKey, ["ls"], EXIT.usage],
    ["wrong key: send", wrongKey, ["send", "lobby", "hi"], EXIT.auth],
    ["wrong key: ls", wrongKey, ["ls"], EXIT.auth],
    ["wrong key: get", wrongKey, ["get", "x", "-"], EXIT.auth],
    ["wrong key: ping", wrongKey, ["ping", "--count", "1"], EXIT.auth],
    ["wrong key: share", wrongKey, ["share", "/etc/hostname"], EXIT.auth],
    ["wrong key: exec", wrongKey, ["exec", "--", "true"], EXEC_FAILURE],
    ["no server: send", down, ["send", "lobby", "hi"], EXIT.unreachable],
    ["no server: ls", down, ["ls"], EXIT.unreachable],
    ["no server: ping", down, ["ping"], EXIT.unreachable],
  ];
  const results = await Promise.all(cases.map(([, e, args]) => runCli({ env: e }, ...args)));
  for (const [i, r] of results.entries()) {
    const [what, , , code] = cases[i]!;
    assertEquals(r.code, code, `${what}: ${r.stderr}`);
    assert(r.stderr.startsWith("parley"), `${what}: ${r.stderr}`);
    // A usage error says what is wrong in one line and where the usage is, not the whole help.
    if (code === EXIT.usage && what !== "malformed key") {
      assert(r.stderr.split("\n").length <= 4, `${what}: ${r.stderr}`);
    }
  }
  assertStringIncludes(results[5]!.stderr, "wrong key");
  assertStringIncludes(results[11]!.stderr, `nothing listens on 127.0.0.1:${downPort}`);
});

Deno.test("a server certificate that does not match the pin exits 10", async () => {
  await using t = await startTestServer({ plain: false });
  const key = await t.addUser("ada");
  const wrongPin = `sha256:${"0".repeat(64)}`;
  const r = await runCli({ env: cliEnv(t.url("ada"), key, { PARLEY_PIN: wrongPin }) }, "ls");
  assertEquals(r.code, EXIT.auth, r.stderr);
  assertStringIncludes(r.stderr, "pinned");
  const ok = await runCli({ env: cliEnv(t.url("ada"), key, t.clientEnv) }, "ls");
  assertEquals(ok.code, EXIT.ok, ok.stderr);
});

Deno.test("file and chat refusals exit with the table's codes", async () => {
  await using t = await startTestServer({
    limits: _MANY_LOGINS,
    features: { files: { maxFileBytes: 1000 } },
  });
  await using tmp = await tempDir();
  const key = await t.addUser("ada");
  const env = cliEnv(t.url("ada"), key);
  const run = (...args: string[]) => runCli({ env, cwd: tmp.path }, ...args);
  await Deno.writeTextFile(join(tmp.path, "small.txt"), "small\n");
  await Deno.writeFile(join(tmp.path, "big.bin"), new Uint8Array(2000));
  assertEquals((await run("mkdir", "full")).code, EXIT.ok);
  assertEquals((await run("put", "small.txt", "full/small.txt")).code, EXIT.ok);

  const cases: [string, string[], number, string][] = [
    ["rmdir of a directory that is not empty", ["rmdir", "full"], EXIT.conflict, "not empty"],
    ["rmdir of nothing", ["rmdir", "nothing"], EXIT.notFound, "does not exist"],
    ["rmdir of a file", ["rmdir", "full/small.txt"], EXIT.refused, "not a directory"],
    ["put onto an existing file", ["put", "small.txt", "full/small.txt"], EXIT.conflict, "exists"],
    ["mkdir of an existing directory", ["mkdir", "full"], EXIT.conflict, "exists"],
    ["get of nothing", ["get", "nothing"], EXIT.notFound, "does not exist"],
    ["stat of nothing", ["stat", "nothing"], EXIT.notFound, "does not exist"],
    ["a path outside the home", ["ls", "../bob"], EXIT.refused, ""],
    ["rm of a directory", ["rm", "full"], EXIT.refused, "rmdir"],
    ["a file over the size limit", ["put", "big.bin"], EXIT.quota, ""],
    ["get into an existing file", ["get", "full/small.txt", "small.txt"], EXIT.conflict, "exists"],
    ["a message to nobody", ["send", "@nobody", "hi"], EXIT.notFound, "no user named nobody"],
    ["a share that is not there", ["get", "--shared", "99999", "-"], EXIT.notFound, ""],
    ["a local file that is not there", ["put", "nothing.txt"], EXIT.notFound, "nothing.txt"],
  ];
  const results = await Promise.all(cases.map(([, args]) => run(...args)));
  for (const [i, r] of results.entries()) {
    const [what, , code, says] = cases[i]!;
    assertEquals(r.code, code, `${what}: ${r.stderr}`);
    assertStringIncludes(r.stderr, says, what);
  }
  const json = await run("rmdir", "--json", "full");
  assertEquals(json.code, EXIT.conflict);
  assertEquals(JSON.parse(json.stdout).code, "not_empty");
  assertEquals(JSON.parse(json.stdout).exit, EXIT.conflict);
});
