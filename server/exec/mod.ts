/**
 * The exec feature: runs allowlisted commands for users with the exec right
 * (PROTOCOL.md "Operations: exec", docs/exec.md).
 *
 * - `exec.stderr {token}` opens the stream that will carry a run's stderr.
 * - `exec.run {token, argv | shell, cwd?, timeoutMs?}` opens the stream that
 *   carries stdin (client → server) and stdout (server → client); its reply
 *   is `{code, signal, timedOut, durationMs}`.
 * - `exec.signal {token, signal}` signals a run's process group.
 *
 * @module
 */
import { basename, dirname, join } from "@std/path";
import type { MuxStream } from "../../protocol/mux_stream.ts";
import type { ClientContext } from "../context.ts";
import { RequestError } from "../errors.ts";
import type { Feature, FeatureDeps } from "../feature.ts";
import { AuditLog, compactArgv, REFUSED_ARGV_BYTES, RUN_ARGV_BYTES } from "./audit_log.ts";
import { checkExecPlacement, type ExecConfig, parseExecConfig } from "./exec_config.ts";
import { checkAllowed, parseRunArgs, planRun, TOKEN_PATTERN } from "./exec_policy.ts";
import { ExecProcess } from "./exec_process.ts";
import { GroupSignaller } from "./group_signaller.ts";
import { RefusalThrottle } from "./refusal_throttle.ts";
import { RunTable } from "./run_table.ts";
import { ExecSandbox } from "./sandbox.ts";

/** Signals a client may send to a run. */
export const CLIENT_SIGNALS: readonly Deno.Signal[] = [
  "SIGINT",
  "SIGTERM",
  "SIGKILL",
  "SIGHUP",
  "SIGQUIT",
  "SIGUSR1",
  "SIGUSR2",
  "SIGCONT",
  "SIGSTOP",
  "SIGTSTP",
  "SIGWINCH",
];

/** How long shutdown waits for runs to report after killing them. */
const _SHUTDOWN_WAIT_MS = 5_000;

function _need(stream: MuxStream | undefined): MuxStream {
  if (!stream) throw new RequestError("bad_request", "this operation needs a stream");
  return stream;
}

function _token(args: Record<string, unknown>): string {
  const t = args.token;
  if (typeof t !== "string" || !TOKEN_PATTERN.test(t)) {
    throw new RequestError("bad_request", "token must be 8–64 of A-Z a-z 0-9 _ -");
  }
  return t;
}

/** The real path of `path`, or of its nearest existing ancestor with the rest appended. */
async function _realPathOfNearest(path: string): Promise<string> {
  const rest: string[] = [];
  let p = path;
  for (let i = 0; i < 4096; i++) {
    try {
      return join(await Deno.realPath(p), ...rest.reverse());
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound) || dirname(p) === p) throw e;
      rest.push(basename(p));
      p = dirname(p);
    }
  }
  throw new RangeError(`path too deep: ${path}`);
}

/** The uid the server runs as (without needing --allow-sys: the owner of a file it creates). */
async function _serverUid(dir: string): Promise<number> {
  try {
    return Deno.uid() ?? -1;
  } catch {
    const f = await Deno.makeTempFile({ dir, prefix: ".uid-" });
    try {
      return (await Deno.stat(f)).uid ?? -1;
    } finally {
      await Deno.remove(f);
    }
  }
}

/**
 * Creates the exec feature. Throws `ExecSandboxError` when the sandbox is
 * wanted but cannot run, and a `TypeError` when the exec root and the data
 * dir overlap (symlinks followed).
 */
export async function createExecFeature(deps: FeatureDeps): Promise<Feature> {
  const config = parseExecConfig(deps.config, deps.dataDir);
  if (!config.enabled) return _disabledFeature(config);
  // Checked with symlinks followed, before anything is created when the
  // permissions let us look at the root's parents (else right after).
  const dataReal = await Deno.realPath(deps.dataDir);
  let rootReal: string | null = null;
  try {
    rootReal = await _realPathOfNearest(config.root);
    checkExecPlacement(dataReal, rootReal, config.readOnlyPaths);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotCapable)) throw e;
  }
  const sandbox = await ExecSandbox.create(config, await _serverUid(deps.dataDir));
  if (rootReal === null) {
    checkExecPlacement(dataReal, await Deno.realPath(config.root), config.readOnlyPaths);
  }
  if (config.sandbox) {
    await sandbox.probe();
  } else {
    deps.log.warn(
      "exec: commands run WITHOUT a sandbox (--exec-unsandboxed): they can read everything " +
        "the server's user can, including the data dir with every account's key, and " +
        "daemons they start may outlive them. Install bubblewrap instead; see docs/exec.md",
    );
  }
  const audit = await AuditLog.open(config.auditLog, { maxBytes: config.auditMaxBytes });
  const throttle = new RefusalThrottle(config.auditRefusedPerMinute);
  const signaller = new GroupSignaller({ killPath: config.killPath });
  if (signaller.method === "leader-only") {
    deps.log.warn(
      (config.sandbox
        ? "exec: cannot signal process groups; client signals other than SIGKILL will not " +
          "reach sandboxed commands. "
        : "exec: cannot signal process groups; descendants of a command may survive it. ") +
        `Grant --allow-run=${config.killPath},… (or unscoped --allow-run); see docs/exec.md`,
    );
  }
  deps.log.info("exec enabled", {
    shell: config.shell,
    allow: config.shell ? "any" : config.allow,
    root: config.root,
    sandbox: config.sandbox,
    network: config.network,
    runAs: sandbox.drop ? `${sandbox.drop.uid}:${sandbox.drop.gid}` : "server user",
  });
  const perUser = new Map<string, number>();
  const active = new Set<Promise<unknown>>();
  const everyRun = new Set<ExecProcess>();
  let closing = false;

  const table = (ctx: ClientContext): RunTable => {
    let t = ctx.state.get("exec") as RunTable | undefined;
    if (!t) ctx.state.set("exec", t = new RunTable());
    return t;
  };

  const track = <T>(p: Promise<T>): Promise<T> => {
    active.add(p);
    const forget = () => active.delete(p);
    p.then(forget, forget);
    return p;
  };

  const runOp = async (
    ctx: ClientContext,
    raw: Record<string, unknown>,
    stream: MuxStream,
  ): Promise<unknown> => {
    const startedAt = new Date().toISOString();
    const runs = table(ctx);
    const token = _token(raw);
    let argvForAudit: readonly string[] | null = null;
    let cwd: string | null = null;
    let counted = false;
    try {
      if (closing) throw new RequestError("closed", "the server is shutting down");
      checkAllowed(config, ctx.user);
      const args = parseRunArgs(raw);
      if (runs.runs.has(token)) throw new RequestError("bad_request", "this token is in use");
      const n = perUser.get(ctx.user.name) ?? 0;
      if (n >= config.maxPerUser) {
        throw new RequestError(
          "busy",
          `${ctx.user.name} already has ${n} commands running (limit ${config.maxPerUser})`,
        );
      }
      perUser.set(ctx.user.name, n + 1);
      counted = true;
      const plan = await planRun(config, { args, userDir: await sandbox.userDir(ctx.user.name) });
      argvForAudit = plan.argv;
      cwd = plan.cwd;
      const slot = await runs.claim(token);
      let proc: ExecProcess;
      try {
        proc = ExecProcess.spawn(plan, {
          launch: sandbox.launch({ argv: plan.argv, userDir: plan.userDir, cwd: plan.cwd }),
          env: config.env,
          signaller,
          streams: { run: stream, stderr: slot.stream },
          lostReason: () => ctx.session.state === "open" ? "client" : "disconnect",
        });
      } catch (e) {
        slot.reject(e as Error);
        throw e;
      }
      runs.runs.set(token, proc);
      everyRun.add(proc);
      try {
        const out = await proc.done;
        slot.resolve({ bytes: out.stderrBytes });
        await audit.write({
          start: startedAt,
          user: ctx.user.name,
          addr: ctx.addr,
          ...compactArgv(plan.argv, RUN_ARGV_BYTES),
          cwd: plan.cwd,
          durationMs: out.durationMs,
          code: out.code,
          signal: out.signal,
          timedOut: out.timedOut,
          ...(out.killed ? { killed: out.killed } : {}),
        });
        return {
          code: out.code,
          signal: out.signal,
          timedOut: out.timedOut,
          durationMs: out.durationMs,
        };
      } finally {
        runs.runs.delete(token);
        everyRun.delete(proc);
      }
    } catch (e) {
      runs.fail(token, e as Error);
      const suppressed = e instanceof RequestError ? throttle.take(ctx.user.name) : null;
      if (e instanceof RequestError && suppressed !== null) {
        await audit.write({
          start: startedAt,
          user: ctx.user.name,
          addr: ctx.addr,
          ...compactArgv(argvForAudit ?? _rawArgv(raw, config.shellPath), REFUSED_ARGV_BYTES),
          cwd,
          durationMs: 0,
          code: null,
          signal: null,
          refused: e.code,
          ...(suppressed > 0 ? { suppressed } : {}),
        }).catch(() => {});
      }
      throw e;
    } finally {
      if (counted) {
        const left = (perUser.get(ctx.user.name) ?? 1) - 1;
        if (left <= 0) perUser.delete(ctx.user.name);
        else perUser.set(ctx.user.name, left);
      }
    }
  };

  return {
    name: "exec",
    register(reg) {
      reg.register("exec.stderr", (ctx, args, stream) => {
        const s = _need(stream);
        checkAllowed(config, ctx.user);
        if (closing) throw new RequestError("closed", "the server is shutting down");
        const token = _token(args as Record<string, unknown>);
        const runs = table(ctx);
        if (runs.has(token)) throw new RequestError("bad_request", "this token is in use");
        if (runs.waiting >= config.maxPerUser * 2) {
          throw new RequestError("busy", "too many exec.stderr streams waiting for their run");
        }
        return track(runs.offer(token, s));
      });
      reg.register(
        "exec.run",
        (ctx, args, stream) => track(runOp(ctx, args as Record<string, unknown>, _need(stream))),
      );
      reg.register("exec.signal", async (ctx, args) => {
        checkAllowed(config, ctx.user);
        const a = args as Record<string, unknown>;
        const token = _token(a);
        const sig = a.signal;
        if (typeof sig !== "string" || !CLIENT_SIGNALS.includes(sig as Deno.Signal)) {
          throw new RequestError(
            "bad_request",
            `signal must be one of ${CLIENT_SIGNALS.join(", ")}`,
          );
        }
        const proc = table(ctx).runs.get(token);
        if (!proc || !proc.running) {
          throw new RequestError("not_found", "no running command with this token");
        }
        await proc.signal(sig as Deno.Signal);
        return {};
      });
    },
    onLogout(ctx) {
      const runs = ctx.state.get("exec") as RunTable | undefined;
      if (!runs) return;
      runs.close();
      for (const proc of runs.runs.values()) proc.kill("disconnect");
    },
    async close() {
      if (closing) return;
      closing = true;
      for (const proc of everyRun) proc.kill("shutdown");
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.allSettled([...active]),
        new Promise((r) => (timer = setTimeout(r, _SHUTDOWN_WAIT_MS))),
      ]);
      clearTimeout(timer);
      const start = new Date().toISOString();
      for (const [user, n] of throttle.drain()) {
        await audit.write({
          start,
          user,
          addr: "",
          argv: [],
          cwd: null,
          durationMs: 0,
          code: null,
          signal: null,
          refused: "suppressed",
          suppressed: n,
        }).catch(() => {});
      }
      await audit.close();
    },
  };
}

/** The command line of a request refused before it was validated (cut later for the log). */
function _rawArgv(raw: Record<string, unknown>, shellPath: string): string[] {
  if (Array.isArray(raw.argv)) return raw.argv.slice(0, 4096).map((a) => String(a));
  if (typeof raw.shell === "string") return [shellPath, "-c", raw.shell];
  return [];
}

function _disabledFeature(config: ExecConfig): Feature {
  const refuse = (ctx: ClientContext) => {
    checkAllowed(config, ctx.user);
    return Promise.reject(new RequestError("internal", "exec is not available"));
  };
  return {
    name: "exec",
    register(reg) {
      for (const op of ["exec.stderr", "exec.run", "exec.signal"]) {
        reg.register(op, (ctx) => Promise.resolve().then(() => refuse(ctx)));
      }
    },
  };
}
