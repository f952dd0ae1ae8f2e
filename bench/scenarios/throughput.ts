/**
 * Context for the transfer figures: raw stream throughput of one Parley
 * connection (`diag.sink` / `diag.source`: framing, MAC and flow control, no
 * files or hashing) against `iperf3` over plain loopback TCP. No target: it
 * shows how much of a transfer's time is the protocol and how much is the
 * machine.
 *
 * @module
 */
import type { ParleyClient } from "../../client/client.ts";
import { spawnServer } from "../../tests/helpers.ts";
import type { BenchContext, Scenario } from "../lib/context.ts";
import { MiB } from "../lib/make_file.ts";
import { freePort, have } from "../lib/procs.ts";
import type { Row } from "../lib/report.ts";
import { repeat, type Summary } from "../lib/stats.ts";

async function _sink(client: ParleyClient, total: number): Promise<number> {
  const chunk = new Uint8Array(256 * 1024);
  const t0 = performance.now();
  const { stream, result } = client.open("diag.sink", {});
  for (let sent = 0; sent < total; sent += chunk.byteLength) await stream.write(chunk);
  stream.end();
  await result;
  return total / 1e6 / ((performance.now() - t0) / 1000);
}

async function _source(client: ParleyClient, total: number): Promise<number> {
  const t0 = performance.now();
  const { stream, result } = client.open("diag.source", { bytes: total }, { fin: true });
  let n = 0;
  for (let b = await stream.read(); b; b = await stream.read()) n += b.byteLength;
  await result;
  if (n !== total) throw new Error(`diag.source sent ${n} of ${total} bytes`);
  return total / 1e6 / ((performance.now() - t0) / 1000);
}

/** One iperf3 transfer of `total` bytes over loopback; MB/s as the receiver saw it. */
async function _iperf3(ctx: BenchContext, total: number): Promise<number> {
  const port = freePort();
  // No readiness probe: iperf3 takes any connection for a test's control channel.
  const server = ctx.group.spawn("iperf3", ["-s", "-B", "127.0.0.1", "-p", String(port)]);
  try {
    let last = "";
    for (let attempt = 0; attempt < 10; attempt++) {
      await new Promise((r) => setTimeout(r, 200));
      const out = await new Deno.Command("iperf3", {
        args: ["-c", "127.0.0.1", "-p", String(port), "-n", String(total), "-J"],
        stdout: "piped",
        stderr: "null",
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      try {
        const report = JSON.parse(text) as {
          error?: string;
          end?: { sum_received?: { bits_per_second: number } };
        };
        const bps = report.end?.sum_received?.bits_per_second;
        if (bps !== undefined) return bps / 8 / 1e6;
        last = report.error ?? text;
      } catch {
        last = text;
      }
    }
    throw new Error(`iperf3 gave no result: ${last.slice(0, 300)}`);
  } finally {
    try {
      server.kill("SIGTERM");
    } catch {
      // already exited
    }
    await server.status;
  }
}

/** The raw-throughput scenario. */
export const throughputScenario: Scenario = {
  id: "throughput",
  title: "raw stream throughput vs iperf3",
  async run(ctx: BenchContext): Promise<Row[]> {
    const total = (ctx.quick ? 256 : 1024) * MiB;
    const dataDir = await Deno.makeTempDir({ dir: ctx.tmp, prefix: "tp-" });
    let sink: Summary;
    let source: Summary;
    {
      await using server = await spawnServer({ dataDir, denoFlags: ctx.serverFlags ?? [] });
      await using client = await server.connect("bench");
      sink = await repeat(ctx.runs, () => _sink(client, total));
      source = await repeat(ctx.runs, () => _source(client, total));
    }
    await Deno.remove(dataDir, { recursive: true });
    let iperf: Summary | undefined;
    if (await have("iperf3")) {
      iperf = await repeat(ctx.runs, () => _iperf3(ctx, total)).catch((e) => {
        ctx.log(`throughput: no iperf3 baseline: ${(e as Error).message}`);
        return undefined;
      });
    }
    const label = `${total / MiB} MiB`;
    return [{
      scenario: `raw stream up ${label} (diag.sink)`,
      unit: "MB/s",
      parley: sink,
      baselineName: iperf ? "iperf3 TCP" : undefined,
      baseline: iperf,
      lowerIsBetter: false,
      note: "context: framing + MAC + flow control, no files",
    }, {
      scenario: `raw stream down ${label} (diag.source)`,
      unit: "MB/s",
      parley: source,
      baselineName: iperf ? "iperf3 TCP" : undefined,
      baseline: iperf,
      lowerIsBetter: false,
      note: "context: framing + MAC + flow control, no files",
    }];
  },
};
