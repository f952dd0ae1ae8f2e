/**
 * A fan-out driver shared by the Parley and NATS sides of scenario 2: one
 * sender, N receivers, all in this process; measures deliveries per second
 * (sender as fast as flow allows) and latency percentiles at a fixed rate.
 *
 * @module
 */
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
}

/** Runs burst and fixed-rate phases against `system`. */
export async function runFanout(
  system: FanoutSystem,
  options: { receivers: number; burst: number; rate: number; seconds: number },
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
  // Burst: deliveries per second.
  const t0 = performance.now();
  for (let i = 0; i < options.burst; i++) await system.publish(`b ${performance.now()} ${i}`);
  await waitFor(options.burst * options.receivers, 120_000);
  const deliveriesPerSec = (options.burst * options.receivers) / ((performance.now() - t0) / 1000);
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
  };
}
