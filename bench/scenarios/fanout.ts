/**
 * Scenario 2: chat fan-out, 1 sender → 100 receivers in one room. Deliveries
 * per second with the sender going flat out (a bounded number of messages
 * outstanding), and p50/p99 delivery latency at a fixed send rate, against
 * `nats-server` with the same client count, in the same run.
 *
 * @module
 */
import type { BenchContext, Scenario } from "../lib/context.ts";
import { type FanoutResult, runFanout } from "../lib/fanout.ts";
import { natsFanout } from "../lib/nats_fanout.ts";
import { PARLEY_SEND_WINDOW, parleyFanout } from "../lib/parley_fanout.ts";
import { have } from "../lib/procs.ts";
import type { Row } from "../lib/report.ts";
import { summarize } from "../lib/stats.ts";

const _RECEIVERS = 100;

/** The fan-out scenario. */
export const fanoutScenario: Scenario = {
  id: "fanout",
  title: `chat fan-out 1 → ${_RECEIVERS} vs nats-server`,
  async run(ctx: BenchContext): Promise<Row[]> {
    const options = {
      receivers: _RECEIVERS,
      burst: ctx.quick ? 300 : 3000,
      warmup: ctx.quick ? 100 : 300,
      rate: 100,
      seconds: ctx.quick ? 2 : 5,
    };
    const parley: FanoutResult[] = [];
    const parleyTls: FanoutResult[] = [];
    const nats: FanoutResult[] = [];
    const withNats = await have("nats-server");
    if (!withNats) ctx.log("fanout: nats-server is not installed; no baseline");
    for (let i = 0; i < ctx.runs; i++) {
      ctx.log(`fanout run ${i + 1}/${ctx.runs}`);
      const dataDir = await Deno.makeTempDir({ dir: ctx.tmp, prefix: "fanout-" });
      parley.push(
        await runFanout(
          await parleyFanout({ dataDir, denoFlags: ctx.serverFlags ?? [] }),
          options,
        ),
      );
      await Deno.remove(dataDir, { recursive: true });
      const tlsDir = await Deno.makeTempDir({ dir: ctx.tmp, prefix: "fanout-tls-" });
      parleyTls.push(
        await runFanout(
          await parleyFanout({ dataDir: tlsDir, denoFlags: ctx.serverFlags ?? [], tls: true }),
          options,
        ),
      );
      await Deno.remove(tlsDir, { recursive: true });
      if (withNats) nats.push(await runFanout(await natsFanout(ctx.group), options));
      const last = parley.at(-1)!;
      ctx.log(
        `fanout: parley ${last.deliveriesPerSec.toFixed(0)}/s p50 ${last.p50.toFixed(2)} ms p99 ${
          last.p99.toFixed(2)
        } ms; TLS ${parleyTls.at(-1)!.deliveriesPerSec.toFixed(0)}/s p50 ${
          parleyTls.at(-1)!.p50.toFixed(2)
        } ms p99 ${parleyTls.at(-1)!.p99.toFixed(2)} ms` +
          (withNats
            ? `; nats ${nats.at(-1)!.deliveriesPerSec.toFixed(0)}/s p50 ${
              nats.at(-1)!.p50.toFixed(2)
            } ms p99 ${nats.at(-1)!.p99.toFixed(2)} ms`
            : ""),
      );
    }
    const pick = (rs: FanoutResult[], f: (r: FanoutResult) => number) =>
      rs.length ? summarize(rs.map(f)) : undefined;
    const name = withNats ? "nats-server" : undefined;
    const report = { text: "report", met: () => true };
    const label = `chat fan-out 1→${_RECEIVERS}`;
    /** The rows of one Parley mode; `notes` only on the first mode's rows. */
    const rows = (mode: string, rs: FanoutResult[], notes: boolean): Row[] => {
      const row = (
        what: string,
        unit: string,
        f: (r: FanoutResult) => number,
        lowerIsBetter: boolean,
        note?: string,
      ): Row => ({
        scenario: `${label}${mode}, ${what}`,
        unit,
        parley: pick(rs, f)!,
        baselineName: name,
        baseline: pick(nats, f),
        lowerIsBetter,
        target: report,
        ...(notes && note !== undefined ? { note } : {}),
      });
      return [
        row(
          "sender flat out",
          "deliveries/s",
          (r) => r.deliveriesPerSec,
          false,
          `${options.burst} messages after ${options.warmup} unmeasured; ` +
            `chat.send pipelined, ${PARLEY_SEND_WINDOW} awaiting their reply (nats: publish, no reply)`,
        ),
        row(
          "server CPU per delivery",
          "µs",
          (r) => r.serverCpuUs ?? NaN,
          true,
          "server process CPU time (user + system) in the flat-out phase / deliveries",
        ),
        row(
          "receiving side's CPU per delivery",
          "µs",
          (r) => r.clientCpuUs,
          true,
          "the bench process (sender and all receivers, one thread: the flat-out " +
            "phase's ceiling) / deliveries",
        ),
        row(
          `p50 latency at ${options.rate} msg/s`,
          "ms",
          (r) => r.p50,
          true,
          `${options.rate * options.seconds} messages × ${_RECEIVERS} receivers`,
        ),
        row(`p99 latency at ${options.rate} msg/s`, "ms", (r) => r.p99, true),
      ];
    };
    // Plaintext with the frame MAC, as these rows have always measured; then TLS, the default.
    return [...rows("", parley, true), ...rows(", TLS", parleyTls, false)];
  },
};
