/**
 * Scenario 4: server memory per authenticated idle connection at 1 000
 * connections and at as many as the open-file limit allows, up to 20 000
 * (target ≤ 16 KiB each there; the server and this process each need one
 * descriptor per connection).
 *
 * @module
 */
import { ParleyClient } from "../../client/client.ts";
import { keyBytes, spawnServer } from "../../tests/helpers.ts";
import type { BenchContext, Scenario } from "../lib/context.ts";
import { summarize } from "../lib/stats.ts";
import type { Row } from "../lib/report.ts";
import { rssKiB } from "../lib/procs.ts";

async function _settle(pid: number): Promise<number> {
  await new Promise((r) => setTimeout(r, 1500));
  return await rssKiB(pid);
}

/** Most connections both processes can hold under the soft open-file limit, up to 20 000. */
async function _mostConnections(): Promise<number> {
  const limits = await Deno.readTextFile("/proc/self/limits").catch(() => "");
  const soft = Number(/^Max open files\s+(\d+)/m.exec(limits)?.[1] ?? 20_000);
  return Math.min(20_000, soft - 200);
}

/** The idle-connection scenario. */
export const idleScenario: Scenario = {
  id: "idle",
  title: "idle connections",
  async run(ctx: BenchContext): Promise<Row[]> {
    const most = await _mostConnections();
    const counts = ctx.quick ? [1000] : [1000, most];
    const rows: Row[] = [];
    for (const count of counts) {
      const perConn: number[] = [];
      const runs = ctx.quick || count > 1000 ? 1 : Math.min(ctx.runs, 2);
      for (let r = 0; r < runs; r++) {
        const dataDir = await Deno.makeTempDir({ dir: ctx.tmp, prefix: "idle-" });
        // Plaintext with the frame MAC, as these rows have always measured.
        await using server = await spawnServer({ dataDir, args: ["--plain"] });
        // Logins in flight at once stay under the server's limits (5 per account and 30 per
        // address): one per account, 25 accounts.
        const keys: [string, Uint8Array][] = [];
        for (let i = 0; i < 25; i++) {
          keys.push([`idle${i}`, keyBytes(await server.addUser(`idle${i}`))]);
        }
        const connect = (n: number) =>
          Promise.all(
            keys.slice(0, n).map(([user, key]) =>
              ParleyClient.connect({ host: "127.0.0.1", port: server.port, user, key, tls: false })
            ),
          );
        // Warm the server with a few connections so one-time allocations are in the baseline.
        const warm = await connect(20);
        const before = await _settle(server.process.pid);
        const clients: ParleyClient[] = [];
        const batch = keys.length;
        for (let i = 0; i < count; i += batch) {
          clients.push(...await connect(Math.min(batch, count - i)));
        }
        await clients[0]!.call("diag.echo", {});
        const after = await _settle(server.process.pid);
        perConn.push((after - before) / count);
        ctx.log(`idle: ${count} connections, server RSS ${before} → ${after} KiB`);
        await Promise.all([...clients, ...warm].map((c) => c.close()));
      }
      rows.push({
        scenario: `idle connections × ${count}`,
        unit: "KiB/conn",
        parley: summarize(perConn),
        lowerIsBetter: true,
        target: count > 1000
          ? { text: "≤ 16 KiB/conn", met: (row) => row.parley.median <= 16 }
          : { text: "≤ 64 KiB/conn", met: (row) => row.parley.median <= 64 },
      });
    }
    return rows;
  },
};
