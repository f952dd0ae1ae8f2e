import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { join } from "@std/path";
import { RemoteExec } from "../../client/exec/exec_remote.ts";
import { RemoteError } from "../../protocol/errors.ts";
import { parseExecConfig } from "../../server/exec/exec_config.ts";
import { startTestServer } from "../helpers.ts";
import { collect, startExecServer } from "./exec_fixtures.ts";

async function refusal(p: Promise<unknown>): Promise<RemoteError> {
  return await assertRejects(() => p, RemoteError);
}

Deno.test("exec is refused while the server has it disabled", async () => {
  await using t = await startTestServer();
  await t.addUser("ada", { exec: true });
  const c = await t.connect("ada");
  const err = await refusal(collect(c, { argv: ["true"] }));
  assertEquals(err.code, "forbidden");
  assert(err.message.includes("--exec"), err.message);
});

Deno.test("a user without the exec right is refused", async () => {
  await using t = await startExecServer();
  const c = await t.connect("bob");
  const err = await refusal(collect(c, { argv: ["true"] }));
  assertEquals(err.code, "forbidden");
  assert(err.message.includes("no exec right"), err.message);
});

Deno.test("commands outside the allowlist and relative paths are refused", async () => {
  await using t = await startExecServer({ allow: ["echo", "/usr/bin/true"] });
  const c = await t.connect("ada");
  for (
    const argv of [["rm", "-rf", "/"], ["sh", "-c", "true"], ["./echo"], ["bin/echo"], ["true"]]
  ) {
    const err = await refusal(collect(c, { argv }));
    assertEquals(err.code, "forbidden", argv.join(" "));
  }
  assertEquals((await collect(c, { argv: ["/usr/bin/true"] })).result.code, 0);
  assertEquals((await collect(c, { argv: ["echo", "still fine"] })).stdout, "still fine\n");
});

Deno.test("an allowed name that does not exist is reported as not found", async () => {
  await using t = await startExecServer({ allow: ["no-such-command-here"] });
  const c = await t.connect("ada");
  const err = await refusal(collect(c, { argv: ["no-such-command-here"] }));
  assertEquals(err.code, "not_found");
});

Deno.test("the working directory stays inside the exec root", async () => {
  await using t = await startExecServer();
  const c = await t.connect("ada");
  assertEquals((await collect(c, { argv: ["pwd"] })).stdout, "/work\n");
  const root = join(t.execRoot, "ada");
  await Deno.mkdir(join(root, "sub"));
  await Deno.symlink("/tmp", join(root, "out"));
  await Deno.symlink("..", join(root, "up"));
  assertEquals((await collect(c, { argv: ["pwd"], cwd: "sub" })).stdout, "/work/sub\n");
  const cases: [string, string][] = [
    ["..", "forbidden"],
    ["up", "forbidden"],
    ["sub/../..", "forbidden"],
    ["/tmp", "forbidden"],
    ["out", "forbidden"],
    ["missing", "not_found"],
  ];
  for (const [cwd, code] of cases) {
    assertEquals((await refusal(collect(c, { argv: ["pwd"], cwd }))).code, code, cwd);
  }
});

Deno.test("shell lines need shell mode", async () => {
  {
    await using t = await startExecServer();
    const c = await t.connect("ada");
    const err = await refusal(collect(c, { shell: "echo a | wc -c" }));
    assertEquals(err.code, "forbidden");
    assert(err.message.includes("--exec-shell"), err.message);
  }
  {
    await using t = await startExecServer({ shell: true, allow: [] });
    const c = await t.connect("ada");
    assertEquals((await collect(c, { shell: "echo abc | wc -c" })).stdout.trim(), "4");
  }
});

Deno.test("commands see only the configured environment", async () => {
  await using t = await startExecServer({ env: { PATH: "/usr/bin:/bin", ONLY: "this" } });
  const c = await t.connect("ada");
  const lines = (await collect(c, { argv: ["env"] })).stdout.trim().split("\n").sort();
  // PWD is set by the sandbox to the working directory inside it.
  assertEquals(lines, ["ONLY=this", "PATH=/usr/bin:/bin", "PWD=/work"]);
});

Deno.test("concurrent runs per user are capped", async () => {
  await using t = await startExecServer({ maxPerUser: 1 });
  const c = await t.connect("ada");
  let up!: () => void;
  const started = new Promise<void>((r) => (up = r));
  const first = RemoteExec.start(c, { argv: ["sh", "-c", "echo up; sleep 1000"] }, {
    stdout: () => up(),
    stderr: () => {},
  });
  await started; // the first run is counted once its output flows
  const second = await refusal(collect(c, { argv: ["true"] }));
  assertEquals(second.code, "busy");
  await first.signal("SIGKILL");
  assertEquals((await first.done).signal, "SIGKILL");
  assertEquals((await collect(c, { argv: ["true"] })).result.code, 0);
});

Deno.test("bad run arguments are refused with bad_request", async () => {
  await using t = await startExecServer({ maxTimeoutMs: 1000, defaultTimeoutMs: 1000 });
  const c = await t.connect("ada");
  assertEquals(
    (await refusal(collect(c, { argv: ["true"], timeoutMs: 5000 }))).code,
    "bad_request",
  );
  assertEquals((await refusal(collect(c, { argv: [] }))).code, "bad_request");
  assertEquals((await refusal(collect(c, { argv: ["echo", "a\0b"] }))).code, "bad_request");
  const err = await refusal(c.call("exec.run", { token: "short" }));
  assertEquals(err.code, "bad_request");
});

Deno.test("every run and refusal is audit-logged to a 0600 file", async () => {
  await using t = await startExecServer();
  const c = await t.connect("ada");
  await collect(c, { argv: ["sh", "-c", "exit 3"] });
  await refusal(collect(c, { argv: ["rm", "x"] }));
  const path = join(t.dataDir, "exec-audit.log");
  assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600);
  const entries = (await Deno.readTextFile(path)).trim().split("\n").map((l) => JSON.parse(l));
  assertEquals(entries.length, 2);
  const [ran, refused] = entries;
  assertEquals(ran.user, "ada");
  assertEquals(ran.argv, ["sh", "-c", "exit 3"]);
  assertEquals(ran.code, 3);
  assert(ran.addr.startsWith("127.0.0.1:"));
  assert(typeof ran.durationMs === "number" && !Number.isNaN(Date.parse(ran.start)));
  assertEquals(ran.cwd, await Deno.realPath(join(t.execRoot, "ada")));
  assertEquals(refused.argv, ["rm", "x"]);
  assertEquals(refused.refused, "forbidden");
});

Deno.test("an existing audit log readable by others is tightened to 0600", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "parley-test-" });
  try {
    await Deno.writeTextFile(join(dataDir, "exec-audit.log"), "", { mode: 0o644 });
    await Deno.chmod(join(dataDir, "exec-audit.log"), 0o644);
    await using _t = await startTestServer({
      dataDir,
      features: { exec: { enabled: true, root: `${dataDir}-exec` } },
    });
    assertEquals((await Deno.stat(join(dataDir, "exec-audit.log"))).mode! & 0o777, 0o600);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
    await Deno.remove(`${dataDir}-exec`, { recursive: true }).catch(() => {});
  }
});

Deno.test("invalid exec settings are rejected with the field named", () => {
  const bad = [
    { allow: ["bin/ls"] },
    { maxPerUser: 0 },
    { env: { "BAD NAME": "x" } },
    { defaultTimeoutMs: 10, maxTimeoutMs: 5 },
    { unknownSetting: true },
    { root: "exec-root" },
    { root: "/data/sub/exec" },
    { root: "/" },
    { readOnlyPaths: ["/data/files"] },
    { auditLog: "/data-exec/log" },
    { maxProcesses: 0 },
  ];
  for (const raw of bad) {
    assertThrows(() => parseExecConfig(raw, "/data"), TypeError, '"exec" section');
  }
  const ok = parseExecConfig({}, "/data");
  assertEquals(ok.enabled, false);
  assertEquals(ok.root, "/data-exec");
  assertEquals(ok.sandbox, true);
  assertEquals(ok.network, false);
  assertEquals(ok.env, { PATH: "/usr/bin:/bin", LANG: "C.UTF-8" });
});
