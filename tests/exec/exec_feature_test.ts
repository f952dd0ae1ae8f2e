/**
 * The exec feature (`server/exec/`) on the embedded exec backend, without a
 * server process or socket: a real client Session talks to a real server
 * Session over an in-memory transport pair, the server side dispatching to
 * the feature's operations, and runs are real sandboxed processes.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { join } from "@std/path";
import { RemoteExec } from "../../client/exec/exec_remote.ts";
import type { Session } from "../../protocol/session.ts";
import { type EmbeddedExecBackend, openEmbeddedExec } from "../../server/embedded/exec.ts";
import { createExecFeature } from "../../server/exec/mod.ts";
import type { Feature } from "../../server/feature.ts";
import { Logger } from "../../server/log.ts";
import {
  type FeatureConnection,
  hostFeature,
  remoteCode,
  testAccount,
} from "../feature_fixture.ts";
import { collect, liveWith, sleepMarker, TEST_ALLOW, waitGoneWith } from "./exec_fixtures.ts";

interface _Harness extends AsyncDisposable {
  feature: Feature;
  backend: EmbeddedExecBackend;
  dataDir: string;
  /** A new connection of `user`; `exec` is its exec right. */
  connect(user: string, exec?: boolean): Promise<FeatureConnection>;
}

async function _start(exec: Record<string, unknown> = {}): Promise<_Harness> {
  const base = await Deno.makeTempDir({ prefix: "parley-exec-feature-" });
  await Deno.chmod(base, 0o711); // runs as uid 65534 (tests as root) reach the exec root
  const dataDir = join(base, "data");
  await Deno.mkdir(dataDir);
  const section = { enabled: true, allow: TEST_ALLOW, root: join(base, "exec"), ...exec };
  const log = new Logger({ level: "error", sink: () => {} });
  let backend: EmbeddedExecBackend;
  try {
    backend = await openEmbeddedExec({ dataDir, features: { exec: section } }, log);
  } catch (e) {
    await Deno.remove(base, { recursive: true });
    throw e;
  }
  const feature = await createExecFeature({ backend: { exec: backend }, config: section });
  const host = hostFeature(feature);
  return {
    feature,
    backend,
    dataDir,
    connect: (user, execRight = true) => host.connect(testAccount(user, { exec: execRight })),
    async [Symbol.asyncDispose]() {
      await host[Symbol.asyncDispose]();
      await backend.close();
      await Deno.remove(base, { recursive: true });
    },
  };
}

/** Starts a command on `client` that prints a line, then sleeps until killed; resolves once it printed. */
async function _startSleeper(client: Session): Promise<{ run: RemoteExec; marker: string }> {
  const marker = sleepMarker();
  let started!: () => void;
  const up = new Promise<void>((r) => (started = r));
  const run = RemoteExec.start(client, { argv: ["sh", "-c", `echo up; sleep ${marker}`] }, {
    stdout: () => started(),
    stderr: () => {},
  });
  await up;
  return { run, marker };
}

async function _auditLines(dataDir: string): Promise<Record<string, unknown>[]> {
  const text = await Deno.readTextFile(join(dataDir, "exec-audit.log"));
  return text.trim().split("\n").filter((l) => l).map((l) => JSON.parse(l));
}

Deno.test("exec feature: a run's stdin, stdout, stderr and exit code cross the session", async () => {
  await using h = await _start();
  const { client } = await h.connect("ada");
  const r = await collect(client, { argv: ["sh", "-c", "cat; echo err >&2; exit 7"] }, "hi\n");
  assertEquals(r.stdout, "hi\n");
  assertEquals(r.stderr, "err\n");
  assertEquals(r.result.code, 7);
  assertEquals(r.result.signal, null);
  await h.backend.close(); // flushes the audit log
  const [entry] = await _auditLines(h.dataDir);
  assertEquals(entry?.user, "ada");
  assertEquals(entry?.argv, ["sh", "-c", "cat; echo err >&2; exit 7"]);
  assertEquals(entry?.code, 7);
});

Deno.test("exec feature: policy refusals come back as errors and are audited", async () => {
  await using h = await _start({ allow: ["echo"] });
  const { client: ada } = await h.connect("ada");
  const { client: bob } = await h.connect("bob", false);
  assertEquals(await remoteCode(collect(bob, { argv: ["echo"] })), "forbidden");
  assertEquals(await remoteCode(collect(ada, { argv: ["cat"] })), "forbidden");
  assertEquals(await remoteCode(collect(ada, { shell: "echo hi" })), "forbidden");
  assertEquals(await remoteCode(collect(ada, { argv: ["echo"], cwd: "../x" })), "forbidden");
  assertEquals(await remoteCode(collect(ada, { argv: ["echo"], cwd: "missing" })), "not_found");
  assertEquals((await collect(ada, { argv: ["echo", "ok"] })).stdout, "ok\n");
  await h.backend.close();
  const refused = (await _auditLines(h.dataDir)).map((e) => e.refused ?? "ran");
  assertEquals(refused, [
    "forbidden",
    "forbidden",
    "forbidden",
    "forbidden",
    "not_found",
    "ran",
  ]);
});

Deno.test("exec feature: resetting the run kills it, and nothing of it is left", async () => {
  await using h = await _start();
  const { client } = await h.connect("ada");
  const { run, marker: m } = await _startSleeper(client);
  assert((await liveWith(m)).length > 0);
  run.abort();
  await assertRejects(() => run.done);
  assertEquals(await waitGoneWith(m), []);
});

Deno.test("exec feature: closing the connection kills its runs", async () => {
  await using h = await _start();
  const { client } = await h.connect("ada");
  const { run, marker: m } = await _startSleeper(client);
  await client.close();
  await assertRejects(() => run.done);
  assertEquals(await waitGoneWith(m), []);
  await h.backend.close();
  const killed = (await _auditLines(h.dataDir)).map((e) => e.killed);
  assertEquals(killed, ["disconnect"]);
});

Deno.test("exec feature: shutdown kills running commands before the backend closes", async () => {
  await using h = await _start();
  const { client } = await h.connect("ada");
  const { run, marker: m } = await _startSleeper(client);
  await h.feature.close?.();
  const result = await run.done;
  assertEquals(result.signal, "SIGKILL");
  assertEquals(await waitGoneWith(m), []);
  await h.backend.close();
  assertEquals((await _auditLines(h.dataDir)).map((e) => e.killed), ["shutdown"]);
});

Deno.test("exec feature: output the client does not take is held back end to end", async () => {
  await using h = await _start();
  const { client } = await h.connect("ada");
  const total = 64 * 1024 * 1024;
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let stdoutBytes = 0;
  let stderr = "";
  const run = RemoteExec.start(
    client,
    { argv: ["sh", "-c", `head -c ${total} /dev/zero; echo written >&2`] },
    {
      stdout: async (b) => {
        await held; // a client that stops reading
        stdoutBytes += b.byteLength;
      },
      stderr: (b) => void (stderr += new TextDecoder().decode(b)),
    },
  );
  run.endInput();
  // With output buffered anywhere without bound, the command would finish writing.
  for (let i = 0; i < 30 && !stderr; i++) await new Promise((r) => setTimeout(r, 50));
  assertEquals(stderr, "");
  release();
  const result = await run.done;
  assertEquals(result.code, 0);
  assertEquals(stdoutBytes, total);
  assertEquals(stderr, "written\n");
});
