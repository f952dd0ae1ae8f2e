/**
 * Exec in cluster mode (docs/cluster.md "Exec in a cluster"): runs for this
 * node start on its embedded runner (the fast path, as without a cluster);
 * runs for another node go to that node over core NATS (`exec_wire.ts`),
 * whose own policy, sandbox and audit log apply. Every node serves routed
 * runs, so a node without `--exec` answers `forbidden` rather than looking
 * absent.
 *
 * The node list comes from presence: each node's record carries whether it
 * runs commands, and lapses with the presence TTL when the node is gone. A
 * start request to a node nobody serves fails at once with `not_found`.
 *
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { ExecBackend, ExecNode, ExecPlan, ExecRouter, ExecRun } from "../backend/exec.ts";
import type { ServerConfig } from "../config.ts";
import { RequestError } from "../errors.ts";
import { openEmbeddedExec } from "../embedded/exec.ts";
import { parseExecSettings } from "../exec/exec_config.ts";
import type { Logger } from "../log.ts";
import { RemoteRun } from "./exec_remote_run.ts";
import { NatsExecService } from "./exec_service.ts";

/** A node as the node directory knows it. */
export interface KnownNode {
  node: string;
  info: Record<string, unknown>;
}

/** The cluster exec backend; `close()` stops serving, kills live runs, closes the audit log. */
export type NatsExecBackend = ExecBackend & {
  /** Whether this node runs commands. */
  readonly enabled: boolean;
  /** Runs started here for other nodes and not yet ended. */
  readonly served: number;
  close(): Promise<void>;
};

/**
 * Opens exec for cluster node `node`: the embedded runner and audit log of
 * this node's data dir, the service that runs commands for other nodes, and
 * a router that reaches them. `nodes()` lists the other nodes (presence);
 * it may be called only after this resolves.
 */
export async function openNatsExec(
  nc: NatsConnection,
  config: Pick<ServerConfig, "dataDir" | "features">,
  opts: { node: string; log: Logger; nodes: () => KnownNode[] },
): Promise<NatsExecBackend> {
  const { node, log } = opts;
  const embedded = await openEmbeddedExec(config, log);
  const enabled = (await embedded.router.list())[0]?.exec ?? false;
  const settings = parseExecSettings(config.features.exec);
  const service = new NatsExecService(nc, {
    node,
    runner: embedded.runner,
    settings: { ...settings, enabled },
    audit: embedded.audit,
    log,
  });
  const remote = new Set<RemoteRun>();
  let closing = false;
  const router: ExecRouter = {
    local: node,
    list: (): Promise<ExecNode[]> => {
      const others = opts.nodes()
        .filter((n) => n.node !== node)
        .map((n) => ({ name: n.node, exec: n.info.exec === true, local: false }));
      return Promise.resolve([{ name: node, exec: enabled, local: true }, ...others]);
    },
    open: async (target: string, plan: ExecPlan): Promise<ExecRun> => {
      if (target === node) return await embedded.runner.start(plan);
      if (closing) throw new RequestError("closed", "the server is shutting down");
      const run = await RemoteRun.start(nc, { via: node, node: target }, plan);
      remote.add(run);
      run.onEnd(() => remote.delete(run));
      if (closing) run.kill("shutdown");
      return run;
    },
  };
  let closed: Promise<void> | undefined;
  const close = () =>
    closed ??= (async () => {
      closing = true;
      for (const r of remote) r.kill("shutdown");
      try {
        await service.close();
      } finally {
        await embedded.close();
      }
    })();
  try {
    await service.listen();
  } catch (e) {
    await close();
    throw e;
  }
  return {
    runner: embedded.runner,
    audit: embedded.audit,
    router,
    enabled,
    get served() {
      return service.live;
    },
    close,
  };
}
