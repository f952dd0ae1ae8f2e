/**
 * Parley cluster nodes as real `parley serve --cluster` processes, accounts created with
 * `parley user add --cluster` as an operator would, and clients that list several nodes.
 */
import { assertEquals } from "@std/assert";
import { join } from "@std/path";
import { ChatClient } from "../../client/chat/chat_client.ts";
import { ParleyClient } from "../../client/client.ts";
import type { ClientOptions } from "../../client/client.ts";
import { keyBytes, runParleyUserAllowing, type SpawnedServer, spawnServer } from "../helpers.ts";

/** The certificate fingerprint of each node started here, by port (each node has its own). */
const _fingerprints = new Map<number, string>();

/** A running cluster node. */
export interface ParleyNode extends AsyncDisposable {
  readonly name: string;
  readonly port: number;
  readonly pid: number;
  readonly output: string[];
  readonly server: SpawnedServer;
  /** Sends `signal` (default SIGTERM) and waits until the process exited. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

/**
 * Starts `parley serve --cluster URLS --node NAME` with its own temp data dir (removed on dispose);
 * `config` becomes its config.json (e.g. `{chat: {ratePerSecond: 1000}}` for load tests).
 */
export async function startParleyNode(
  urls: string[],
  name: string,
  extraArgs: string[] = [],
  config?: Record<string, unknown>,
): Promise<ParleyNode> {
  const dataDir = await Deno.makeTempDir({ prefix: `parley-node-${name}-` });
  if (config) await Deno.writeTextFile(join(dataDir, "config.json"), JSON.stringify(config));
  let server: SpawnedServer;
  try {
    server = await spawnServer({
      dataDir,
      args: ["--cluster", urls.join(","), "--node", name, ...extraArgs],
    });
  } catch (e) {
    await Deno.remove(dataDir, { recursive: true });
    throw e;
  }
  if (server.fingerprint) _fingerprints.set(server.port, server.fingerprint);
  return {
    name,
    port: server.port,
    pid: server.process.pid,
    output: server.output,
    server,
    stop: (signal) => server.stop(signal),
    [Symbol.asyncDispose]: async () => {
      await server[Symbol.asyncDispose]();
      await Deno.remove(dataDir, { recursive: true });
    },
  };
}

/** Runs `parley user ARGS --cluster URLS`; returns stdout (must succeed). */
export async function clusterUser(urls: string[], ...args: string[]): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "parley-cluster-user-" });
  try {
    const out = await runParleyUserAllowing(
      ["--allow-net", "--allow-env"],
      dir,
      ...args,
      "--cluster",
      urls.join(","),
    );
    assertEquals(
      out.code,
      0,
      `parley user ${args.join(" ")}: ${out.stderr}`,
    );
    return out.stdout;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Creates an account in the cluster; returns its hex key. */
export async function addClusterUser(
  urls: string[],
  name: string,
  rights: { admin?: boolean; exec?: boolean } = {},
): Promise<string> {
  const out = await clusterUser(
    urls,
    "add",
    name,
    "--json",
    ...(rights.admin ? ["--admin"] : []),
    ...(rights.exec ? ["--exec"] : []),
  );
  return (JSON.parse(out) as { key: string }).key;
}

/**
 * Connects `user` to the first of `nodes` that answers, listing all of them for failover.
 * Nodes started by {@linkcode startParleyNode} serve TLS: each is pinned to its own certificate.
 */
export function connectNodes(
  nodes: { port: number }[],
  user: string,
  key: string,
  options: Partial<ClientOptions> = {},
): Promise<ParleyClient> {
  const servers = nodes.map((n) => ({ host: "127.0.0.1", port: n.port }));
  return ParleyClient.connect({
    host: servers[0]!.host,
    port: servers[0]!.port,
    servers,
    user,
    key: keyBytes(key),
    ...(servers.some((s) => _fingerprints.has(s.port))
      ? { tls: true, pinFor: (_host: string, port: number) => _fingerprints.get(port) }
      : { tls: false }),
    ...options,
  });
}

/** A chat client on cluster nodes and the connection under it. */
export interface NodeChat {
  readonly client: ParleyClient;
  readonly chat: ChatClient;
  /** Stops the chat client, then closes the connection. */
  close(): Promise<void>;
}

/** {@linkcode connectNodes}, then starts a chat client on that connection. */
export async function chatOnNodes(
  nodes: { port: number }[],
  user: string,
  key: string,
  options: Partial<ClientOptions> = {},
): Promise<NodeChat> {
  const client = await connectNodes(nodes, user, key, options);
  let chat: ChatClient;
  try {
    chat = await ChatClient.start(client);
  } catch (e) {
    await client.close();
    throw e;
  }
  return {
    client,
    chat,
    close: async () => {
      chat.close();
      await client.close();
    },
  };
}
