/**
 * Scenario 6: connect + handshake time, in-process client and `parley ping`
 * as a process, against `ssh -p … true` to a loopback sshd.
 *
 * @module
 */
import { join } from "@std/path";
import { ParleyClient } from "../../client/client.ts";
import { keyBytes, ROOT, spawnServer } from "../../tests/helpers.ts";
import type { BenchContext, Scenario } from "../lib/context.ts";
import { repeat, type Summary } from "../lib/stats.ts";
import type { Row } from "../lib/report.ts";
import { run } from "../lib/procs.ts";

async function _timeProcess(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<number> {
  const t0 = performance.now();
  await run(cmd, args, { env });
  return performance.now() - t0;
}

/** The handshake scenario. */
export const handshakeScenario: Scenario = {
  id: "handshake",
  title: "connect + handshake",
  async run(ctx: BenchContext): Promise<Row[]> {
    const dataDir = await Deno.makeTempDir({ dir: ctx.tmp, prefix: "hs-" });
    await using server = await spawnServer({ dataDir, denoFlags: ctx.serverFlags ?? [] });
    const key = await server.addUser("bench");
    const n = ctx.quick ? 20 : 100;
    const inProcess = await repeat(ctx.runs, async () => {
      const times: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        const c = await ParleyClient.connect({
          host: "127.0.0.1",
          port: server.port,
          user: "bench",
          key: keyBytes(key),
          ...server.clientOptions, // the default: TLS, pinned
        });
        times.push(performance.now() - t0);
        await c.close();
      }
      times.sort((a, b) => a - b);
      return times[Math.floor(times.length / 2)]!;
    }, 1);
    const cliRuns = ctx.quick ? 3 : 7;
    const env = { PARLEY_KEY: key, NO_COLOR: "1", ...server.clientEnv };
    const pingArgs = [
      "run",
      "--allow-net=127.0.0.1",
      "--allow-read",
      "--allow-env",
      join(ROOT, "main.ts"),
      "ping",
      "--count",
      "0",
      `parley://bench@127.0.0.1:${server.port}`,
    ];
    const cli = await repeat(cliRuns, () => _timeProcess(Deno.execPath(), pingArgs, env), 1);
    let ssh: Summary | undefined;
    if (ctx.sshd) {
      const args = [...ctx.sshd.sshArgs, "root@127.0.0.1", "true"];
      ssh = await repeat(cliRuns, () => _timeProcess("ssh", args), 1);
    }
    const target = { text: "report", met: () => true };
    return [
      {
        scenario: "connect+handshake (in-process)",
        unit: "ms",
        parley: inProcess,
        baselineName: ssh ? "ssh true" : undefined,
        baseline: ssh,
        lowerIsBetter: true,
        target,
        note: `median of ${n} connects per run`,
      },
      {
        scenario: "connect+handshake (parley ping process)",
        unit: "ms",
        parley: cli,
        baselineName: ssh ? "ssh true" : undefined,
        baseline: ssh,
        lowerIsBetter: true,
        target,
        note: "includes runtime start-up",
      },
    ];
  },
};
