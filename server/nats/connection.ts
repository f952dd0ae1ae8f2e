/**
 * The NATS connection of one cluster node: servers, credentials and TLS from the `cluster`
 * config, reconnecting forever, refusing servers older than 2.9.0, and one helper that turns NATS
 * failures into `unavailable` request errors for the features.
 *
 * Settings follow ../shared CLUSTER.md §6.5: the nats.js defaults (10 reconnect attempts, 2 s
 * between them, a ping every 2 minutes) are wrong for a server process.
 *
 * @module
 */
import {
  ClosedConnectionError,
  ConnectionError,
  type ConnectionOptions,
  credsAuthenticator,
  DrainingConnectionError,
  type NatsConnection,
  NoRespondersError,
  RequestError as NatsRequestError,
  TimeoutError,
} from "@nats-io/transport-node";
import { connect } from "@nats-io/transport-node";
import { JetStreamApiError, JetStreamError } from "@nats-io/jetstream";
import type { ClusterConfig } from "../config.ts";
import { RequestError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { NatsStartError } from "./errors.ts";

export { NatsStartError };

/** Oldest server accepted: JetStream clustering, KV, direct get and the new consumer API. */
export const MIN_NATS_VERSION = "2.9.0";

/**
 * Reconnect and ping settings for a server process (CLUSTER.md §6.5), and no async traces: by
 * default the client makes an `Error` (a stack trace) for every request up front, to show where a
 * request that later times out was made. Every JetStream publish and KV write is a request: the
 * traces were about a tenth of a sending node's CPU in the cluster fan-out bench. The backend's
 * own errors say which operation failed.
 */
export const NATS_CONNECTION_DEFAULTS = {
  maxReconnectAttempts: -1,
  reconnectTimeWait: 250,
  reconnectJitter: 100,
  pingInterval: 5_000,
  maxPingOut: 3,
  timeout: 5_000,
  noAsyncTraces: true,
} as const;

/** Compares dotted versions ("2.9.10" vs "2.10.0"); pre-release tails are ignored. */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string) => v.replace(/^v/, "").split(/[-+]/)[0]!.split(".").map(Number);
  const x = parse(a);
  const y = parse(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (Number.isNaN(d)) return 0;
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

/** The connection options for `cluster` (exported for tests: no 2.10+ option is ever set). */
export async function natsConnectionOptions(
  cluster: ClusterConfig,
  readFile: (path: string) => Promise<Uint8Array> = Deno.readFile,
): Promise<ConnectionOptions> {
  const opts: ConnectionOptions = {
    servers: cluster.servers,
    name: `parley-${cluster.node}`,
    ...NATS_CONNECTION_DEFAULTS,
  };
  if (cluster.creds !== undefined) {
    opts.authenticator = credsAuthenticator(await readFile(cluster.creds));
  } else if (cluster.user !== undefined) {
    opts.user = cluster.user;
    opts.pass = cluster.password ?? "";
  } else if (cluster.token !== undefined) {
    opts.token = cluster.token;
  }
  if (cluster.servers.some((u) => u.startsWith("tls://"))) {
    // tls:// asks for TLS even without a CA file (the system's CAs then apply).
    opts.tls = {};
  }
  if (cluster.ca !== undefined) {
    // Read here so a bad path fails at start with a clear message, not inside the transport.
    await readFile(cluster.ca);
    opts.tls = { caFile: cluster.ca };
  }
  return opts;
}

/**
 * Connects node `cluster.node` to NATS. Throws when no server answers within the connect timeout,
 * or when the server is older than {@linkcode MIN_NATS_VERSION}. Logs once that 2.9.x acknowledges
 * writes before they reach the disk.
 */
export async function openNatsConnection(
  cluster: ClusterConfig,
  log: Logger,
): Promise<NatsConnection> {
  let opts: ConnectionOptions;
  try {
    opts = await natsConnectionOptions(cluster);
  } catch (e) {
    throw new NatsStartError(`cluster: ${(e as Error).message}`, { cause: e });
  }
  let nc: NatsConnection;
  try {
    nc = await connect(opts);
  } catch (e) {
    throw new NatsStartError(
      `cannot connect to NATS at ${cluster.servers.join(",")}: ${(e as Error).message}`,
      { cause: e },
    );
  }
  const version = nc.info?.version ?? "0.0.0";
  if (compareVersions(version, MIN_NATS_VERSION) < 0) {
    await nc.close().catch(() => {});
    throw new NatsStartError(
      `nats-server ${version} is too old: Parley needs ${MIN_NATS_VERSION} or newer`,
    );
  }
  if (nc.info?.jetstream === false) {
    await nc.close().catch(() => {});
    throw new NatsStartError(`nats-server ${version} at ${nc.getServer()} runs without JetStream`);
  }
  log.info("connected to NATS", {
    node: cluster.node,
    server: nc.getServer(),
    version,
    ...(nc.info?.cluster ? { cluster: nc.info.cluster } : {}),
  });
  if (compareVersions(version, "2.10.0") < 0) {
    log.warn(
      "this nats-server acknowledges writes before fsync and cannot be told otherwise: an acknowledged " +
        "message survives a process kill, but a power loss of a majority of the NATS servers can lose it " +
        "(docs/cluster.md, durability)",
      { version },
    );
  }
  watchStatus(nc, cluster.node, log);
  return nc;
}

/** Logs disconnects and reconnects (one line each), until the connection closes. */
function watchStatus(nc: NatsConnection, node: string, log: Logger): void {
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") log.warn("NATS disconnected", { node, server: s.server });
      else if (s.type === "reconnect") log.info("NATS reconnected", { node, server: s.server });
      else if (s.type === "error") log.warn("NATS error", { node, error: String(s.error) });
    }
  })().catch(() => {});
}

/** True when `e` means NATS (or its JetStream quorum) cannot be reached right now. */
export function isNatsUnavailable(e: unknown): boolean {
  if (
    e instanceof TimeoutError || e instanceof NoRespondersError ||
    e instanceof ClosedConnectionError || e instanceof DrainingConnectionError ||
    e instanceof ConnectionError || e instanceof NatsRequestError
  ) return true;
  if (e instanceof JetStreamApiError) {
    // 503: no JetStream responders (leader election, no quorum); 408/504: timeouts;
    // 10008: "JetStream system temporarily unavailable".
    return e.status === 503 || e.status === 408 || e.status === 504 || e.code === 10008;
  }
  if (e instanceof JetStreamError) {
    // nats.js reports a 503 on publish as "jetstream is not enabled" (CLUSTER.md §6.4).
    return /not enabled|no responders|timeout|no quorum/i.test(e.message);
  }
  return e instanceof Error && e.name === "TimeoutError";
}

/**
 * Maps a NATS failure to `RequestError("unavailable")`; anything else is returned unchanged.
 * `what` says in plain words what failed, for the message ("saving the ban").
 */
export function natsError(e: unknown, what: string): unknown {
  if (e instanceof RequestError) return e;
  if (isNatsUnavailable(e)) {
    return new RequestError(
      "unavailable",
      `cluster storage is unavailable (${what}); try again in a few seconds`,
      { cause: e },
    );
  }
  return e;
}

/** Runs `fn`, rethrowing NATS failures as `RequestError("unavailable")` (see {@linkcode natsError}). */
export async function withNats<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw natsError(e, what);
  }
}
