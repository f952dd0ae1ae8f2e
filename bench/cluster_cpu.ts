/**
 * CPU time per operation in cluster mode, per process (from `/proc/PID/stat`,
 * 10 ms ticks), for the capacity model in docs/cluster.md: steadier than
 * wall-clock rates on a machine the processes share.
 *
 * - `append`: chat appends to an R3 `PARLEY_MSG` through the backend, one at
 *   a time, 64 and 256 in flight; CPU of each nats-server and of this process.
 * - `feed`: two `parley serve --cluster` nodes with no clients follow appends
 *   made from this process; CPU per message of each node.
 * - `fanout`: 1 sender on node a → 100 receivers (50 on a, 50 on b), then the
 *   same on one embedded node; CPU per delivery of each process.
 *
 *     deno run --allow-net=127.0.0.1 --allow-read --allow-write --allow-run --allow-env --allow-sys \
 *       bench/cluster_cpu.ts [append|feed|fanout|all] [count]
 *
 * @module
 */
import { connect } from "@nats-io/transport-node";
import { Logger } from "../server/log.ts";
import { openNatsChat } from "../server/nats/chat.ts";
import { startNatsCluster } from "../tests/cluster/nats_fixture.ts";
import { clusterFanout } from "./lib/cluster_fanout.ts";
import type { FanoutSystem } from "./lib/fanout.ts";
import { parleyFanout } from "./lib/parley_fanout.ts";
import {
  type BenchCluster,
  natsInstalled,
  NO_NATS,
  startBenchCluster,
} from "./lib/parley_cluster.ts";
import { cpuMs } from "./lib/procs.ts";

const what = Deno.args[0] ?? "all";
const count = Number(Deno.args[1] ?? 0) || undefined;
const quiet = new Logger({ level: "error", sink: () => {} });
const config = {
  chat: { ratePerSecond: 1_000_000, rateBurst: 1_000_000, historyPerRoom: 10_000 },
  limits: { maxPendingBytes: 64 * 1024 * 1024 },
};

/** Runs `fn` and returns µs of CPU per `n` operations for each of `pids`. */
async function perOp(pids: number[], n: number, fn: () => Promise<void>) {
  const before = await cpuMs(pids);
  const t0 = performance.now();
  await fn();
  const seconds = (performance.now() - t0) / 1000;
  const after = await cpuMs(pids);
  return {
    perSecond: Math.round(n / seconds),
    cpuUs: after.map((a, i) => Number(((a - before[i]!) * 1000 / n).toFixed(1))),
  };
}

const msg = (i: number) => ({
  room: `r${i % 5}`,
  from: "ada",
  text: `message ${i} ${"x".repeat(80)}`,
  ts: i,
});

async function appendMany(
  append: (i: number) => Promise<unknown>,
  n: number,
  window: number,
): Promise<void> {
  const inflight = new Set<Promise<unknown>>();
  for (let i = 0; i < n; i++) {
    while (inflight.size >= window) await Promise.race(inflight);
    const p = append(i).finally(() => inflight.delete(p));
    inflight.add(p);
  }
  await Promise.all(inflight);
}

async function appendCost(n: number): Promise<void> {
  await using cluster = await startNatsCluster();
  const nc = await connect({ servers: cluster.urls[0]! });
  const a = await openNatsChat(nc, { node: "a", replicas: 3, log: quiet });
  try {
    await appendMany((i) => a.log.append(msg(i)), 500, 64);
    const pids = [...cluster.servers.map((s) => s.pid), Deno.pid];
    for (const window of [1, 64, 256]) {
      const m = window === 1 ? Math.ceil(n / 4) : n;
      const r = await perOp(pids, m, () => appendMany((i) => a.log.append(msg(i)), m, window));
      const jsz = await (await fetch(`${cluster.servers[0]!.monitorUrl}/jsz?streams=true`))
        .json() as {
          account_details?: { stream_detail?: { name: string; cluster?: { leader?: string } }[] }[];
        };
      const leader = jsz.account_details?.[0]?.stream_detail?.find((d) => d.name === "PARLEY_MSG")
        ?.cluster?.leader;
      console.log(JSON.stringify({
        test: "append R3",
        inFlight: window,
        appends: m,
        perSecond: r.perSecond,
        cpuUsPerAppend: Object.fromEntries(
          [...cluster.servers.map((s) => s.name + (s.name === leader ? " (leader)" : "")), "this"]
            .map((k, i) => [k, r.cpuUs[i]]),
        ),
      }));
    }
  } finally {
    await a.close();
    await nc.close();
  }
}

async function feedCost(tmp: string, n: number): Promise<void> {
  await using cl = await startBenchCluster({ tmp });
  const nc = await connect({ servers: cl.nats.urls[0]! });
  const w = await openNatsChat(nc, { node: "w", replicas: 3, log: quiet });
  try {
    const pids = cl.nodes.map((x) => x.process.pid);
    await new Promise((r) => setTimeout(r, 1000));
    const r = await perOp(pids, n, async () => {
      await appendMany((i) => w.log.append(msg(i)), n, 64);
      await new Promise((r) => setTimeout(r, 1000)); // the feeds catch up
    });
    console.log(JSON.stringify({
      test: "feed, nodes with no clients",
      messages: n,
      cpuUsPerMessage: { a: r.cpuUs[0], b: r.cpuUs[1] },
    }));
  } finally {
    await w.close();
    await nc.close();
  }
}

async function fanoutCost(tmp: string, burst: number): Promise<void> {
  for (const mode of ["cluster", "one node"]) {
    let cl: BenchCluster | undefined;
    let sys: FanoutSystem;
    let nodePids: number[];
    if (mode === "cluster") {
      cl = await startBenchCluster({ tmp, config });
      sys = clusterFanout(cl);
      nodePids = cl.nodes.map((x) => x.process.pid);
    } else {
      const one = await parleyFanout({ dataDir: await Deno.makeTempDir({ dir: tmp }) });
      sys = one;
      nodePids = one.serverPids;
    }
    try {
      let delivered = 0;
      let done!: () => void;
      const all = new Promise<void>((r) => (done = r));
      await sys.receivers(100, () => {
        if (++delivered === burst * 100) done();
      });
      await sys.sender();
      const names = cl ? ["node a", "node b", "this"] : ["node", "this"];
      const pids = [...nodePids, Deno.pid];
      const r = await perOp(pids, burst * 100, async () => {
        for (let i = 0; i < burst; i++) await sys.publish(`b ${i}`);
        const timer = new Promise<never>((_, rej) => {
          const id = setTimeout(() => rej(new Error(`${delivered} delivered in 120 s`)), 120_000);
          Deno.unrefTimer(id);
        });
        await Promise.race([all, timer]);
      });
      console.log(JSON.stringify({
        test: `fan-out 1 → 100, ${mode}`,
        deliveriesPerSecond: r.perSecond,
        cpuUsPerDelivery: Object.fromEntries(names.map((k, i) => [k, r.cpuUs[i]])),
      }));
    } finally {
      await sys.close();
      await cl?.close();
    }
  }
}

if (import.meta.main) {
  if (!natsInstalled()) {
    console.log(NO_NATS);
    Deno.exit(0);
  }
  const tmp = await Deno.makeTempDir({ prefix: "parley-cluster-cpu-" });
  try {
    if (what === "append" || what === "all") await appendCost(count ?? 20_000);
    if (what === "feed" || what === "all") await feedCost(tmp, count ?? 20_000);
    if (what === "fanout" || what === "all") await fanoutCost(tmp, count ?? 2_000);
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}
