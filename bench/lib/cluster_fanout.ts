/**
 * The cluster side of the fan-out comparison: the sender on node `a`, the
 * receivers alternately on node `a` and node `b` (half each), all joined to
 * one room; a delivery is reported with the node its receiver is on, so the
 * latency of the receivers on `b` (sender on another node) stands apart.
 *
 * @module
 */
import { ParleyClient } from "../../client/client.ts";
import { CHAT_JOIN, CHAT_MSG, CHAT_SEND } from "../../protocol/ops/chat.ts";
import { keyBytes } from "../../tests/helpers.ts";
import type { FanoutSystem } from "./fanout.ts";
import type { BenchCluster } from "./parley_cluster.ts";

const _ROOM = "bench";

/** A fan-out system over `cluster`'s two nodes; `close` closes the clients, not the cluster. */
export function clusterFanout(cluster: BenchCluster, window = 64): FanoutSystem {
  const clients: ParleyClient[] = [];
  let sender: ParleyClient | undefined;
  const inflight = new Set<Promise<unknown>>();
  const [a, b] = cluster.nodes;
  const open = async (port: number, user: string, key: string) => {
    const c = await ParleyClient.connect({
      host: "127.0.0.1",
      port,
      user,
      key: keyBytes(key),
      tls: false,
    });
    clients.push(c);
    return c;
  };
  return {
    async receivers(n, onMessage) {
      const keys: string[] = [];
      for (let i = 0; i < n; i++) keys.push(await cluster.addUser(`r${i}`));
      const batch = 20;
      for (let i = 0; i < n; i += batch) {
        await Promise.all(
          keys.slice(i, i + batch).map(async (key, j) => {
            const k = i + j;
            const group = k % 2 === 0 ? "a" : "b";
            const c = await open(group === "a" ? a.port : b.port, `r${k}`, key);
            c.on(CHAT_MSG, (data) => {
              const text = (data as { text?: unknown }).text;
              if (typeof text === "string") onMessage(text, group);
            });
            await c.call(CHAT_JOIN, { room: _ROOM });
          }),
        );
      }
    },
    async sender() {
      sender = await open(a.port, "sender", await cluster.addUser("sender"));
    },
    async publish(payload) {
      const p = sender!.call(CHAT_SEND, { room: _ROOM, text: payload });
      inflight.add(p);
      void p.then(() => inflight.delete(p), () => inflight.delete(p));
      if (inflight.size >= window) await Promise.race(inflight);
    },
    async close() {
      await Promise.allSettled(inflight);
      await Promise.all(clients.map((c) => c.close()));
    },
  };
}
