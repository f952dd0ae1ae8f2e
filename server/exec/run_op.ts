/**
 * The `exec.run` operation: policy checks, the per-user cap, pairing with
 * the `exec.stderr` stream, starting the run through the router, wiring the
 * streams, and the audit record of the run or the refusal.
 *
 * @module
 */
import type { Json } from "../../protocol/messages.ts";
import type { MuxStream } from "../../protocol/mux_stream.ts";
import { EXEC_RUN } from "../../protocol/ops/exec.ts";
import { EXEC_TOKEN_ARGS } from "../../protocol/ops/exec_args.ts";
import type { ExecBackend, ExecRun } from "../backend/exec.ts";
import type { ClientContext } from "../context.ts";
import { RequestError } from "../errors.ts";
import { parseArgs } from "../parse_args.ts";
import { compactArgv, REFUSED_ARGV_BYTES, RUN_ARGV_BYTES } from "./audit_argv.ts";
import type { ExecSettings } from "./exec_config.ts";
import { checkAllowed, parseRunArgs, planRouted, planRun } from "./exec_policy.ts";
import type { RunTable } from "./run_table.ts";
import { wireRun } from "./run_streams.ts";

/** What {@linkcode runOp} shares with the rest of the feature. */
export interface RunOpState {
  settings: ExecSettings;
  backend: ExecBackend;
  /** Runs in progress per user, over all connections. */
  perUser: Map<string, number>;
  /** Every run in progress (killed at shutdown). */
  live: Set<ExecRun>;
  /** True once the feature is closing. */
  closing(): boolean;
}

/** Handles one `exec.run`; resolves with its reply. */
export async function runOp(
  state: RunOpState,
  ctx: ClientContext,
  runs: RunTable,
  raw: Json,
  stream: MuxStream,
): Promise<unknown> {
  const { settings, backend } = state;
  const startedAt = new Date().toISOString();
  // The token first: a refusal of anything else still fails the paired exec.stderr stream.
  const { token } = parseArgs(EXEC_RUN, EXEC_TOKEN_ARGS, raw);
  let argvForAudit: readonly string[] | null = null;
  let counted = false;
  // Set for a run routed to another node: the front node's entries name it.
  let remote: { node: string } | Record<never, never> = {};
  try {
    if (state.closing()) throw new RequestError("closed", "the server is shutting down");
    checkAllowed(settings, ctx.user);
    const args = parseRunArgs(raw);
    if (runs.runs.has(token)) throw new RequestError("bad_request", "this token is in use");
    const n = state.perUser.get(ctx.user.name) ?? 0;
    if (n >= settings.maxPerUser) {
      throw new RequestError(
        "busy",
        `${ctx.user.name} already has ${n} commands running (limit ${settings.maxPerUser})`,
      );
    }
    state.perUser.set(ctx.user.name, n + 1);
    counted = true;
    const local = backend.router.local;
    // `local` always names the node the client is connected to.
    const node = args.node === undefined || args.node === "local" ? local : args.node;
    if (node !== local) remote = { node };
    const { plan, argv } = node === local
      ? planRun(settings, { user: ctx.user.name, args })
      : planRouted(settings, { user: ctx.user.name, addr: ctx.addr, args });
    argvForAudit = argv;
    const slot = await runs.claim(token);
    let run: ExecRun;
    try {
      run = await backend.router.open(node, plan);
    } catch (e) {
      slot.reject(e as Error);
      throw e;
    }
    runs.runs.set(token, run);
    state.live.add(run);
    try {
      const lost = () => run.kill(ctx.session.state === "open" ? "client" : "disconnect");
      const out = await wireRun(run, { run: stream, stderr: slot.stream }, lost);
      // The exec.stderr reply waits for the audit write, so that both replies
      // leave in the same turn and can share one socket write: a second small
      // write would wait on Nagle's algorithm over TLS (docs/bench.md).
      try {
        await backend.audit.run({
          start: startedAt,
          user: ctx.user.name,
          addr: ctx.addr,
          ...compactArgv(run.argv, RUN_ARGV_BYTES),
          cwd: run.cwd,
          durationMs: out.durationMs,
          code: out.code,
          signal: out.signal,
          timedOut: out.timedOut,
          ...(out.killed ? { killed: out.killed } : {}),
          ...remote,
        });
      } finally {
        slot.resolve({ bytes: out.stderrBytes });
      }
      return {
        code: out.code,
        signal: out.signal,
        timedOut: out.timedOut,
        durationMs: out.durationMs,
      };
    } finally {
      runs.runs.delete(token);
      state.live.delete(run);
    }
  } catch (e) {
    runs.fail(token, e as Error);
    if (e instanceof RequestError) {
      await backend.audit.refused({
        start: startedAt,
        user: ctx.user.name,
        addr: ctx.addr,
        ...compactArgv(argvForAudit ?? _rawArgv(raw, settings.shellPath), REFUSED_ARGV_BYTES),
        cwd: null,
        durationMs: 0,
        code: null,
        signal: null,
        refused: e.code,
        ...remote,
      }).catch(() => {});
    }
    throw e;
  } finally {
    if (counted) {
      const left = (state.perUser.get(ctx.user.name) ?? 1) - 1;
      if (left <= 0) state.perUser.delete(ctx.user.name);
      else state.perUser.set(ctx.user.name, left);
    }
  }
}

/** The command line of a request refused before it was validated (cut later for the log). */
function _rawArgv(args: Json, shellPath: string): string[] {
  const raw: { argv?: unknown; shell?: unknown } = typeof args === "object" && args !== null
    ? args
    : {};
  if (Array.isArray(raw.argv)) return raw.argv.slice(0, 4096).map((a) => String(a));
  if (typeof raw.shell === "string") return [shellPath, "-c", raw.shell];
  return [];
}
