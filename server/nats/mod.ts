/**
 * The cluster backend: one NATS connection per node, and the NATS implementations of the backend
 * interfaces on top of it. Areas whose NATS implementation is not wired in yet run on the embedded
 * implementation of this node's data dir, and start-up says so loudly: such an area is *not*
 * shared between nodes.
 *
 * Exec runs on the node the client names: this node's embedded runner for itself, another node's
 * over core NATS (`exec.ts`; docs/cluster.md "Exec in a cluster"). The node list is presence's.
 *
 * @module
 */
import { BackendParts, type Closable } from "../backend/parts.ts";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Backend } from "../backend/mod.ts";
import type { ClusterConfig, ServerConfig } from "../config.ts";
import type { Logger } from "../log.ts";
import { parseChatConfig } from "../chat/chat_config.ts";
import { parseFileConfig } from "../files/file_config.ts";
import { openNatsAccounts } from "./accounts.ts";
import { openNatsChat } from "./chat.ts";
import { openNatsChatPolicy } from "./chat_policy.ts";
import { type NatsPresence, openNatsPresence } from "./chat_presence.ts";
import { openNatsConnection } from "./connection.ts";
import { openNatsExec } from "./exec.ts";
import { openNatsFiles } from "./files.ts";

/** Which areas run on NATS (shared by the cluster) and which on this node's data dir. */
export interface ClusterAreas {
  accounts: "nats" | "embedded";
  chat: "nats" | "embedded";
  files: "nats" | "embedded";
  exec: "nats";
}

/** The cluster backend, with its NATS connection (for diagnostics and tests). */
export interface NatsBackend extends Backend {
  readonly nc: NatsConnection;
  readonly node: string;
  /** Replicas of the streams and buckets this node creates. */
  readonly replicas: number;
  readonly areas: ClusterAreas;
}

/** What {@linkcode openNatsBackend} wires in; the defaults are the areas landed so far. */
export const CLUSTER_AREAS: ClusterAreas = {
  accounts: "nats",
  chat: "nats",
  files: "nats",
  exec: "nats",
};

/**
 * Connects this node to the NATS cluster of `config.cluster` and opens every backend on it.
 * Throws when NATS cannot be reached or is older than 2.9.0.
 */
export async function openNatsBackend(config: ServerConfig, log: Logger): Promise<NatsBackend> {
  const cluster: ClusterConfig | undefined = config.cluster;
  if (!cluster) throw new TypeError("openNatsBackend needs a cluster section");
  const nc = await openNatsConnection(cluster, log);
  const parts = new BackendParts();
  const open = <T extends Closable>(p: Promise<T>): Promise<T> => parts.open(p);
  // The connection is drained after every part is closed.
  const close = (): Promise<void> => parts.close(() => nc.drain().catch(() => nc.close()));
  const areas = CLUSTER_AREAS;
  // R3 on a NATS cluster, R1 on a lone server, unless configured.
  const replicas = cluster.replicas ?? (nc.info?.cluster ? 3 : 1);
  const node = cluster.node;
  try {
    const embedded = (Object.keys(areas) as (keyof ClusterAreas)[]).filter((a) =>
      areas[a] === "embedded"
    );
    if (embedded.length > 0) {
      log.warn(
        "CLUSTER MODE IS INCOMPLETE: these areas are NOT shared between nodes and live in this " +
          "node's data dir only",
        { node: cluster.node, areas: embedded, dataDir: config.dataDir },
      );
    }
    const accounts = await open(openNatsAccounts(nc, { node, replicas, log }));
    const chatConfig = parseChatConfig(config.features.chat);
    // Exec lists the nodes presence knows; presence opens with chat, below.
    let presence: NatsPresence | undefined;
    const exec = await open(
      openNatsExec(nc, config, { node, log, nodes: () => presence?.nodes() ?? [] }),
    );
    const execOn = exec.enabled;
    const chat = await open(
      openNatsChat(nc, {
        node,
        replicas,
        historyPerRoom: chatConfig.historyPerRoom,
        dmHistory: chatConfig.dmHistoryPerUser,
        maxTextBytes: chatConfig.maxTextBytes,
        log,
        openPolicy: (c) => openNatsChatPolicy(c, { node, replicas, log }),
        openPresence: async (c) =>
          presence = await openNatsPresence(c, {
            node,
            replicas,
            log,
            info: { exec: execOn },
            ...(cluster.presenceTtlMs ? { ttlMs: cluster.presenceTtlMs } : {}),
          }),
      }),
    );
    const files = await open(
      openNatsFiles(nc, {
        node,
        replicas,
        partialTtlHours: parseFileConfig(config.features.files).partialTtlHours,
        log,
      }),
    );
    log.info("cluster node ready", { node, replicas, ...areas });
    return {
      nc,
      node,
      replicas,
      areas,
      accounts,
      chat,
      files,
      exec,
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (e) {
    await close().catch(() => {});
    throw e;
  }
}
