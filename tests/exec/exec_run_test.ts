import { assert, assertEquals, assertRejects } from "@std/assert";
import { join } from "@std/path";
import { RemoteExec } from "../../client/exec/exec_remote.ts";
import { RemoteError } from "../../protocol/errors.ts";
import { collect, liveWith, sleepMarker, startExecServer, waitGoneWith } from "./exec_fixtures.ts";

/** Starts a run whose first stdout line is a pid; returns it with the run. */
async function startWithPid(
  client: Parameters<typeof RemoteExec.start>[0],
  request: Parameters<typeof RemoteExec.start>[1],
) {
  let seen = "";
  let gotPid!: (pid: number) => void;
  const pid = new Promise<number>((r) => (gotPid = r));
  const run = RemoteExec.start(client, request, {
    stdout: (b) => {
      seen += new TextDecoder().decode(b);
      const m = /^(\d+)\n/.exec(seen);
      if (m) gotPid(Number(m[1]));
    },
    stderr: () => {},
  });
  return { run, pid: await pid };
}

Deno.test("stdout and stderr arrive on separate streams, each in order", async () => {
  await using t = await startExecServer();
  const c = await t.connect("ada");
  const r = await collect(c, {
    argv: ["sh", "-c", "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done"],
  });
  assertEquals(r.stdout, "out1\nout2\nout3\nout4\nout5\n");
  assertEquals(r.stderr, "err1\nerr2\nerr3\nerr4\nerr5\n");
  assertEquals(r.result.code, 0);
  assertEquals(r.result.signal, null);
});

Deno.test("exit codes 0, 1 and 42 are returned", async () => {
  await using t = await startExecServer();
  const c = await t.connect("ada");
  assertEquals((await collect(c, { argv: ["true"] })).result.code, 0);
  assertEquals((await collect(c, { argv: ["false"] })).result.code, 1);
  assertEquals((await collect(c, { argv: ["sh", "-c", "exit 42"] })).result.code, 42);
});

Deno.test("a command killed by a signal reports the signal and 128+n", async () => {
  await using t = await startExecServer();
  const c = await t.connect("ada");
  const r = await collect(c, { argv: ["sh", "-c", "kill -TERM $$"] });
  assertEquals(r.result.signal, "SIGTERM");
  assertEquals(r.result.code, 143);
});

Deno.test("stdin is piped to the command and EOF ends it", async () => {
  await using t = await startExecServer();
  const c = await t.connect("ada");
  const data = new Uint8Array(3 * 1024 * 1024 + 5).map((_, i) => (i * 7) & 0xff);
  const r = await collect(c, { argv: ["wc", "-c"] }, data);
  assertEquals(r.stdout.trim(), String(data.byteLength));
  const echo = await collect(c, { argv: ["cat"] }, "line one\nline two\n");
  assertEquals(echo.stdout, "line one\nline two\n");
});

Deno.test("arguments are passed literally, never through a shell", async () => {
  await using t = await startExecServer();
  const c = await t.connect("ada");
  const marker = join(t.dataDir, "should-not-exist");
  const r = await collect(c, { argv: ["echo", `hi; touch ${marker}`, "$HOME", "`id`"] });
  assertEquals(r.stdout, `hi; touch ${marker} $HOME \`id\`\n`);
  await assertRejects(() => Deno.stat(marker), Deno.errors.NotFound);
});

Deno.test("the client's SIGINT reaches the command's whole process group", async () => {
  await using t = await startExecServer();
  const c = await t.connect("ada");
  const m = sleepMarker();
  const { run } = await startWithPid(c, {
    argv: ["sh", "-c", `echo $$; sleep ${m} & wait`],
  });
  run.endInput();
  await run.signal("SIGINT");
  const result = await run.done;
  assertEquals(result.signal, "SIGINT");
  assertEquals(result.code, 130);
  assertEquals(await waitGoneWith(m), []);
});

Deno.test("a command that traps the client's signal handles it and goes on", async () => {
  await using t = await startExecServer();
  const c = await t.connect("ada");
  const m = sleepMarker();
  let out = "";
  let trapped!: () => void;
  const ready = new Promise<void>((r) => (trapped = r));
  const run = RemoteExec.start(c, {
    argv: ["sh", "-c", `trap 'echo caught; exit 3' TERM; echo ready; sleep ${m} & wait`],
  }, {
    stdout: (b) => {
      out += new TextDecoder().decode(b);
      if (out.includes("ready")) trapped();
    },
    stderr: () => {},
  });
  run.endInput();
  await ready;
  await run.signal("SIGTERM");
  const result = await run.done;
  assertEquals(out, "ready\ncaught\n");
  assertEquals(result.code, 3);
  assertEquals(await waitGoneWith(m), []);
});

Deno.test("a command that never exits is killed at the timeout, children included", async () => {
  await using t = await startExecServer();
  const c = await t.connect("ada");
  const m = sleepMarker();
  const { run } = await startWithPid(c, {
    argv: ["sh", "-c", `echo $$; sleep ${m} & sleep ${m}`],
    timeoutMs: 2000, // long enough for the host-side check below on a busy machine
  });
  assert((await liveWith(m)).length >= 2, "the command and its child run");
  run.endInput();
  const result = await run.done;
  assertEquals(result.timedOut, true);
  assertEquals(result.signal, "SIGKILL");
  assertEquals(await waitGoneWith(m), []);
});

Deno.test("background children do not outlive a command that exits", async () => {
  await using t = await startExecServer();
  const c = await t.connect("ada");
  const m = sleepMarker();
  const { run } = await startWithPid(c, {
    argv: ["sh", "-c", `echo $$; sleep ${m} >/dev/null 2>&1 &`],
  });
  run.endInput();
  assertEquals((await run.done).code, 0);
  assertEquals(await waitGoneWith(m), []);
});

Deno.test("disconnecting kills the command and its children", async () => {
  await using t = await startExecServer();
  const c = await t.connect("ada");
  const m = sleepMarker();
  const { run } = await startWithPid(c, {
    argv: ["sh", "-c", `echo $$; sleep ${m} & sleep ${m}`],
  });
  const done = run.done.catch((e) => e);
  await c.close();
  assert((await done) instanceof Error);
  assertEquals(await waitGoneWith(m), []);
  const audit = await Deno.readTextFile(join(t.dataDir, "exec-audit.log"));
  const entry = audit.trim().split("\n").map((l) => JSON.parse(l)).at(-1);
  assertEquals(entry.killed, "disconnect");
});

Deno.test("server shutdown kills running commands", async () => {
  const t = await startExecServer();
  const m = sleepMarker();
  try {
    const c = await t.connect("ada");
    const started = await startWithPid(c, { argv: ["sh", "-c", `echo $$; sleep ${m}`] });
    const done = started.run.done.catch((e) => e);
    await t.server.close();
    await done;
  } finally {
    await t[Symbol.asyncDispose]();
  }
  assertEquals(await waitGoneWith(m), []);
});

Deno.test("aborting a run from the client kills it", async () => {
  await using t = await startExecServer();
  const c = await t.connect("ada");
  const m = sleepMarker();
  const { run } = await startWithPid(c, { argv: ["sh", "-c", `echo $$; sleep ${m}`] });
  run.abort();
  await assertRejects(() => run.done);
  assertEquals(await waitGoneWith(m), []);
  // The connection is still usable.
  assertEquals((await collect(c, { argv: ["echo", "ok"] })).stdout, "ok\n");
});

Deno.test("a signal for an unknown run is refused with not_found", async () => {
  await using t = await startExecServer();
  const c = await t.connect("ada");
  const err = await assertRejects(
    () => c.call("exec.signal", { token: "nosuchrun0", signal: "SIGINT" }),
    RemoteError,
  );
  assertEquals(err.code, "not_found");
});
