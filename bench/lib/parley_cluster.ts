/**
 * A Parley cluster on loopback for the cluster scenario: three `nats-server`
 * processes in one JetStream cluster (the test fixture's configuration) and
 * two `parley serve --cluster … --node a|b` processes, each with its own data
 * dir on the bench's tmpfs. Accounts are created in the cluster's accounts
 * bucket from this process (one NATS write each), as `parley user add
 * --cluster` would, without a process per account.
 *
 * @module
 */
import { join } from "@std/path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { type NatsAccounts, openNatsAccounts } from "../../server/nats/accounts.ts";
import { type SpawnedServer, spawnServer } from "../../tests/helpers.ts";
import {
  type NatsCluster,
  natsServerPath,
  startNatsCluster,
} from "../../tests/cluster/nats_fixture.ts";

/** Why cluster rows are left out when nats-server is not installed. */
export const NO_NATS =
  "nats-server is not installed (apt-get install nats-server): cluster rows skipped";

/** Whether nats-server is installed where the cluster fixture looks for it. */
export function natsInstalled(): boolean {
  return natsServerPath() !== undefined;
}

/** A running bench cluster; dispose it to stop every process and remove its dirs. */
export interface BenchCluster extends AsyncDisposable {
  nats: NatsCluster;
  /** Node `a` and node `b`. */
  nodes: [SpawnedServer, SpawnedServer];
  /** Creates an account in the cluster; resolves to its hex key. */
  addUser(name: string): Promise<string>;
  /** Stops the nodes, then the NATS servers; removes the data dirs. */
  close(): Promise<void>;
}

/** Options of {@linkcode startBenchCluster}. */
export interface BenchClusterOptions {
  /** Parent directory of the nodes' data dirs (the bench's tmpfs). */
  tmp: string;
  /** Written to each node's `config.json` when given. */
  config?: Record<string, unknown>;
  /** Extra Deno flags for the node processes (e.g. `--cpu-prof`). */
  denoFlags?: string[];
}

/** Starts three NATS servers and two Parley nodes; resolves when all of them listen. */
export async function startBenchCluster(options: BenchClusterOptions): Promise<BenchCluster> {
  const nats = await startNatsCluster();
  const dirs: string[] = [];
  const nodes: SpawnedServer[] = [];
  let nc: NatsConnection | undefined;
  let accounts: NatsAccounts | undefined;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await accounts?.close().catch(() => {});
    await nc?.close().catch(() => {});
    await Promise.allSettled(nodes.map((n) => n.stop()));
    await nats.close();
    for (const d of dirs) await Deno.remove(d, { recursive: true }).catch(() => {});
  };
  try {
    for (const name of ["a", "b"]) {
      const dir = await Deno.makeTempDir({ dir: options.tmp, prefix: `node-${name}-` });
      dirs.push(dir);
      if (options.config) {
        await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(options.config));
      }
    }
    // The first node creates the streams and buckets; the second opens them.
    for (const [i, name] of ["a", "b"].entries()) {
      nodes.push(
        await spawnServer({
          dataDir: dirs[i]!,
          // Plaintext with the frame MAC, as these rows have always measured.
          args: ["--cluster", nats.urls.join(","), "--node", name, "--plain"],
          denoFlags: options.denoFlags ?? [],
        }),
      );
    }
    nc = await connect({ servers: nats.urls });
    accounts = await openNatsAccounts(nc, { node: "bench", replicas: 3 });
  } catch (e) {
    await close();
    throw e;
  }
  const acc = accounts;
  return {
    nats,
    nodes: [nodes[0]!, nodes[1]!],
    addUser: (name) => acc.add(name),
    close,
    [Symbol.asyncDispose]: close,
  };
}
