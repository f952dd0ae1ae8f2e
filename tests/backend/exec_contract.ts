/**
 * The {@linkcode ExecBackend} contract (`server/backend/exec.ts`), run
 * against any implementation: each `*_test.ts` beside this file calls
 * {@linkcode runExecContract} with a factory for its implementation. Runs
 * are real processes; "nothing is left" is checked with `ps` on the host
 * (the exec node of a cluster test runs on the same host).
 *
 * @module
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { toText } from "@std/streams";
import type { ExecBackend, ExecPlan, ExecRun } from "../../server/backend/exec.ts";
import { RequestError } from "../../server/errors.ts";
import { execCaps, parseExecSettings } from "../../server/exec/exec_config.ts";
import { liveWith, sleepMarker, waitGoneWith } from "../exec/exec_fixtures.ts";

/** A backend to test, with a user whose runs it accepts; disposing it closes everything. */
export interface ExecContractTarget extends AsyncDisposable {
  backend: ExecBackend;
  /** The account runs belong to (its exec directory exists or is made on first use). */
  user: string;
}

/** Opens a fresh backend with exec enabled. */
export type ExecFactory = () => Promise<ExecContractTarget>;

// `toText` from the npm build of deno-std has no type declarations.
const _toText = toText as (s: ReadableStream<Uint8Array>) => Promise<string>;

/** A plan for `argv` with the default environment and caps. */
function _plan(user: string, argv: string[], more: Partial<ExecPlan> = {}): ExecPlan {
  const d = parseExecSettings({});
  return {
    user,
    command: { argv },
    cwd: "",
    env: d.env,
    timeoutMs: 60_000,
    caps: execCaps(d),
    ...more,
  };
}

/** Starts `argv` on the local node, through the router as the feature does. */
function _start(t: ExecContractTarget, argv: string[], more: Partial<ExecPlan> = {}) {
  const r = t.backend.router;
  return r.open(r.local, _plan(t.user, argv, more));
}

/** Ends stdin at once and reads both outputs to their end. */
async function _finish(run: ExecRun, input = "") {
  const w = run.stdin.getWriter();
  if (input) await w.write(new TextEncoder().encode(input));
  await w.close();
  const [stdout, stderr] = await Promise.all([_toText(run.stdout), _toText(run.stderr)]);
  return { stdout, stderr, outcome: await run.outcome };
}

/** Waits for `p` at most `ms`; resolves with "pending" when it did not settle by then. */
function _within<T>(p: Promise<T>, ms: number): Promise<T | "pending"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<"pending">((r) => (timer = setTimeout(() => r("pending"), ms))),
  ]);
}

async function _refused(p: Promise<unknown>, code: string): Promise<void> {
  const e = await assertRejects(() => p, RequestError);
  assertEquals(e.code, code, e.message);
}

/** Registers the contract's tests for the implementation called `name`. */
export function runExecContract(name: string, open: ExecFactory): void {
  const test = (what: string, fn: (t: ExecContractTarget) => Promise<void>) =>
    Deno.test(`exec contract (${name}): ${what}`, async () => {
      await using t = await open();
      await fn(t);
    });

  test("stdin reaches the command and its stdout comes back", async (t) => {
    const run = await _start(t, ["cat"]);
    const r = await _finish(run, "line one\nline two\n");
    assertEquals(r.stdout, "line one\nline two\n");
    assertEquals(r.outcome.code, 0);
    assertEquals(r.outcome.signal, null);
    assertEquals(r.outcome.killed, null);
    assertEquals(r.outcome.stdoutBytes, 18);
    assertEquals(run.argv, ["cat"]);
    assertEquals(run.node, t.backend.router.local);
    assert(!run.running);
  });

  test("stderr is a stream of its own", async (t) => {
    const run = await _start(t, ["sh", "-c", "echo out1; echo err1 >&2; echo out2; echo err2 >&2"]);
    const r = await _finish(run);
    assertEquals(r.stdout, "out1\nout2\n");
    assertEquals(r.stderr, "err1\nerr2\n");
    assertEquals(r.outcome.stderrBytes, 10);
  });

  test("exit codes and terminating signals are reported", async (t) => {
    assertEquals((await _finish(await _start(t, ["sh", "-c", "exit 42"]))).outcome.code, 42);
    const killed = await _finish(await _start(t, ["sh", "-c", "kill -TERM $$"]));
    assertEquals(killed.outcome.signal, "SIGTERM");
    assertEquals(killed.outcome.code, 143);
  });

  test("a shell line runs in the node's shell", async (t) => {
    const run = await t.backend.router.open(t.backend.router.local, {
      ..._plan(t.user, []),
      command: { shell: "echo $((6 * 7))" },
    });
    assertEquals(run.argv.slice(1), ["-c", "echo $((6 * 7))"]);
    assertEquals((await _finish(run)).stdout, "42\n");
  });

  test("a signal reaches the command; after the end it is a no-op", async (t) => {
    const run = await _start(t, [
      "sh",
      "-c",
      'trap "echo got >&2; exit 3" USR1; echo ready; while :; do sleep 0.05; done',
    ]);
    const out = run.stdout.getReader();
    assertEquals(new TextDecoder().decode((await out.read()).value), "ready\n");
    await run.signal("SIGUSR1");
    const err = _toText(run.stderr);
    while (!(await out.read()).done) { /* to the end */ }
    const o = await run.outcome;
    assertEquals(o.code, 3);
    assertStringIncludes(await err, "got\n"); // the shell may also report the killed sleep
    await run.signal("SIGKILL"); // after the end: nothing happens
    await run.stdin.abort();
  });

  test("the timeout kills the run and everything it started", async (t) => {
    const m = sleepMarker();
    const run = await _start(t, ["sh", "-c", `sleep ${m} & sleep ${m}; wait`], {
      timeoutMs: 300,
    });
    const r = await _finish(run);
    assertEquals(r.outcome.timedOut, true);
    assertEquals(r.outcome.killed, "timeout");
    assertEquals(r.outcome.code, 137);
    assertEquals(r.outcome.signal, "SIGKILL");
    assertEquals(await waitGoneWith(m), []);
  });

  test("kill ends the whole run; a second kill and a kill after the end change nothing", async (t) => {
    const m = sleepMarker();
    const run = await _start(t, ["sh", "-c", `echo started; sleep ${m} & sleep ${m}; wait`]);
    const out = run.stdout.getReader();
    assertEquals(new TextDecoder().decode((await out.read()).value), "started\n");
    assert((await liveWith(m)).length > 0, "the run's processes are up");
    run.kill("client");
    run.kill("shutdown");
    const o = await run.outcome;
    assertEquals(o.killed, "client");
    assertEquals(o.timedOut, false);
    assertEquals(await waitGoneWith(m), []);
    assertEquals((await out.read()).done, true, "stdout ends with the kill");
    run.kill("timeout");
    assertEquals((await run.outcome).killed, "client");

    const done = await _start(t, ["true"]);
    await _finish(done);
    done.kill("client");
    assertEquals((await done.outcome).killed, null);
  });

  test("stdin refuses writes once the command has ended", async (t) => {
    const run = await _start(t, ["true"]);
    await Promise.all([_toText(run.stdout), _toText(run.stderr)]);
    assertEquals((await run.outcome).code, 0);
    const w = run.stdin.getWriter();
    await assertRejects(() => w.write(new Uint8Array(1)));
  });

  test("output nobody reads is held back by the command's pipe, not buffered", async (t) => {
    const total = 64 * 1024 * 1024;
    const run = await _start(t, ["sh", "-c", `head -c ${total} /dev/zero; echo written >&2`]);
    await run.stdin.close();
    const err = _toText(run.stderr);
    // Unbounded buffering would let the command write everything and finish.
    assertEquals(await _within(err, 1_500), "pending");
    assertEquals(await _within(run.outcome, 10), "pending");
    let read = 0;
    for await (const chunk of run.stdout) read += chunk.byteLength;
    assertEquals(read, total);
    assertEquals(await err, "written\n");
    assertEquals((await run.outcome).stdoutBytes, total);
  });

  test("a missing working directory or program is refused before anything runs", async (t) => {
    await _refused(_start(t, ["true"], { cwd: "no/such/dir" }), "not_found");
    await _refused(_start(t, ["no-such-program-anywhere"]), "not_found");
  });

  test("the router lists this node and refuses unknown nodes at once", async (t) => {
    const r = t.backend.router;
    const nodes = await r.list();
    const local = nodes.find((n) => n.name === r.local);
    assertEquals(local, { name: r.local, exec: true, local: true });
    assertEquals(nodes[0]?.name, r.local);
    const m = sleepMarker();
    await _refused(r.open("no-such-node", _plan(t.user, ["sleep", m])), "not_found");
    assertEquals(await liveWith(m), []);
  });

  test("the audit sink takes runs and refusals", async (t) => {
    const entry = {
      start: new Date(0).toISOString(),
      user: t.user,
      addr: "127.0.0.1:1",
      argv: ["true"],
      cwd: null,
      durationMs: 0,
      code: 0,
      signal: null,
    };
    await t.backend.audit.run(entry);
    await t.backend.audit.refused({ ...entry, code: null, refused: "forbidden" });
  });
}
