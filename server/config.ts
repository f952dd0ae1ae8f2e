/**
 * Server configuration: defaults, overridden by `<data>/config.json`, then by
 * command-line flags. Feature sections (`chat`, `files`, `exec`) are passed
 * to their features, which validate them.
 *
 * @module
 */
import { join } from "@std/path";
import { z } from "zod";
import { ConfigFileError, readJsonConfig } from "../cli/config_file.ts";
import {
  DEFAULT_CONNECTION_WINDOW,
  DEFAULT_MAX_BODY,
  DEFAULT_MAX_STREAMS,
  DEFAULT_STREAM_WINDOW,
  MAX_BODY_CEILING,
  MAX_WINDOW,
} from "../protocol/limits.ts";

/** Connection-level limits (README "Limits"). */
export interface Limits {
  /** Most connections at once. */
  maxConnections: number;
  /** Most connections from one IP address. */
  maxPerIp: number;
  /** Most connections still in the handshake. */
  maxUnauthenticated: number;
  /** Handshake deadline in ms. */
  handshakeTimeoutMs: number;
  /**
   * Close a connection that sent nothing for this long (ms); 0 = never. The
   * server pings a quiet client after half of it, and the answer counts.
   */
  idleTimeoutMs: number;
  /** Largest frame body in bytes. */
  maxBody: number;
  /** Most open streams per connection. */
  maxStreams: number;
  /** Disconnect a client with more than this many control bytes queued for it. */
  maxPendingBytes: number;
  /** Disconnect a client when a write to it makes no progress for this long (ms); 0 = never. */
  writeStallMs: number;
  /** Flow-control window per stream. */
  streamWindow: number;
  /** Flow-control window per connection: the most credit one connection is granted. */
  connectionWindow: number;
  /** Most requests waiting for their reply on one connection; the excess gets `busy`. */
  maxRequestsPerConnection: number;
  /** Most requests waiting for their reply across one user's connections; the excess gets `busy`. */
  maxRequestsPerUser: number;
  /** Most receive credit (stream bytes the server may buffer) for one user's connections together. */
  maxBufferedPerUser: number;
  /** Failed logins per (address, user) within `loginWindowMs`. */
  loginFailuresPerUser: number;
  /** Failed logins per address within `loginWindowMs`. */
  loginFailuresPerAddress: number;
  /** Window over which failed logins are counted (ms). */
  loginWindowMs: number;
}

/** Full server configuration. */
export interface ServerConfig {
  hostname: string;
  port: number;
  dataDir: string;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  /**
   * Serve plaintext (`serve --plain`) instead of TLS. Without `tlsCert` the
   * server makes its own certificate in the data dir (./tls_identity.ts).
   */
  plain: boolean;
  limits: Limits;
  /** Raw feature sections, validated by each feature. */
  features: Record<string, unknown>;
  /** Cluster mode (docs/cluster.md): set when `--cluster` or a `cluster` section is given. */
  cluster?: ClusterConfig | undefined;
}

/** How a node joins a cluster: the NATS servers, its own name, credentials and TLS. */
export interface ClusterConfig {
  /** NATS server URLs (`nats://HOST:PORT` or `tls://HOST:PORT`), tried in turn. */
  servers: string[];
  /** This node's name, unique in the cluster: `[a-z0-9_-]`, 1–32 characters. */
  node: string;
  /** NATS user name; goes with `password`. */
  user?: string | undefined;
  password?: string | undefined;
  /** NATS authentication token. */
  token?: string | undefined;
  /** A NATS credentials file (JWT + nkey seed). */
  creds?: string | undefined;
  /** PEM file of the CA that signed the NATS servers' certificates (turns on TLS). */
  ca?: string | undefined;
  /**
   * Replicas of the streams and buckets Parley creates (1–5). Default: 3 when the NATS server is
   * part of a cluster, 1 when it runs alone.
   */
  replicas?: number | undefined;
  /**
   * How long a node's presence record lasts without a refresh (ms, default 30 000): a node that
   * dies takes its users out of `who` within this plus a sixth. Only the node that creates the
   * presence bucket sets it; later nodes take the bucket's.
   */
  presenceTtlMs?: number | undefined;
}

const NATS_URL = /^(nats|tls):\/\/[^\s,/@]+:[0-9]{1,5}$/;

/** Schema of the `cluster` section of `config.json` (and of the `--cluster`/`--node` flags). */
export const CLUSTER_SCHEMA = z.strictObject({
  servers: z.union([z.string(), z.array(z.string())]).transform((v) =>
    (typeof v === "string" ? v.split(",") : v).map((s) => s.trim()).filter((s) => s !== "")
  ).pipe(
    z.array(z.string().regex(NATS_URL, "must be nats://HOST:PORT or tls://HOST:PORT")).min(
      1,
      "needs at least one nats://HOST:PORT",
    ),
  ),
  node: z.string().regex(/^[a-z0-9_-]{1,32}$/, "must be 1–32 of a-z, 0-9, _ and -"),
  user: z.string().min(1).optional(),
  password: z.string().optional(),
  token: z.string().min(1).optional(),
  creds: z.string().min(1).optional(),
  ca: z.string().min(1).optional(),
  replicas: z.coerce.number().int().min(1).max(5).optional(),
  presenceTtlMs: z.number().int().min(1000).max(3_600_000).optional(),
}).refine((c) => (c.user === undefined) === (c.password === undefined), {
  message: "user and password go together",
}).refine((c) => [c.user, c.token, c.creds].filter((x) => x !== undefined).length <= 1, {
  message: "give one of user/password, token or creds",
});

/** Validates a `cluster` section (merged with flags); throws a config TypeError naming the key. */
export function parseClusterConfig(raw: unknown): ClusterConfig {
  const c = parseConfigSection(CLUSTER_SCHEMA, raw, "cluster");
  const out: ClusterConfig = { servers: c.servers, node: c.node };
  for (const k of ["user", "password", "token", "creds", "ca"] as const) {
    if (c[k] !== undefined) out[k] = c[k];
  }
  if (c.replicas !== undefined) out.replicas = c.replicas;
  if (c.presenceTtlMs !== undefined) out.presenceTtlMs = c.presenceTtlMs;
  return out;
}

/** Default limits. */
export const DEFAULT_LIMITS: Limits = {
  maxConnections: 20_000,
  maxPerIp: 20_000,
  maxUnauthenticated: 256,
  handshakeTimeoutMs: 10_000,
  idleTimeoutMs: 300_000,
  maxBody: DEFAULT_MAX_BODY,
  maxStreams: DEFAULT_MAX_STREAMS,
  maxPendingBytes: 8 * 1024 * 1024,
  writeStallMs: 60_000,
  streamWindow: DEFAULT_STREAM_WINDOW,
  connectionWindow: DEFAULT_CONNECTION_WINDOW,
  maxRequestsPerConnection: 32,
  maxRequestsPerUser: 64,
  maxBufferedPerUser: 64 * 1024 * 1024,
  loginFailuresPerUser: 5,
  loginFailuresPerAddress: 30,
  loginWindowMs: 60_000,
};

const _count = (min: number, max = Number.MAX_SAFE_INTEGER) => z.number().int().min(min).max(max);

/** Schema of the `limits` section of `config.json`: every key optional, none unknown. */
export const LIMITS_SCHEMA = z.strictObject({
  maxConnections: _count(1),
  maxPerIp: _count(1),
  maxUnauthenticated: _count(1),
  handshakeTimeoutMs: _count(100, 3_600_000),
  idleTimeoutMs: _count(0, 2 ** 31 - 1),
  maxBody: _count(1024, MAX_BODY_CEILING),
  maxStreams: _count(1, 65_536),
  maxPendingBytes: _count(64 * 1024),
  writeStallMs: _count(0, 2 ** 31 - 1),
  streamWindow: _count(64 * 1024, MAX_WINDOW),
  connectionWindow: _count(64 * 1024, MAX_WINDOW),
  maxRequestsPerConnection: _count(1, 65_536),
  maxRequestsPerUser: _count(1, 1_048_576),
  maxBufferedPerUser: _count(64 * 1024, 2 ** 40),
  loginFailuresPerUser: _count(1),
  loginFailuresPerAddress: _count(1),
  loginWindowMs: _count(1000, 86_400_000),
}).partial();

/** Checks a `limits` object; throws a TypeError naming each bad key. */
export function validateLimits(value: unknown, where = "limits"): Partial<Limits> {
  const parsed = LIMITS_SCHEMA.safeParse(value ?? {});
  if (parsed.success) return parsed.data as Partial<Limits>;
  const problems = parsed.error.issues.map((i) => {
    const key = [where, ...i.path.map(String)].join(".");
    return i.code === "unrecognized_keys"
      ? `${where}: unknown limit ${i.keys.join(", ")} (known: ${
        Object.keys(DEFAULT_LIMITS).join(", ")
      })`
      : `${key}: ${i.message}`;
  });
  throw new TypeError(`invalid limits: ${problems.join("; ")}`);
}

/** The error for a bad `name` section of config.json (`message` says what is wrong). */
export function configError(name: string, message: string): TypeError {
  return new TypeError(`invalid "${name}" section in config.json: ${message}`);
}

/**
 * Validates a feature's section of config.json (`chat`, `files`, `exec`)
 * against its schema; throws a TypeError naming the first bad key.
 */
export function parseConfigSection<S extends z.ZodType>(
  schema: S,
  raw: unknown,
  name: string,
): z.infer<S> {
  const r = schema.safeParse(raw ?? {});
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const where = [name, ...(issue?.path.map(String) ?? [])].join(".");
  throw configError(name, `${where}: ${issue?.message ?? "invalid"}`);
}

/** Overrides accepted by {@linkcode loadConfig}. */
export interface ConfigOverrides {
  hostname?: string | undefined;
  port?: number | undefined;
  dataDir?: string | undefined;
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
  plain?: boolean | undefined;
  limits?: Partial<Limits>;
  features?: Record<string, unknown>;
  /** Keys of the `cluster` section given on the command line (`--cluster`, `--node`, …). */
  cluster?: Record<string, unknown>;
}

/** Reads `<dataDir>/config.json` if present and merges defaults and overrides. */
export async function loadConfig(overrides: ConfigOverrides = {}): Promise<ServerConfig> {
  const dataDir = overrides.dataDir ?? "./parley-data";
  const path = join(dataDir, "config.json");
  let file: Record<string, unknown>;
  try {
    file = await readJsonConfig(path, "fix the file, or pass --data for another data dir") ?? {};
  } catch (e) {
    // A TypeError is what `parley serve` reports as a configuration problem.
    if (e instanceof ConfigFileError) throw new TypeError(e.message, { cause: e });
    throw e;
  }
  const fileLimits = validateLimits(file.limits, `${path} limits`);
  const overrideLimits = validateLimits(overrides.limits ?? {});
  const features: Record<string, unknown> = {};
  for (const k of ["chat", "files", "exec"]) {
    features[k] = { ...(file[k] as object ?? {}), ...(overrides.features?.[k] as object ?? {}) };
  }
  // Cluster mode only when a `cluster` section or `--cluster` is given; flags win key by key.
  const clusterOverrides = Object.fromEntries(
    Object.entries(overrides.cluster ?? {}).filter(([, v]) => v !== undefined),
  );
  if (
    file.cluster !== undefined &&
    (typeof file.cluster !== "object" || file.cluster === null || Array.isArray(file.cluster))
  ) {
    throw configError("cluster", "must be an object");
  }
  const clusterRaw = file.cluster === undefined && Object.keys(clusterOverrides).length === 0
    ? undefined
    : { ...(file.cluster as object ?? {}), ...clusterOverrides };
  const cluster = clusterRaw === undefined ? undefined : parseClusterConfig(clusterRaw);
  return {
    ...(cluster ? { cluster } : {}),
    hostname: overrides.hostname ?? (file.hostname as string | undefined) ?? "127.0.0.1",
    port: overrides.port ?? (file.port as number | undefined) ?? 7878,
    dataDir,
    tlsCert: overrides.tlsCert ?? (file.tlsCert as string | undefined),
    tlsKey: overrides.tlsKey ?? (file.tlsKey as string | undefined),
    plain: overrides.plain ?? (file.plain === true),
    limits: { ...DEFAULT_LIMITS, ...fileLimits, ...overrideLimits },
    features,
  };
}
