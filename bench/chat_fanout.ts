/**
 * Chat fan-out benchmark: one sender, N receivers in one room, in-process
 * server over loopback TCP. Reports deliveries per second (messages × receivers
 * / elapsed) and end-to-end latency percentiles at a fixed send rate.
 *
 * Run: deno run --allow-net=127.0.0.1 --allow-read --allow-write --allow-env --allow-sys \
 *        bench/chat_fanout.ts [--receivers 100] [--messages 2000] [--rate 100]
 *
 * @module
 */
import { parseArgs } from "@std/cli/parse-args";
import { ChatClient } from "../client/chat/chat_client.ts";
import { startTestServer } from "../tests/helpers.ts";

/** Result of one run. */
export interface FanoutResult {
  receivers: number;
  messages: number;
  deliveriesPerSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
}

function _pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
}

/** Runs the benchmark; bounded in clients, messages and time (60 s per phase). */
export async function chatFanout(
  options: { receivers?: number; messages?: number; rate?: number } = {},
): Promise<FanoutResult> {
  const receivers = Math.min(options.receivers ?? 100, 1000);
  const messages = Math.min(options.messages ?? 2000, 100_000);
  const rate = Math.min(options.rate ?? 100, 10_000);
  await using t = await startTestServer({
    features: { chat: { ratePerSecond: 1_000_000, rateBurst: 1_000_000, historyPerRoom: 10_000 } },
    limits: { maxPendingBytes: 64 * 1024 * 1024 },
  });
  const sender = await ChatClient.start(await t.connect("sender"), { inbox: false });
  let received = 0;
  let done!: () => void;
  let target = 0;
  let reached = new Promise<void>((r) => (done = r));
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  const chats: ChatClient[] = [];
  for (let i = 0; i < receivers; i++) await t.addUser(`r${i}`);
  for (let i = 0; i < receivers; i += 25) {
    chats.push(
      ...await Promise.all(Array.from({ length: Math.min(25, receivers - i) }, async (_, j) => {
        const c = await ChatClient.start(await t.connect(`r${i + j}`), { inbox: false });
        c.onEvent((e) => {
          if (e.kind !== "msg" || e.replay) return;
          const at = sentAt.get(e.msg.text);
          if (at !== undefined) latencies.push(performance.now() - at);
          if (++received === target) done();
        });
        await c.join("bench");
        return c;
      })),
    );
  }
  const deadline = (what: string) =>
    new Promise<never>((_, rej) => {
      const id = setTimeout(() => rej(new Error(`${what} did not finish in 60 s`)), 60_000);
      Deno.unrefTimer(id);
    });

  // throughput: send as fast as the server accepts, in windows of 100 in flight
  target = messages * receivers;
  const start = performance.now();
  const inflight = new Set<Promise<unknown>>();
  for (let i = 0; i < messages; i++) {
    const p = sender.send({ room: "bench" }, `t${i}`);
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
    if (inflight.size >= 100) await Promise.race(inflight);
  }
  await Promise.race([reached, deadline("throughput phase")]);
  const elapsed = (performance.now() - start) / 1000;

  // latency at a fixed rate
  received = 0;
  const n = Math.min(messages, rate * 5);
  target = n * receivers;
  reached = new Promise<void>((r) => (done = r));
  const gap = 1000 / rate;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const wait = t0 + i * gap - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    sentAt.set(`l${i}`, performance.now());
    void sender.send({ room: "bench" }, `l${i}`);
  }
  await Promise.race([reached, deadline("latency phase")]);
  latencies.sort((a, b) => a - b);
  for (const c of chats) c.close();
  sender.close();
  return {
    receivers,
    messages,
    deliveriesPerSecond: Math.round((messages * receivers) / elapsed),
    latencyP50Ms: Number(_pct(latencies, 0.5).toFixed(2)),
    latencyP99Ms: Number(_pct(latencies, 0.99).toFixed(2)),
  };
}

if (import.meta.main) {
  const f = parseArgs(Deno.args, { string: ["receivers", "messages", "rate"] });
  const r = await chatFanout({
    receivers: f.receivers ? Number(f.receivers) : undefined,
    messages: f.messages ? Number(f.messages) : undefined,
    rate: f.rate ? Number(f.rate) : undefined,
  } as { receivers?: number; messages?: number; rate?: number });
  console.log(JSON.stringify(r));
  console.log(
    `chat fan-out: 1 sender → ${r.receivers} receivers, ${r.messages} messages: ` +
      `${r.deliveriesPerSecond.toLocaleString("en")} deliveries/s; ` +
      `latency at fixed rate p50 ${r.latencyP50Ms} ms, p99 ${r.latencyP99Ms} ms`,
  );
}
