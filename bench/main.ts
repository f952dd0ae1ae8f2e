/**
 * `deno task bench`: runs every scenario against its baseline in the same
 * run, prints one table and writes JSON and an SVG chart to bench/out/.
 *
 * Options: `--quick` (short runs), `--only ID[,ID]`, `--runs N`, `--out DIR`,
 * `--cpu-prof DIR` (profile the server processes and summarise where the
 * time went), `--no-install`.
 *
 * @module
 */
import { parseArgs } from "@std/cli/parse-args";
import { fromFileUrl, join, resolve } from "@std/path";
import type { BenchContext, Scenario } from "./lib/context.ts";
import { childPids, ProcessGroup, run } from "./lib/procs.ts";
import { formatNotes, formatTable, type Row, toJson, toSvg } from "./lib/report.ts";
import { ensureTools, mountTmpfs } from "./lib/setup.ts";
import { startSshd } from "./lib/sshd.ts";
import { SCENARIOS } from "./scenarios/mod.ts";
import { summarizeProfiles } from "./profile_summary.ts";

const HELP = `Usage: deno task bench [--quick] [--only ID,...] [--runs N] [--out DIR]
                        [--cpu-prof DIR] [--no-install]

Runs the benchmark scenarios (${SCENARIOS.map((s) => s.id).join(", ")}),
each against its baseline in the same run. Installs missing baseline tools
with apt-get when run as root (--no-install: never). Writes bench/out/latest.json,
results-<date>.json and ratios.svg. --cpu-prof DIR runs the server processes
with V8's CPU profiler, writes .cpuprofile files to DIR and prints the top
self-time functions of each (profiling slows the figures down).`;

if (import.meta.main) {
  const flags = parseArgs(Deno.args, {
    boolean: ["quick", "help", "no-install"],
    string: ["only", "runs", "out", "cpu-prof"],
  });
  if (flags.help) {
    console.log(HELP);
    Deno.exit(0);
  }
  const quick = Boolean(flags.quick);
  const only = flags.only ? String(flags.only).split(",") : undefined;
  const selected: Scenario[] = SCENARIOS.filter((s) => !only || only.includes(s.id));
  const outDir = String(flags.out ?? join(fromFileUrl(new URL(".", import.meta.url)), "out"));
  const log = (msg: string) => console.error(`bench: ${msg}`);
  if (!flags["no-install"]) await ensureTools(log);
  await using group = new ProcessGroup();
  const tmpRoot = await Deno.makeTempDir({ prefix: "parley-bench-" });
  const mounted = await mountTmpfs(tmpRoot, log);
  const ctx: BenchContext = {
    quick,
    runs: Number(flags.runs ?? (quick ? 1 : 3)),
    group,
    sshd: await startSshd(group).catch((e) => {
      log(`no sshd baseline: ${(e as Error).message}`);
      return undefined;
    }),
    tmp: tmpRoot,
    log,
  };
  const profDir = flags["cpu-prof"] ? resolve(String(flags["cpu-prof"])) : undefined;
  if (profDir) await Deno.mkdir(profDir, { recursive: true });
  const rows: Row[] = [];
  const started = Date.now();
  const loadBefore = Deno.loadavg();
  const load1 = loadBefore[0] ?? 0;
  if (load1 > 0.5 * navigator.hardwareConcurrency) {
    log(
      `load average ${load1.toFixed(1)} on ${navigator.hardwareConcurrency} CPUs: ` +
        "other work on this machine will show in the figures",
    );
  }
  let cleaned: Promise<void> | undefined;
  const cleanUp = () =>
    cleaned ??= (async () => {
      if (mounted) await run("umount", [tmpRoot]).catch((e) => log(`umount: ${e.message}`));
      await Deno.remove(tmpRoot, { recursive: true }).catch(() => {});
      if (ctx.sshd) await Deno.remove(ctx.sshd.dir, { recursive: true }).catch(() => {});
    })();
  // Interrupted: end what this run started (servers, baselines), unmount, and leave.
  let interrupted = false;
  const stopChildren = async () => {
    for (const pid of await childPids(Deno.pid)) {
      try {
        Deno.kill(pid, "SIGTERM");
      } catch {
        // already gone
      }
    }
  };
  let stopping: Promise<void> | undefined;
  const onSignal = () => stopping ??= interrupt();
  const interrupt = async () => {
    interrupted = true;
    log("interrupted: stopping the processes this run started");
    await stopChildren();
    await group.close();
    await new Promise((r) => setTimeout(r, 500));
    await stopChildren(); // anything a scenario started while winding down
    await new Promise((r) => setTimeout(r, 300));
    await cleanUp();
    Deno.exit(130);
  };
  for (const sig of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(sig, onSignal);
  try {
    for (const s of selected) {
      if (interrupted) break;
      log(`running ${s.id}: ${s.title}`);
      // One profile directory per scenario, so each summary says what it profiled.
      if (profDir) ctx.serverFlags = ["--cpu-prof", `--cpu-prof-dir=${join(profDir, s.id)}`];
      try {
        rows.push(...await s.run(ctx));
      } catch (e) {
        if (!interrupted) log(`scenario ${s.id} failed: ${(e as Error).stack ?? e}`);
      }
    }
  } finally {
    // Interrupted: no partial results; the signal handler exits with 130.
    if (stopping) await stopping;
    await cleanUp();
  }
  console.log(formatTable(rows));
  const notes = formatNotes(rows);
  if (notes) console.log(`\nnotes:\n${notes}`);
  await Deno.mkdir(outDir, { recursive: true });
  const meta = {
    date: new Date().toISOString(),
    quick,
    runs: ctx.runs,
    seconds: (Date.now() - started) / 1000,
    wallSeconds: performance.now() / 1000,
    deno: Deno.version.deno,
    cpus: navigator.hardwareConcurrency,
    loadavgBefore: loadBefore,
    loadavgAfter: Deno.loadavg(),
  };
  const json = JSON.stringify(toJson(rows, meta), null, 2);
  const stamp = meta.date.replace(/[:.]/g, "-");
  await Deno.writeTextFile(join(outDir, `results-${stamp}.json`), json);
  await Deno.writeTextFile(join(outDir, "latest.json"), json);
  await Deno.writeTextFile(join(outDir, "ratios.svg"), toSvg(rows));
  log(
    `wrote ${join(outDir, "latest.json")} and ratios.svg; scenarios ${
      meta.seconds.toFixed(0)
    } s, wall ${meta.wallSeconds.toFixed(0)} s`,
  );
  if (profDir) {
    const dirs: string[] = [];
    for (const s of selected) {
      if (await Deno.stat(join(profDir, s.id)).then(() => true, () => false)) {
        dirs.push(join(profDir, s.id));
      }
    }
    console.log("\n" + await summarizeProfiles(dirs));
  }
  await group.close();
  // A stray start-up timer in a helper may keep the event loop alive; the run is complete.
  Deno.exit(0);
}
