/**
 * Exec round trip: `true` run through `parley exec` on an open session
 * (in the bubblewrap sandbox, with `--exec-unsandboxed` to show what the
 * sandbox costs, and on `serve --plain` to show what TLS adds), against
 * spawning `true` locally, and against `ssh … true` to a loopback
 * sshd when one is installed (fresh connection, and multiplexed over an open
 * master connection, the closest match to an open Parley session).
 *
 * The process side is measured apart from Parley too: the sandbox's own
 * start-up (bwrap with the options a run gets, running `true`), and the
 * whole launch of a run (the wrappers around bwrap included) spawned
 * directly. The target is the local spawn twice plus what bwrap adds to it.
 *
 * As a scenario it plugs into `deno task bench`; alone:
 *
 *     deno run --allow-net=127.0.0.1,localhost --allow-read --allow-write \
 *       --allow-run --allow-env --allow-sys bench/exec_rtt.ts [--quick]
 *
 * @module
 */
import { join } from "@std/path";
import { parseArgs } from "@std/cli/parse-args";
import type { ParleyClient } from "../client/client.ts";
import { RemoteExec } from "../client/exec/exec_remote.ts";
import { ExecSandbox } from "../server/embedded/exec_sandbox.ts";
import { execCaps, parseExecConfig } from "../server/exec/exec_config.ts";
import { ROOT, spawnServer } from "../tests/helpers.ts";
import type { BenchContext, Scenario } from "./lib/context.ts";
import { ProcessGroup, run } from "./lib/procs.ts";
import { formatTable, type Row } from "./lib/report.ts";
import { startSshd } from "./lib/sshd.ts";
import { repeat, summarize, type Summary } from "./lib/stats.ts";

/** Median of `n` timings of `fn`, in ms. */
async function _median(n: number, fn: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

async function _execTrue(client: ParleyClient): Promise<void> {
  const r = RemoteExec.start(client, { argv: ["true"] }, { stdout: () => {}, stderr: () => {} });
  r.endInput();
  const { code } = await r.done;
  if (code !== 0) throw new Error(`remote true exited ${code}`);
}

async function _localTrue(): Promise<void> {
  const out = await new Deno.Command("true", { stdin: "null", stdout: "null", stderr: "null" })
    .output();
  if (!out.success) throw new Error("local true failed");
}

/** A program and its arguments, spawned as a run is: empty environment but the exec one. */
interface Spawnable {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
}

async function _spawnTrue(p: Spawnable): Promise<void> {
  const out = await new Deno.Command(p.argv[0]!, {
    args: p.argv.slice(1),
    cwd: p.cwd,
    clearEnv: true,
    env: p.env,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`${p.argv[0]} failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}

/**
 * What a sandboxed run of `true` spawns, built by the server's own code
 * under a fresh exec root: the whole launch, and bwrap alone with the same
 * options (started through setpriv when the bench runs as root, as runs are).
 */
async function _sandboxLaunches(ctx: BenchContext): Promise<{ full: Spawnable; bwrap: Spawnable }> {
  await Deno.chmod(ctx.tmp, 0o711);
  const dataDir = await Deno.makeTempDir({ dir: ctx.tmp, prefix: "exec-launch-" });
  const config = parseExecConfig({ enabled: true, allow: ["true"] }, dataDir);
  const sandbox = await ExecSandbox.create(config, Deno.uid() ?? -1);
  const userDir = await sandbox.userDir("bench");
  const launch = sandbox.launch({
    argv: ["true"],
    userDir,
    cwd: userDir,
    caps: execCaps(config),
    env: config.env,
  });
  const full = [launch.program, ...launch.args];
  const bwrapAt = full.indexOf(config.bwrapPath);
  const optionsEnd = full.indexOf("--", bwrapAt);
  if (bwrapAt < 0 || optionsEnd < 0) throw new Error("no bwrap in the sandbox's launch");
  const start = sandbox.drop ? full.indexOf(config.setprivPath) : bwrapAt;
  const bwrap = [...full.slice(start, optionsEnd + 1), "/usr/bin/true"];
  const env = launch.env;
  return {
    full: { argv: full, cwd: launch.cwd, env },
    bwrap: { argv: bwrap, cwd: launch.cwd, env },
  };
}

/** Medians of `n` local spawns, bwrap spawns and whole launches of `true`, per run. */
async function _processSide(
  ctx: BenchContext,
  n: number,
): Promise<{ local: Summary; sandbox?: { bwrap: Summary; launch: Summary; target: Summary } }> {
  let launches: { full: Spawnable; bwrap: Spawnable };
  try {
    launches = await _sandboxLaunches(ctx);
    await _spawnTrue(launches.bwrap);
  } catch (e) {
    ctx.log(`no sandbox start-up figures: ${(e as Error).message}`);
    return { local: await repeat(ctx.runs, () => _median(n, _localTrue), 1) };
  }
  const local: number[] = [];
  const bwrap: number[] = [];
  const launch: number[] = [];
  for (let i = -1; i < ctx.runs; i++) { // the first round warms up
    const l = await _median(n, _localTrue);
    const b = await _median(n, () => _spawnTrue(launches.bwrap));
    const f = await _median(n, () => _spawnTrue(launches.full));
    if (i < 0) continue;
    local.push(l);
    bwrap.push(b);
    launch.push(f);
  }
  return {
    local: summarize(local),
    sandbox: {
      bwrap: summarize(bwrap),
      launch: summarize(launch),
      // 2 × local spawn + what bwrap adds to it (bwrap − local), round by round.
      target: summarize(local.map((l, i) => l + bwrap[i]!)),
    },
  };
}

/** Run permission of a sandboxed server: bwrap through env, and kill for process groups. */
const _SANDBOX_RUN = "--allow-run=/usr/bin/env,/usr/bin/bwrap,/usr/bin/kill";
/** Run permission of an `--exec-unsandboxed` server: its launch through env, and kill. */
const _UNSANDBOXED_RUN = "--allow-run=/usr/bin/env,/usr/bin/kill";

/** Deno flags for a server with exec in `dataDir` (its exec root is `<dataDir>-exec`). */
function _execFlags(dataDir: string, runFlag: string): string[] {
  return [runFlag, `--allow-read=${dataDir}-exec`, `--allow-write=${dataDir}-exec`];
}

/** Measures `parley exec true` on an open session for one server permission set. */
async function _parleyOpenSession(
  ctx: BenchContext,
  runFlag: string,
  n: number,
  sandbox = true,
  plain = false,
): Promise<Summary> {
  await Deno.chmod(ctx.tmp, 0o711); // runs as uid 65534 under a root server must reach the exec root
  const dataDir = await Deno.makeTempDir({ dir: ctx.tmp, prefix: "exec-" });
  await Deno.writeTextFile(
    join(dataDir, "config.json"),
    JSON.stringify({ exec: { allow: ["true"], sandbox } }),
  );
  await using server = await spawnServer({
    dataDir,
    args: plain ? ["--exec", "--plain"] : ["--exec"],
    denoFlags: _execFlags(dataDir, runFlag),
  });
  await using client = await server.connect("bench", { exec: true });
  return await repeat(ctx.runs, () => _median(n, () => _execTrue(client)), 1);
}

/** The start-up target: no slower than the baseline. */
const _AT_MOST = { text: "≤ 1×", met: (r: Row) => r.parley.median <= r.baseline!.median };

/** The exec round-trip scenario. */
export const execRttScenario: Scenario = {
  id: "exec",
  title: "exec round trip of `true`",
  async run(ctx: BenchContext): Promise<Row[]> {
    const n = ctx.quick ? 20 : 100;
    const cliRuns = ctx.quick ? 3 : 7;
    const { local, sandbox } = await _processSide(ctx, n);
    const scoped = await _parleyOpenSession(ctx, _SANDBOX_RUN, n);
    const unscoped = await _parleyOpenSession(ctx, "--allow-run", n);
    const bare = await _parleyOpenSession(ctx, _UNSANDBOXED_RUN, n, false);
    const plain = await _parleyOpenSession(ctx, _SANDBOX_RUN, n, true, true);
    let sshFresh: Summary | undefined;
    let sshMux: Summary | undefined;
    if (ctx.sshd) {
      const base = [...ctx.sshd.sshArgs, "root@127.0.0.1"];
      sshFresh = await repeat(cliRuns, () => _median(1, () => run("ssh", [...base, "true"])), 1);
      const sock = join(ctx.sshd.dir, "mux.sock");
      const mux = [
        "-o",
        "ControlMaster=auto",
        "-o",
        `ControlPath=${sock}`,
        "-o",
        "ControlPersist=60",
      ];
      await run("ssh", [...mux, ...base, "true"]); // opens the master connection
      try {
        sshMux = await repeat(
          ctx.runs,
          // ssh starts a client process per run (~0.6 s): 20 a run keep the scenario short.
          () => _median(Math.min(n, 20), () => run("ssh", [...mux, ...base, "true"])),
          1,
        );
      } finally {
        await run("ssh", [...mux, "-O", "exit", ...base]).catch(() => "");
      }
    }
    // The one-shot command as a process: runtime start-up + handshake + run.
    const dataDir = await Deno.makeTempDir({ dir: ctx.tmp, prefix: "exec-cli-" });
    await Deno.writeTextFile(
      join(dataDir, "config.json"),
      JSON.stringify({ exec: { allow: ["true"] } }),
    );
    let cli: Summary;
    {
      await using server = await spawnServer({
        dataDir,
        args: ["--exec"],
        denoFlags: _execFlags(dataDir, _SANDBOX_RUN),
      });
      const key = await server.addUser("bench", { exec: true });
      const args = [
        "run",
        "--allow-net=127.0.0.1",
        "--allow-read",
        "--allow-env",
        join(ROOT, "main.ts"),
        "exec",
        "-n",
        "--",
        "true",
      ];
      const env = { PARLEY_KEY: key, PARLEY_SERVER: server.url("bench"), ...server.clientEnv };
      cli = await repeat(cliRuns, () => _median(1, () => run(Deno.execPath(), args, { env })), 1);
    }
    const target = { text: "report", met: () => true };
    const rows: Row[] = [
      {
        scenario: "exec true, open session (scoped --allow-run)",
        unit: "ms",
        parley: scoped,
        baselineName: "local spawn of true",
        baseline: local,
        lowerIsBetter: true,
        target,
        note: `median of ${n}; process groups signalled through /usr/bin/kill`,
      },
      {
        scenario: "exec true, open session (unscoped --allow-run)",
        unit: "ms",
        parley: unscoped,
        baselineName: "local spawn of true",
        baseline: local,
        lowerIsBetter: true,
        target,
        note: `median of ${n}; process groups signalled with Deno.kill`,
      },
      {
        scenario: "exec true, open session (sandboxed, scoped --allow-run)",
        unit: "ms",
        parley: scoped,
        baselineName: "same, --exec-unsandboxed",
        baseline: bare,
        lowerIsBetter: true,
        target,
        note: `median of ${n}; the difference is the bubblewrap sandbox's start-up`,
      },
      {
        scenario: "exec true, open session (sandboxed, TLS default)",
        unit: "ms",
        parley: scoped,
        baselineName: "same, serve --plain",
        baseline: plain,
        lowerIsBetter: true,
        target,
        note: `median of ${n}; the difference is what TLS adds to a round trip`,
      },
    ];
    if (sandbox) {
      rows.push(
        {
          scenario: "sandbox start-up: bwrap with a run's options, running true",
          unit: "ms",
          parley: sandbox.bwrap,
          baselineName: "local spawn of true",
          baseline: local,
          lowerIsBetter: true,
          target,
          note: `median of ${n}; spawned directly, through setpriv when run as root (as runs are)`,
        },
        {
          scenario: "a run's whole launch of true, spawned directly",
          unit: "ms",
          parley: sandbox.launch,
          baselineName: "bwrap alone (row above)",
          baseline: sandbox.bwrap,
          lowerIsBetter: true,
          target,
          note: `median of ${n}; the difference is the programs around bwrap ` +
            "(env, setsid, setpriv when root, perl, prlimit)",
        },
        {
          scenario: "exec true, open session (sandboxed, scoped --allow-run)",
          unit: "ms",
          parley: scoped,
          baselineName: "its launch spawned directly",
          baseline: sandbox.launch,
          lowerIsBetter: true,
          target,
          note: `median of ${n}; the difference is Parley's own part of a run`,
        },
        {
          scenario: "exec true, open session (sandboxed, scoped --allow-run)",
          unit: "ms",
          parley: scoped,
          baselineName: "2× local spawn + bwrap's own",
          baseline: sandbox.target,
          lowerIsBetter: true,
          target: _AT_MOST,
          note: "bwrap's own start-up is the bwrap row less the local spawn",
        },
      );
    }
    rows.push({
      scenario: "exec true, open session (--exec-unsandboxed)",
      unit: "ms",
      parley: bare,
      baselineName: "2× local spawn of true",
      baseline: { ...local, median: 2 * local.median, min: 2 * local.min, max: 2 * local.max },
      lowerIsBetter: true,
      target: _AT_MOST,
      note: `median of ${n}; runs through prlimit, then kill for the process group`,
    });
    if (sshMux) {
      rows.push({
        scenario: "exec true, open session (scoped --allow-run)",
        unit: "ms",
        parley: scoped,
        baselineName: "ssh true over an open master",
        baseline: sshMux,
        lowerIsBetter: true,
        target,
        note: "median of 20; ssh ControlMaster multiplexing; includes the ssh client's start-up",
      });
    }
    rows.push({
      scenario: "parley exec -- true (process)",
      unit: "ms",
      parley: cli,
      baselineName: sshFresh ? "ssh true (new connection)" : undefined,
      baseline: sshFresh,
      lowerIsBetter: true,
      target,
      note: "includes Deno start-up and the handshake",
    });
    return rows;
  },
};

if (import.meta.main) {
  const flags = parseArgs(Deno.args, { boolean: ["quick", "help"], string: ["runs"] });
  if (flags.help) {
    console.log("Usage: deno run … bench/exec_rtt.ts [--quick] [--runs N]");
    Deno.exit(0);
  }
  await using group = new ProcessGroup();
  const tmp = await Deno.makeTempDir({ prefix: "parley-bench-exec-" });
  const log = (msg: string) => console.error(`bench: ${msg}`);
  const ctx: BenchContext = {
    quick: Boolean(flags.quick),
    runs: Number(flags.runs ?? (flags.quick ? 1 : 3)),
    group,
    sshd: await startSshd(group).catch((e) => {
      log(`no sshd baseline: ${(e as Error).message}`);
      return undefined;
    }),
    tmp,
    log,
  };
  try {
    console.log(formatTable(await execRttScenario.run(ctx)));
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    if (ctx.sshd) await Deno.remove(ctx.sshd.dir, { recursive: true }).catch(() => {});
  }
}
