/**
 * The NATS side of the fan-out comparison: a local `nats-server`, N
 * subscriber connections and one publisher, through the official client.
 *
 * @module
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { FanoutSystem } from "./fanout.ts";
import { freePort, type ProcessGroup, waitPort } from "./procs.ts";

/** Starts nats-server and returns a fan-out system bound to it. */
export async function natsFanout(group: ProcessGroup): Promise<FanoutSystem> {
  const port = freePort();
  const child = group.spawn("nats-server", ["-a", "127.0.0.1", "-p", String(port)]);
  await waitPort(port);
  const conns: NatsConnection[] = [];
  let pub: NatsConnection | undefined;
  const dec = new TextDecoder();
  return {
    serverPids: [child.pid],
    async receivers(n, onMessage) {
      for (let i = 0; i < n; i++) {
        const nc = await connect({ servers: `127.0.0.1:${port}` });
        conns.push(nc);
        nc.subscribe("room.lobby", { callback: (_err, msg) => onMessage(dec.decode(msg.data)) });
        await nc.flush();
      }
    },
    async sender() {
      pub = await connect({ servers: `127.0.0.1:${port}` });
    },
    publish(payload) {
      pub!.publish("room.lobby", payload);
    },
    async close() {
      await Promise.all([...conns, pub!].map((c) => c.close()));
      child.kill("SIGTERM");
      await child.status;
    },
  };
}
