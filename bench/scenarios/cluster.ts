/**
 * Cluster rows: three `nats-server` processes on loopback in one JetStream
 * cluster (streams R3) and two `parley serve --cluster` nodes, against one
 * embedded `parley serve` and `nats-server` alone, in the same run:
 *
 * - chat fan-out 1 → 100 with the sender on node a and the receivers half
 *   on a, half on b: deliveries per second (target ≥ 0.5× one node), and
 *   p50/p99 send-to-deliver latency of the receivers on b at 100 msg/s;
 * - a 64 MiB file put through node a and got through node b (MB/s), against
 *   put and get on one embedded node;
 * - server memory per idle authenticated connection on a cluster node.
 *
 * Skipped, with a message, when nats-server is not installed.
 *
 * @module
 */
import { join } from "@std/path";
import { ParleyClient } from "../../client/client.ts";
import { downloadFile } from "../../client/files/transfer_download.ts";
import { uploadFile } from "../../client/files/transfer_upload.ts";
import { keyBytes, spawnServer } from "../../tests/helpers.ts";
import { clusterFanout } from "../lib/cluster_fanout.ts";
import type { BenchContext, Scenario } from "../lib/context.ts";
import { type FanoutResult, runFanout } from "../lib/fanout.ts";
import { makeFile, MiB, removeQuietly } from "../lib/make_file.ts";
import { natsFanout } from "../lib/nats_fanout.ts";
import { parleyFanout, writeFanoutConfig } from "../lib/parley_fanout.ts";
import { natsInstalled, NO_NATS, startBenchCluster } from "../lib/parley_cluster.ts";
import { rssKiB } from "../lib/procs.ts";
import type { Row } from "../lib/report.ts";
import { summarize, type Summary } from "../lib/stats.ts";

const _RECEIVERS = 100;
/** The chat and queue limits of the fan-out scenario, for the cluster nodes' config.json. */
const _CONFIG = {
  chat: { ratePerSecond: 1_000_000, rateBurst: 1_000_000, historyPerRoom: 10_000 },
  limits: { maxPendingBytes: 64 * 1024 * 1024 },
};

/** One file put through one port and got through another; MB/s (10^6 bytes) each way. */
async function _putGet(
  ports: { put: number; get: number },
  user: string,
  key: string,
  src: string,
  dst: string,
  name: string,
): Promise<{ put: number; get: number }> {
  const size = (await Deno.stat(src)).size;
  const open = (port: number) =>
    ParleyClient.connect({ host: "127.0.0.1", port, user, key: keyBytes(key), tls: false });
  let put: number;
  {
    await using c = await open(ports.put);
    const t0 = performance.now();
    await uploadFile(c, src, name);
    put = size / 1e6 / ((performance.now() - t0) / 1000);
  }
  let get: number;
  {
    await using c = await open(ports.get);
    const t0 = performance.now();
    const r = await downloadFile(c, { path: name }, dst, { overwrite: true });
    get = size / 1e6 / ((performance.now() - t0) / 1000);
    if (r.size !== size) throw new Error(`got ${r.size} bytes back, put ${size}`);
  }
  await removeQuietly(dst);
  return { put, get };
}

/**
 * Logins in flight at once while connecting idle clients: one per account,
 * under the server's login limits (5 per user and 30 per address in flight).
 */
const _IDLE_USERS = 25;

/**
 * Server RSS growth per connection (KiB) for `count` idle authenticated
 * connections, spread over the accounts `keys` (name → hex key).
 */
async function _idle(pid: number, port: number, keys: [string, string][], count: number) {
  const connect = (n: number) =>
    Promise.all(
      keys.slice(0, n).map(([user, key]) =>
        ParleyClient.connect({ host: "127.0.0.1", port, user, key: keyBytes(key), tls: false })
      ),
    );
  const settle = async () => {
    await new Promise((r) => setTimeout(r, 1500));
    return await rssKiB(pid);
  };
  const warm = await connect(keys.length);
  const before = await settle();
  const clients: ParleyClient[] = [];
  try {
    for (let i = 0; i < count; i += keys.length) {
      clients.push(...await connect(Math.min(keys.length, count - i)));
    }
    await clients[0]!.call("diag.echo", {});
    const after = await settle();
    return { perConn: (after - before) / count, before, after };
  } finally {
    await Promise.all([...clients, ...warm].map((c) => c.close()));
  }
}

/** `_IDLE_USERS` accounts made by `add`. */
async function _idleUsers(add: (name: string) => Promise<string>): Promise<[string, string][]> {
  const keys: [string, string][] = [];
  for (let i = 0; i < _IDLE_USERS; i++) keys.push([`idle${i}`, await add(`idle${i}`)]);
  return keys;
}

/** The cluster scenario. */
export const clusterScenario: Scenario = {
  id: "cluster",
  title: "cluster (3 nats-servers, 2 nodes) vs one node and nats-server",
  async run(ctx: BenchContext): Promise<Row[]> {
    if (!natsInstalled()) {
      ctx.log(`cluster: ${NO_NATS}`);
      return [];
    }
    const options = {
      receivers: _RECEIVERS,
      burst: ctx.quick ? 300 : 1000,
      rate: 100,
      seconds: ctx.quick ? 2 : 5,
    };
    const runs = ctx.quick ? 1 : Math.min(ctx.runs, 2);
    const idleCount = 2000;
    const size = 64 * MiB;
    const dir = await Deno.makeTempDir({ dir: ctx.tmp, prefix: "cluster-" });
    const src = join(dir, "src.bin");
    const dst = join(dir, "got.bin");
    await makeFile(src, size);
    const cross: FanoutResult[] = [];
    const single: FanoutResult[] = [];
    const nats: FanoutResult[] = [];
    const files = {
      cPut: [] as number[],
      cGet: [] as number[],
      sPut: [] as number[],
      sGet: [] as number[],
    };
    const idle = { cluster: [] as number[], single: [] as number[] };
    const serverFlags = ctx.serverFlags ?? [];
    try {
      for (let i = 0; i < runs; i++) {
        ctx.log(`cluster run ${i + 1}/${runs}: 3 nats-servers, nodes a and b`);
        {
          await using cluster = await startBenchCluster({
            tmp: dir,
            config: _CONFIG,
            denoFlags: serverFlags,
          });
          // Both fan-outs back to back, in turns first, so a change in the machine's load
          // between them weighs on each side alike; files and idle connections come after.
          const oneNode = async () => {
            const dataDir = await Deno.makeTempDir({ dir, prefix: "single-" });
            single.push(
              await runFanout(
                await parleyFanout({ dataDir, denoFlags: serverFlags }),
                options,
              ),
            );
            await Deno.remove(dataDir, { recursive: true });
          };
          if (i % 2 === 1) await oneNode();
          cross.push(await runFanout(clusterFanout(cluster), options));
          if (i % 2 === 0) await oneNode();
          nats.push(await runFanout(await natsFanout(ctx.group), options));
          const key = await cluster.addUser("files");
          const [a, b] = cluster.nodes;
          const f = await _putGet({ put: a.port, get: b.port }, "files", key, src, dst, `f${i}`);
          files.cPut.push(f.put);
          files.cGet.push(f.get);
          if (i === 0) {
            const users = await _idleUsers((u) => cluster.addUser(u));
            const r = await _idle(b.process.pid, b.port, users, idleCount);
            idle.cluster.push(r.perConn);
            ctx.log(
              `cluster: ${idleCount} idle connections on node b, RSS ${r.before} → ${r.after} KiB`,
            );
          }
        }
        {
          const dataDir = await Deno.makeTempDir({ dir, prefix: "single-files-" });
          await writeFanoutConfig(dataDir);
          await using server = await spawnServer({
            dataDir,
            args: ["--plain"], // as the cluster nodes
            denoFlags: serverFlags,
          });
          const key = await server.addUser("files");
          const p = server.port;
          const f = await _putGet({ put: p, get: p }, "files", key, src, dst, `f${i}`);
          files.sPut.push(f.put);
          files.sGet.push(f.get);
          if (i === 0) {
            const users = await _idleUsers((u) => server.addUser(u));
            const r = await _idle(server.process.pid, p, users, idleCount);
            idle.single.push(r.perConn);
          }
        }
        const c = cross.at(-1)!;
        const s = single.at(-1)!;
        ctx.log(
          `cluster: fan-out ${c.deliveriesPerSec.toFixed(0)}/s (one node ${
            s.deliveriesPerSec.toFixed(0)
          }/s, nats ${nats.at(-1)!.deliveriesPerSec.toFixed(0)}/s); a→b p50 ${
            c.groups.b?.p50.toFixed(2)
          } p99 ${c.groups.b?.p99.toFixed(2)} ms (one node ${s.p50.toFixed(2)}/${
            s.p99.toFixed(2)
          }); put ${files.cPut.at(-1)!.toFixed(0)} get ${
            files.cGet.at(-1)!.toFixed(0)
          } MB/s (one node ${files.sPut.at(-1)!.toFixed(0)}/${files.sGet.at(-1)!.toFixed(0)})`,
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
    const pick = (rs: FanoutResult[], f: (r: FanoutResult) => number): Summary =>
      summarize(rs.map(f));
    const report = { text: "report", met: () => true };
    const one = "one node (embedded)";
    const label = `cluster fan-out 1→${_RECEIVERS} (sender on a, receivers 50 a / 50 b)`;
    const aSide = pick(cross, (r) => r.groups.a?.p50 ?? NaN);
    return [
      {
        scenario: label,
        unit: "deliveries/s",
        parley: pick(cross, (r) => r.deliveriesPerSec),
        baselineName: one,
        baseline: pick(single, (r) => r.deliveriesPerSec),
        lowerIsBetter: false,
        target: {
          text: "≥ 0.5× one node",
          met: (r) => r.baseline !== undefined && r.parley.median >= 0.5 * r.baseline.median,
        },
        note: `${options.burst} messages; chat.send pipelined (the client keeps 16 awaiting ` +
          "a reply); streams R3",
      },
      {
        scenario: `${label} vs nats-server`,
        unit: "deliveries/s",
        parley: pick(cross, (r) => r.deliveriesPerSec),
        baselineName: "nats-server",
        baseline: pick(nats, (r) => r.deliveriesPerSec),
        lowerIsBetter: false,
        target: report,
      },
      {
        scenario: `cluster chat a→b, p50 latency at ${options.rate} msg/s`,
        unit: "ms",
        parley: pick(cross, (r) => r.groups.b?.p50 ?? NaN),
        baselineName: one,
        baseline: pick(single, (r) => r.p50),
        lowerIsBetter: true,
        target: report,
        note: `${options.rate * options.seconds} messages to the 50 receivers on b; ` +
          `receivers on a (same node as the sender) p50 ${aSide.median.toFixed(2)} ms`,
      },
      {
        scenario: `cluster chat a→b, p99 latency at ${options.rate} msg/s`,
        unit: "ms",
        parley: pick(cross, (r) => r.groups.b?.p99 ?? NaN),
        baselineName: one,
        baseline: pick(single, (r) => r.p99),
        lowerIsBetter: true,
        target: report,
      },
      {
        scenario: `cluster file put ${size / MiB} MiB through a`,
        unit: "MB/s",
        parley: summarize(files.cPut),
        baselineName: one,
        baseline: summarize(files.sPut),
        lowerIsBetter: false,
        target: report,
        note: "object store R3 on 3 nats-servers; one node writes to its data dir",
      },
      {
        scenario: `cluster file get ${size / MiB} MiB through b`,
        unit: "MB/s",
        parley: summarize(files.cGet),
        baselineName: one,
        baseline: summarize(files.sGet),
        lowerIsBetter: false,
        target: report,
        note: "put through node a, read back through node b",
      },
      {
        scenario: `cluster node, idle connections × ${idleCount}`,
        unit: "KiB/conn",
        parley: summarize(idle.cluster),
        baselineName: one,
        baseline: summarize(idle.single),
        lowerIsBetter: true,
        target: { text: "≤ 64 KiB/conn", met: (r) => r.parley.median <= 64 },
      },
    ];
  },
};
