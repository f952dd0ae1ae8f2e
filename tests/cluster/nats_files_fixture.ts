/**
 * Parley "nodes" for the NATS files tests: a NATS files backend on its own
 * connection to one server, and two of them on a 3-server cluster (R3).
 *
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { HashGate, UploadTarget } from "../../server/backend/files.ts";
import { type NatsFiles, openNatsFiles } from "../../server/nats/files.ts";
import { connectTo } from "../backend/files_nats_fixture.ts";
import { type NatsCluster, startNatsCluster } from "./nats_fixture.ts";

/** Runs hashing work directly. */
export const direct: HashGate = (work) => work();

/** One node: its connection and backend. */
export interface Node extends AsyncDisposable {
  nc: NatsConnection;
  files: NatsFiles;
}

/** A node on `url` (no periodic sweep unless `sweepEveryMs`). */
export async function node(
  url: string,
  name: string,
  replicas: number,
  leaseMs?: number,
  sweepEveryMs = 0,
): Promise<Node> {
  const nc = await connectTo([url]);
  const files = await openNatsFiles(nc, {
    node: name,
    replicas,
    sweepEveryMs,
    ...(leaseMs ? { leaseMs } : {}),
  });
  return {
    nc,
    files,
    async [Symbol.asyncDispose]() {
      await files.close();
      if (!nc.isClosed()) await nc.close();
    },
  };
}

/** A 3-server cluster and two nodes on different servers. */
export async function twoNodes(leaseMs?: number): Promise<[NatsCluster, Node, Node]> {
  const cluster = await startNatsCluster();
  const a = await node(cluster.servers[0]!.url, "a", 3, leaseMs);
  const b = await node(cluster.servers[1]!.url, "b", 3, leaseMs);
  return [cluster, a, b];
}

/** An upload of `size` bytes to ada's `big.bin`, keyed by `tag`. */
export function target(size: number, tag: string): UploadTarget {
  return { user: "ada", parts: ["big.bin"], size, id: { tag }, overwrite: false, parents: false };
}
