/**
 * The cluster chat backend's speed, through the backend interface, on one
 * nats-server (R1) and on a 3-server cluster (R3): appends one at a time and
 * 64 in flight, append-to-feed latency on a second node (its own connection
 * to another server) at a steady rate, and history pages (the newest 50 of
 * a room, and 50 after a cursor) in a stream of 5 rooms.
 *
 *     deno run --allow-net=127.0.0.1 --allow-read --allow-write --allow-run --allow-env --allow-sys \
 *       bench/nats_chat.ts [appends] [rate/s]
 *
 * @module
 */
import { connect } from "@nats-io/transport-node";
import type { ChatMessage } from "../server/backend/chat.ts";
import { Logger } from "../server/log.ts";
import { openNatsChat } from "../server/nats/chat.ts";
import { startNatsCluster, startNatsServer } from "../tests/cluster/nats_fixture.ts";

const n = Number(Deno.args[0] ?? 2000);
const rate = Number(Deno.args[1] ?? 1000);
const quiet = new Logger({ level: "error", sink: () => {} });
const pct = (xs: number[], p: number): string =>
  ([...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] ?? 0)
    .toFixed(1);
const msg = (i: number) => ({ room: `r${i % 5}`, from: "ada", text: `message ${i}`, ts: i });

for (const replicas of [1, 3]) {
  await using cluster = replicas === 1 ? await startNatsServer() : await startNatsCluster();
  const ncA = await connect({ servers: cluster.urls[0]! });
  const ncB = await connect({ servers: cluster.urls.at(-1)! });
  const a = await openNatsChat(ncA, { node: "a", replicas, log: quiet });
  const b = await openNatsChat(ncB, { node: "b", replicas, log: quiet });
  const sentAt = new Map<string, number>();
  const lat: number[] = [];
  const stop = b.feed.subscribe((m: ChatMessage) => {
    const t = sentAt.get(m.text);
    if (t !== undefined) lat.push(performance.now() - t);
  });
  try {
    let t0 = performance.now();
    for (let i = 0; i < n / 2; i++) await a.log.append(msg(i));
    const seq = (n / 2) / ((performance.now() - t0) / 1000);

    t0 = performance.now();
    const inflight = new Set<Promise<unknown>>();
    for (let i = 0; i < n * 2; i++) {
      while (inflight.size >= 64) await Promise.race(inflight);
      const p = a.log.append(msg(i)).finally(() => inflight.delete(p));
      inflight.add(p);
    }
    await Promise.all(inflight);
    const par = (n * 2) / ((performance.now() - t0) / 1000);

    t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const wait = t0 + (i * 1000) / rate - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      const text = `live ${i}`;
      sentAt.set(text, performance.now());
      while (inflight.size >= 32) await Promise.race(inflight);
      const p = a.log.append({ room: "live", from: "ada", text, ts: i }).finally(() =>
        inflight.delete(p)
      );
      inflight.add(p);
    }
    await Promise.all(inflight);
    for (let i = 0; i < 500 && lat.length < n; i++) await new Promise((r) => setTimeout(r, 10));

    const newest: number[] = [];
    const forward: number[] = [];
    const q = { limit: 50, budget: 48 * 1024 };
    const mid = Number((await b.log.page({ room: "r1" }, { ...q, limit: 1 })).messages[0]!.id) -
      2000;
    for (let i = 0; i < 20; i++) {
      let t = performance.now();
      await b.log.page({ room: "r1" }, q);
      newest.push(performance.now() - t);
      t = performance.now();
      await b.log.page({ room: "r1" }, { ...q, after: mid });
      forward.push(performance.now() - t);
    }
    console.log(JSON.stringify({
      replicas,
      appendsPerS: { oneAtATime: Math.round(seq), inFlight64: Math.round(par) },
      feedOnOtherNode: { rate, got: lat.length, p50Ms: pct(lat, 0.5), p99Ms: pct(lat, 0.99) },
      page50Ms: { newest: pct(newest, 0.5), afterCursor: pct(forward, 0.5) },
    }));
  } finally {
    stop();
    await Promise.allSettled([a.close(), b.close()]);
    await Promise.allSettled([ncA.close(), ncB.close()]);
  }
}
