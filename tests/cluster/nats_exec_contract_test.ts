/**
 * Routed exec (`server/nats/exec*.ts`) in one process against a real
 * nats-server: two nodes, `a` and `b`, each with its own NATS connection,
 * data dir and exec root. The {@linkcode ExecBackend} contract runs on
 * `a`'s router with every run sent to `b`: the streams, signals, timeout,
 * kill, credit and refusals of a routed run behave as a local run's.
 *
 * @module
 */
import { assertEquals, assertRejects } from "@std/assert";
import { join } from "@std/path";
import { connect } from "@nats-io/transport-node";
import type { ExecBackend, ExecPlan } from "../../server/backend/exec.ts";
import { RequestError } from "../../server/errors.ts";
import { execCaps, parseExecSettings } from "../../server/exec/exec_config.ts";
import { Logger } from "../../server/log.ts";
import { type NatsExecBackend, openNatsExec } from "../../server/nats/exec.ts";
import { runExecContract } from "../backend/exec_contract.ts";
import { sleepMarker, waitGoneWith } from "../exec/exec_fixtures.ts";
import { natsAvailable, startNatsServer } from "./nats_fixture.ts";

const available = natsAvailable();
const sandboxed = await Deno.stat("/usr/bin/bwrap").then(() => true, () => false);
const _quiet = () => new Logger({ level: "error", sink: () => {} });

/** Two nodes on one nats-server; disposing closes both and removes their dirs. */
async function _twoNodes(exec: Record<string, unknown> = {}) {
  const nats = await startNatsServer();
  const base = await Deno.makeTempDir({ prefix: "parley-nats-exec-" });
  await Deno.chmod(base, 0o711); // runs as uid 65534 (server as root) reach the roots below
  const opened: { close(): Promise<void> }[] = [];
  const conns: { close(): Promise<void> }[] = [];
  const close = async () => {
    for (const o of opened.reverse()) await o.close().catch(() => {});
    for (const c of conns) await c.close().catch(() => {});
    await nats.close();
    await Deno.remove(base, { recursive: true });
  };
  try {
    const nodes: Record<string, NatsExecBackend> = {};
    for (const name of ["a", "b"]) {
      const dataDir = join(base, name);
      await Deno.mkdir(dataDir);
      const nc = await connect({ servers: nats.urls });
      conns.push(nc);
      const settings = {
        enabled: true,
        shell: true,
        sandbox: sandboxed,
        root: join(base, `${name}-exec`),
        ...exec,
      };
      const backend = await openNatsExec(nc, { dataDir, features: { exec: settings } }, {
        node: name,
        log: _quiet(),
        nodes: () => [{ node: name === "a" ? "b" : "a", info: { exec: true } }],
      });
      opened.push(backend);
      nodes[name] = backend;
    }
    return { a: nodes.a!, b: nodes.b!, [Symbol.asyncDispose]: close };
  } catch (e) {
    await close();
    throw e;
  }
}

function _plan(argv: string[]): ExecPlan {
  const d = parseExecSettings({});
  return {
    user: "ada",
    command: { argv },
    cwd: "",
    env: d.env,
    timeoutMs: 60_000,
    caps: execCaps(d),
    routed: { addr: "127.0.0.1:1" },
  };
}

if (available) {
  // `a`'s router, seen from the contract as if `b` were its own node: every run goes a → b.
  runExecContract("NATS, routed to another node", async () => {
    const t = await _twoNodes();
    const via = t.a.router;
    const backend: ExecBackend = {
      runner: t.b.runner,
      audit: t.a.audit,
      router: {
        local: "b",
        list: async () =>
          (await via.list()).filter((n) => n.name === "b").map((n) => ({ ...n, local: true })),
        open: (node, plan) =>
          via.open(node, {
            ...plan,
            routed: { addr: "127.0.0.1:1", timeoutMs: plan.timeoutMs },
          }),
      },
    };
    return { backend, user: "ada", [Symbol.asyncDispose]: () => t[Symbol.asyncDispose]() };
  });
}

Deno.test({
  name: "NATS exec: the running node closing kills its served runs and reports shutdown",
  ignore: !available,
}, async () => {
  await using t = await _twoNodes();
  const m = sleepMarker();
  const run = await t.a.router.open("b", _plan(["sh", "-c", `sleep ${m} & sleep ${m}; wait`]));
  await run.stdin.close();
  assertEquals(t.b.served, 1);
  await t.b.close();
  assertEquals((await run.outcome).killed, "shutdown");
  assertEquals(await waitGoneWith(m), []);
  const e = await assertRejects(() => t.a.router.open("b", _plan(["true"])), RequestError);
  assertEquals(e.code, "not_found");
});

Deno.test({
  name: "NATS exec: the running node applies its own allow-list and limits",
  ignore: !available,
}, async () => {
  await using t = await _twoNodes({
    shell: false,
    allow: ["true"],
    defaultTimeoutMs: 500,
    maxTimeoutMs: 1000,
  });
  const run = await t.a.router.open("b", _plan(["true"]));
  await run.stdin.close();
  for await (const _ of run.stdout) { /* nothing */ }
  for await (const _ of run.stderr) { /* nothing */ }
  assertEquals((await run.outcome).code, 0);
  const notAllowed = await assertRejects(
    () => t.a.router.open("b", _plan(["sh", "-c", "true"])),
    RequestError,
    "node b:",
  );
  assertEquals(notAllowed.code, "forbidden");
  const tooLong = await assertRejects(
    () => t.a.router.open("b", { ..._plan(["true"]), routed: { addr: "", timeoutMs: 5000 } }),
    RequestError,
  );
  assertEquals(tooLong.code, "bad_request");
});
