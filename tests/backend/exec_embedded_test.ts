/**
 * The embedded exec backend (`server/embedded/exec.ts`): the
 * {@linkcode ExecBackend} contract with real processes in the bubblewrap
 * sandbox, and what only the embedded backend promises: disabled exec
 * costs nothing (no directories, no probe, no file), and closing it kills
 * what still runs.
 *
 * @module
 */
import { assertEquals, assertRejects } from "@std/assert";
import { join } from "@std/path";
import type { ExecBackend, ExecPlan } from "../../server/backend/exec.ts";
import { openEmbeddedExec } from "../../server/embedded/exec.ts";
import { RequestError } from "../../server/errors.ts";
import { execCaps, parseExecSettings } from "../../server/exec/exec_config.ts";
import { Logger } from "../../server/log.ts";
import { sleepMarker, waitGoneWith } from "../exec/exec_fixtures.ts";
import { runExecContract } from "./exec_contract.ts";

const _quiet = () => new Logger({ level: "error", sink: () => {} });

/** A plan for `argv` by ada with the default environment and caps. */
function _plan(argv: string[]): ExecPlan {
  const d = parseExecSettings({});
  return {
    user: "ada",
    command: { argv },
    cwd: "",
    env: d.env,
    timeoutMs: 60_000,
    caps: execCaps(d),
  };
}

/** A data dir and an exec root beside it, removed on dispose. */
async function _dirs(): Promise<{ dataDir: string; root: string } & AsyncDisposable> {
  const base = await Deno.makeTempDir({ prefix: "parley-exec-backend-" });
  await Deno.chmod(base, 0o711); // runs as uid 65534 (server as root) reach the root below
  const dataDir = join(base, "data");
  const root = join(base, "data-exec");
  await Deno.mkdir(dataDir);
  return {
    dataDir,
    root,
    [Symbol.asyncDispose]: () => Deno.remove(base, { recursive: true }),
  };
}

async function _open(exec: Record<string, unknown> = {}) {
  const dirs = await _dirs();
  try {
    const backend = await openEmbeddedExec(
      { dataDir: dirs.dataDir, features: { exec: { enabled: true, root: dirs.root, ...exec } } },
      _quiet(),
    );
    return {
      backend: backend as ExecBackend,
      user: "ada",
      dirs,
      async [Symbol.asyncDispose]() {
        try {
          await backend.close();
        } finally {
          await dirs[Symbol.asyncDispose]();
        }
      },
    };
  } catch (e) {
    await dirs[Symbol.asyncDispose]();
    throw e;
  }
}

runExecContract("embedded", () => _open());

Deno.test("embedded exec: disabled, it creates nothing and refuses runs", async () => {
  await using dirs = await _dirs();
  await using backend = await openEmbeddedExec(
    { dataDir: dirs.dataDir, features: { exec: { root: dirs.root } } },
    _quiet(),
  );
  const e = await assertRejects(() => backend.router.open("local", _plan(["true"])), RequestError);
  assertEquals(e.code, "forbidden");
  assertEquals(await backend.router.list(), [{ name: "local", exec: false, local: true }]);
  await assertRejects(() => Deno.stat(dirs.root), Deno.errors.NotFound);
  assertEquals([...Deno.readDirSync(dirs.dataDir)], []);
});

Deno.test("embedded exec: closing the backend kills the runs still going", async () => {
  await using t = await _open();
  const m = sleepMarker();
  const run = await t.backend.runner.start(_plan(["sh", "-c", `sleep ${m} & sleep ${m}; wait`]));
  await run.stdin.close();
  await (t.backend as ExecBackend & { close(): Promise<void> }).close();
  assertEquals((await run.outcome).killed, "shutdown");
  assertEquals(await waitGoneWith(m), []);
  const e = await assertRejects(() => t.backend.runner.start(_plan(["true"])), RequestError);
  assertEquals(e.code, "closed");
});
