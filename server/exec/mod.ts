/**
 * The exec feature: runs allowlisted commands for users with the exec right
 * (PROTOCOL.md "Operations: exec", docs/exec.md). It holds the policy —
 * rights, allowlist, shell mode, cwd, timeouts, per-user caps — and starts
 * runs through the exec backend (`deps.backend.exec`), which decides how
 * and where they run.
 *
 * - `exec.stderr {token}` opens the stream that will carry a run's stderr.
 * - `exec.run {token, argv | shell, cwd?, timeoutMs?, node?}` opens the stream that
 *   carries stdin (client → server) and stdout (server → client), on `node`
 *   (cluster mode) or this node; its reply
 *   is `{code, signal, timedOut, durationMs}`.
 * - `exec.signal {token, signal}` signals a run's process group.
 * - `exec.nodes {}` lists the nodes a run may name (`exec.run {node}`):
 *   `{nodes: [{name, exec, self}]}`, this node first; any user may ask.
 *
 * @module
 */
import type { MuxStream } from "../../protocol/mux_stream.ts";
import {
  EXEC_NODES,
  EXEC_RUN,
  EXEC_SIGNAL,
  EXEC_STDERR,
  type ExecNodesReply,
} from "../../protocol/ops/exec.ts";
import { EXEC_ARGS } from "../../protocol/ops/exec_args.ts";
import type { ExecRouter, ExecRun } from "../backend/exec.ts";
import type { Backend } from "../backend/mod.ts";
import { ConnectionState } from "../connection_state.ts";
import type { ClientContext } from "../context.ts";
import { RequestError } from "../errors.ts";
import type { Feature, FeatureDeps } from "../feature.ts";
import { parseArgs } from "../parse_args.ts";
import { type ExecSettings, parseExecSettings } from "./exec_config.ts";
import { checkAllowed } from "./exec_policy.ts";
import { runOp } from "./run_op.ts";
import { RunTable } from "./run_table.ts";

/** How long shutdown waits for runs to report after killing them. */
const _SHUTDOWN_WAIT_MS = 5_000;

function _need(stream: MuxStream | undefined): MuxStream {
  if (!stream) throw new RequestError("bad_request", "this operation needs a stream");
  return stream;
}

/**
 * Creates the exec feature on `deps.backend.exec`. Settings errors throw a
 * `TypeError` naming the field (the backend, opened first, reports them
 * the same way).
 */
export function createExecFeature(
  deps: Pick<FeatureDeps, "config"> & { backend: Pick<Backend, "exec"> },
): Promise<Feature> {
  const settings = parseExecSettings(deps.config);
  const backend = deps.backend.exec;
  if (!settings.enabled) return Promise.resolve(_disabledFeature(settings, backend.router));
  const tables = new ConnectionState<RunTable>(() => new RunTable());
  const active = new Set<Promise<unknown>>();
  const live = new Set<ExecRun>();
  let closing = false;
  const state = { settings, backend, perUser: new Map(), live, closing: () => closing };

  const track = <T>(p: Promise<T>): Promise<T> => {
    active.add(p);
    const forget = () => active.delete(p);
    p.then(forget, forget);
    return p;
  };

  return Promise.resolve({
    name: "exec",
    register(reg) {
      reg.register(EXEC_STDERR, (ctx, args, stream) => {
        const s = _need(stream);
        checkAllowed(settings, ctx.user);
        if (closing) throw new RequestError("closed", "the server is shutting down");
        const { token } = parseArgs(EXEC_STDERR, EXEC_ARGS[EXEC_STDERR], args);
        const runs = tables.get(ctx);
        if (runs.has(token)) throw new RequestError("bad_request", "this token is in use");
        if (runs.waiting >= settings.maxPerUser * 2) {
          throw new RequestError("busy", "too many exec.stderr streams waiting for their run");
        }
        return track(runs.offer(token, s));
      });
      reg.register(
        EXEC_RUN,
        (ctx, args, stream) => track(runOp(state, ctx, tables.get(ctx), args, _need(stream))),
      );
      reg.register(EXEC_SIGNAL, async (ctx, args) => {
        checkAllowed(settings, ctx.user);
        const { token, signal } = parseArgs(EXEC_SIGNAL, EXEC_ARGS[EXEC_SIGNAL], args);
        const run = tables.peek(ctx)?.runs.get(token);
        if (!run || !run.running) {
          throw new RequestError("not_found", "no running command with this token");
        }
        await run.signal(signal);
        return {};
      });
      _registerNodes(reg, backend.router);
    },
    onLogout(ctx: ClientContext) {
      const runs = tables.peek(ctx);
      if (!runs) return;
      runs.close();
      for (const run of runs.runs.values()) run.kill("disconnect");
    },
    async close() {
      if (closing) return;
      closing = true;
      for (const run of live) run.kill("shutdown");
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.allSettled([...active]),
        new Promise((r) => (timer = setTimeout(r, _SHUTDOWN_WAIT_MS))),
      ]);
      clearTimeout(timer);
    },
  });
}

/** `exec.nodes`: the router's nodes, for any logged-in user. */
function _registerNodes(reg: Parameters<Feature["register"]>[0], router: ExecRouter): void {
  reg.register(EXEC_NODES, async (_ctx, args): Promise<ExecNodesReply> => {
    parseArgs(EXEC_NODES, EXEC_ARGS[EXEC_NODES], args);
    const nodes = await router.list();
    return { nodes: nodes.map((n) => ({ name: n.name, exec: n.exec, self: n.local })) };
  });
}

function _disabledFeature(settings: ExecSettings, router: ExecRouter): Feature {
  const refuse = (ctx: ClientContext) => {
    checkAllowed(settings, ctx.user);
    return Promise.reject(new RequestError("internal", "exec is not available"));
  };
  return {
    name: "exec",
    register(reg) {
      for (const op of [EXEC_STDERR, EXEC_RUN, EXEC_SIGNAL]) {
        reg.register(op, (ctx) => Promise.resolve().then(() => refuse(ctx)));
      }
      _registerNodes(reg, router);
    },
  };
}
