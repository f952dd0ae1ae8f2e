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

/** A 3-server cluster and two nodes on different servers; disposing it closes b, a, then the cluster. */
export interface TwoNodes extends AsyncDisposable {
  readonly cluster: NatsCluster;
  readonly a: Node;
  readonly b: Node;
}

/** Starts {@linkcode TwoNodes}; what started is closed again if a later step fails. */
export async function twoNodes(leaseMs?: number): Promise<TwoNodes> {
  await using stack = new AsyncDisposableStack();
  const cluster = stack.use(await startNatsCluster());
  const a = stack.use(await node(cluster.servers[0]!.url, "a", 3, leaseMs));
  const b = stack.use(await node(cluster.servers[1]!.url, "b", 3, leaseMs));
  const owned = stack.move();
  return { cluster, a, b, [Symbol.asyncDispose]: () => owned.disposeAsync() };
}

/** An upload of `size` bytes to ada's `big.bin`, keyed by `tag`. */
export function target(size: number, tag: string): UploadTarget {
  return { user: "ada", parts: ["big.bin"], size, id: { tag }, overwrite: false, parents: false };
}
