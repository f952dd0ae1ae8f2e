/**
 * Server configuration: defaults, overridden by `<data>/config.json`, then by
 * command-line flags. Feature sections (`chat`, `files`, `exec`) are passed
 * to their features, which validate them.
 *
 * @module
 */
import { join } from "@std/path";
import {
  DEFAULT_CONNECTION_WINDOW,
  DEFAULT_MAX_BODY,
  DEFAULT_MAX_STREAMS,
  DEFAULT_STREAM_WINDOW,
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
  /** Close a connection idle for this long (ms); 0 = never. Keepalive pings count as activity. */
  idleTimeoutMs: number;
  /** Largest frame body in bytes. */
  maxBody: number;
  /** Most open streams per connection. */
  maxStreams: number;
  /** Disconnect a client with more than this many bytes queued for it. */
  maxPendingBytes: number;
  /** Flow-control window per stream. */
  streamWindow: number;
  /** Flow-control window per connection. */
  connectionWindow: number;
  /** Failed logins per (address, user) per minute. */
  loginFailuresPerUser: number;
  /** Failed logins per address per minute. */
  loginFailuresPerAddress: number;
}

/** Full server configuration. */
export interface ServerConfig {
  hostname: string;
  port: number;
  dataDir: string;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  limits: Limits;
  /** Raw feature sections, validated by each feature. */
  features: Record<string, unknown>;
}

/** Default limits. */
export const DEFAULT_LIMITS: Limits = {
  maxConnections: 20_000,
  maxPerIp: 20_000,
  maxUnauthenticated: 256,
  handshakeTimeoutMs: 10_000,
  idleTimeoutMs: 0,
  maxBody: DEFAULT_MAX_BODY,
  maxStreams: DEFAULT_MAX_STREAMS,
  maxPendingBytes: 8 * 1024 * 1024,
  streamWindow: DEFAULT_STREAM_WINDOW,
  connectionWindow: DEFAULT_CONNECTION_WINDOW,
  loginFailuresPerUser: 5,
  loginFailuresPerAddress: 30,
};

/** Overrides accepted by {@linkcode loadConfig}. */
export interface ConfigOverrides {
  hostname?: string | undefined;
  port?: number | undefined;
  dataDir?: string | undefined;
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
  limits?: Partial<Limits>;
  features?: Record<string, unknown>;
}

/** Reads `<dataDir>/config.json` if present and merges defaults and overrides. */
export async function loadConfig(overrides: ConfigOverrides = {}): Promise<ServerConfig> {
  const dataDir = overrides.dataDir ?? "./parley-data";
  let file: Record<string, unknown> = {};
  try {
    file = JSON.parse(await Deno.readTextFile(join(dataDir, "config.json")));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new TypeError(`cannot read ${join(dataDir, "config.json")}: ${(e as Error).message}`, {
        cause: e,
      });
    }
  }
  const fileLimits = (file.limits ?? {}) as Partial<Limits>;
  const features: Record<string, unknown> = {};
  for (const k of ["chat", "files", "exec"]) {
    features[k] = { ...(file[k] as object ?? {}), ...(overrides.features?.[k] as object ?? {}) };
  }
  return {
    hostname: overrides.hostname ?? (file.hostname as string | undefined) ?? "127.0.0.1",
    port: overrides.port ?? (file.port as number | undefined) ?? 7878,
    dataDir,
    tlsCert: overrides.tlsCert ?? (file.tlsCert as string | undefined),
    tlsKey: overrides.tlsKey ?? (file.tlsKey as string | undefined),
    limits: { ...DEFAULT_LIMITS, ...fileLimits, ...overrides.limits },
    features,
  };
}
