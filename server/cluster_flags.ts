/**
 * The command-line flags that put a command in cluster mode (`parley serve`, `parley user`):
 * `--cluster`, `--node` and the NATS credentials, mapped onto the `cluster` config section.
 *
 * @module
 */

/** String flags of cluster mode. */
export const CLUSTER_STRING_FLAGS = [
  "cluster",
  "node",
  "nats-user",
  "nats-password",
  "nats-creds",
  "nats-token",
  "nats-ca",
  "nats-replicas",
] as const;

/** Help lines for the NATS connection flags (after `--cluster` and `--node`). */
export const NATS_FLAGS_HELP = `  --nats-user USER    NATS user name (with --nats-password)
  --nats-password PW  NATS password (prefer the config file or a creds file)
  --nats-creds FILE   NATS credentials file (JWT and nkey seed)
  --nats-token TOKEN  NATS authentication token
  --nats-ca FILE      PEM CA certificate for the NATS servers' TLS`;

/** The `cluster` config keys given by flags (undefined where a flag is absent). */
export function clusterOverrides(f: Record<string, unknown>): Record<string, unknown> {
  return {
    servers: f.cluster,
    node: f.node,
    user: f["nats-user"],
    password: f["nats-password"],
    creds: f["nats-creds"],
    token: f["nats-token"],
    ca: f["nats-ca"],
    replicas: f["nats-replicas"],
  };
}
