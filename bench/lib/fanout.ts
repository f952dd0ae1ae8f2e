/**
 * A fan-out driver shared by the Parley and NATS sides of scenario 2: one
 * sender, N receivers, all in this process; measures deliveries per second
 * (sender as fast as flow allows) and latency percentiles at a fixed rate.
 *
 * @module
 */
import { cpuMs } from "./procs.ts";
import { quantile } from "./stats.ts";

/** One pub/sub system under test. */
export interface FanoutSystem {
  /**
   * Connects `n` receivers; `onMessage` gets each delivered payload, and the
   * group of the receiver that got it when the system has groups (e.g. the
   * node a receiver is connected to).
   */
  receivers(n: number, onMessage: (payload: string, group?: string) => void): Promise<void>;
  /** Connects the sender. */
  sender(): Promise<void>;
  /** Publishes one payload (may resolve when accepted, not delivered). */
  publish(payload: string): Promise<void> | void;
  /** Closes everything. */
  close(): Promise<void>;
  /** The server process(es), whose CPU time per delivery is reported. */
  serverPids?: number[];
}

/** Results of one fan-out run. */
export interface FanoutResult {
  /** Deliveries per second with the sender going flat out. */
  deliveriesPerSec: number;
  /** Median latency (ms) at the fixed rate. */
  p50: number;
  /** 99th percentile latency (ms) at the fixed rate. */
  p99: number;
  /** p50 and p99 (ms) per receiver group, when the system reports groups. */
  groups: Record<string, { p50: number; p99: number }>;
  /** Server CPU time (µs, all server processes) per delivery in the flat-out phase, if known. */
  serverCpuUs?: number;
  /** CPU time (µs) of this process (the sender and every receiver) per delivery in that phase. */
  clientCpuUs: number;
}

/**
 * Runs a warm-up, then the flat-out and fixed-rate phases against `system`.
 * The warm-up (`warmup` messages, flat out, not measured) lets both systems
 * reach steady state (compiled code, grown buffers) before the clock starts.
 */
export async function runFanout(
  system: FanoutSystem,
  options: { receivers: number; burst: number; rate: number; seconds: number; warmup?: number },
): Promise<FanoutResult> {
  let delivered = 0;
  let target = 0;
  let onTarget: (() => void) | undefined;
  const latencies: number[] = [];
  const byGroup = new Map<string, number[]>();
  let measuring = false;
  await system.receivers(options.receivers, (payload, group) => {
    delivered++;
    if (measuring) {
      const ms = performance.now() - Number(payload.split(" ", 2)[1]);
      latencies.push(ms);
      if (group !== undefined) {
        const list = byGroup.get(group) ?? [];
        if (list.length === 0) byGroup.set(group, list);
        list.push(ms);
      }
    }
    if (delivered === target) onTarget?.();
  });
  await system.sender();
  const waitFor = (n: number, ms: number) =>
    new Promise<void>((resolve, reject) => {
      if (delivered >= n) return resolve();
      target = n;
      const timer = setTimeout(
        () => reject(new Error(`only ${delivered}/${n} delivered in ${ms} ms`)),
        ms,
      );
      onTarget = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  const warmup = options.warmup ?? 0;
  for (let i = 0; i < warmup; i++) await system.publish(`w ${performance.now()} ${i}`);
  await waitFor(warmup * options.receivers, 120_000);
  // Burst: deliveries per second, and CPU per delivery.
  delivered = 0;
  const deliveries = options.burst * options.receivers;
  const pids = [...(system.serverPids ?? []), Deno.pid];
  const cpu0 = await cpuMs(pids);
  const t0 = performance.now();
  for (let i = 0; i < options.burst; i++) await system.publish(`b ${performance.now()} ${i}`);
  await waitFor(deliveries, 120_000);
  const deliveriesPerSec = deliveries / ((performance.now() - t0) / 1000);
  const cpuUs = (await cpuMs(pids)).map((ms, i) => (ms - cpu0[i]!) * 1000 / deliveries);
  const clientCpuUs = cpuUs.pop()!;
  const serverCpuUs = system.serverPids?.length ? cpuUs.reduce((a, b) => a + b, 0) : undefined;
  // Fixed rate: latency.
  delivered = 0;
  measuring = true;
  const count = Math.round(options.rate * options.seconds);
  const interval = 1000 / options.rate;
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    const due = start + i * interval;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    await system.publish(`r ${performance.now()} ${i}`);
  }
  await waitFor(count * options.receivers, 60_000);
  measuring = false;
  await system.close();
  const groups: FanoutResult["groups"] = {};
  for (const [g, ms] of byGroup) groups[g] = { p50: quantile(ms, 0.5), p99: quantile(ms, 0.99) };
  return {
    deliveriesPerSec,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    groups,
    clientCpuUs,
    ...(serverCpuUs !== undefined ? { serverCpuUs } : {}),
  };
}
