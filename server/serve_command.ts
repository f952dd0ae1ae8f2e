/**
 * `parley serve`: runs a server node on embedded storage.
 *
 * @module
 */
import { ConfigFileError } from "../cli/config_file.ts";
import { parseFlags } from "../cli/flags.ts";
import { loadConfig } from "./config.ts";
import { ParleyServer } from "./server.ts";
import { Logger } from "./log.ts";
import { ExecSandboxError } from "./exec/errors.ts";
import { NatsStartError } from "./nats/errors.ts";
import { DataDirBusyError } from "./embedded/data_dir_lock.ts";
import { RequestError } from "./errors.ts";
import { CLUSTER_STRING_FLAGS, clusterOverrides, NATS_FLAGS_HELP } from "./cluster_flags.ts";
import { listenProblem } from "./listen_errors.ts";

const HELP = `Usage: parley serve [OPTIONS]

Runs a Parley server. With no options: data in ./parley-data, listening on
127.0.0.1:7878 with TLS; on first start an admin account is created and its
key printed, and a certificate is made in the data dir (its fingerprint,
sha256:…, is printed at every start: clients check it on first contact).

Options:
  --port N            TCP port (default 7878; 0 picks a free one)
  --host ADDR         address to listen on (default 127.0.0.1)
  --data DIR          data directory (default ./parley-data)
  --tls-cert FILE     PEM certificate to serve instead of the data dir's own
  --tls-key FILE      its PEM private key
  --plain             no TLS: plaintext with a per-frame MAC (clients must ask
                      for it too: --plain or parley+plain://)
  --exec              enable remote exec (see README "Remote exec")
  --exec-shell        allow any shell line for users with the exec right
  --exec-unsandboxed  run exec commands without the bubblewrap sandbox (unsafe:
                      they can read the data dir; see docs/exec.md)
  --log-level LEVEL   debug, info, warn or error (default info)
  -h, --help          show this help

Cluster mode (docs/cluster.md): several nodes share chat, accounts and files
through a NATS JetStream cluster (nats-server 2.9 or newer). Without --cluster
the server runs alone on the data dir, as above.
  --cluster URLS      NATS servers, comma-separated: nats://HOST:PORT[,…]
                      (tls://HOST:PORT or --nats-ca for TLS)
  --node NAME         this node's name, unique in the cluster ([a-z0-9_-])
${NATS_FLAGS_HELP}
  --nats-replicas N   replicas of the streams and buckets Parley creates
                      (default 3 on a NATS cluster, 1 on a single server)

Limits and feature settings are read from DIR/config.json: see docs/limits.md;
its "cluster" section takes servers, node, user, password, creds, token, ca,
replicas and presenceTtlMs.
TLS, certificate pinning and the permissions Parley runs with: docs/security.md.`;

/** Runs the server until SIGINT/SIGTERM. */
export async function run(args: string[]): Promise<number> {
  const parsed = parseFlags(args, {
    string: [
      "port",
      "host",
      "data",
      "tls-cert",
      "tls-key",
      "log-level",
      ...CLUSTER_STRING_FLAGS,
    ],
    boolean: ["exec", "exec-shell", "exec-unsandboxed", "plain"],
  }, HELP);
  if ("exitCode" in parsed) return parsed.exitCode;
  const f = parsed.flags;
  const port = f.port === undefined ? undefined : Number(f.port);
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
    console.error("parley serve: --port must be a number from 0 to 65535");
    return 2;
  }
  const level = (f["log-level"] as string | undefined) ?? "info";
  if (!["debug", "info", "warn", "error"].includes(level)) {
    console.error("parley serve: --log-level must be debug, info, warn or error");
    return 2;
  }
  const execOverrides: Record<string, unknown> = {};
  if (f.exec) execOverrides.enabled = true;
  if (f["exec-shell"]) execOverrides.shell = true;
  if (f["exec-unsandboxed"]) execOverrides.sandbox = false;
  let config;
  try {
    config = await loadConfig({
      hostname: f.host as string | undefined,
      port,
      dataDir: f.data as string | undefined,
      tlsCert: f["tls-cert"] as string | undefined,
      tlsKey: f["tls-key"] as string | undefined,
      plain: f.plain ? true : undefined,
      features: { exec: execOverrides },
      cluster: clusterOverrides(f),
    });
  } catch (e) {
    if (!(e instanceof TypeError)) throw e;
    console.error(
      `${e.cause instanceof ConfigFileError ? "parley" : "parley serve"}: ${e.message}`,
    );
    return 2;
  }
  if (Boolean(config.tlsCert) !== Boolean(config.tlsKey)) {
    console.error("parley serve: --tls-cert and --tls-key go together");
    return 2;
  }
  if (config.plain && config.tlsCert) {
    console.error("parley serve: --plain and --tls-cert contradict each other");
    return 2;
  }
  const log = new Logger({ level: level as "info" });
  for (const [flag, file] of [["--tls-cert", config.tlsCert], ["--tls-key", config.tlsKey]]) {
    if (file === undefined) continue;
    try {
      await Deno.stat(file);
    } catch (e) {
      console.error(`parley serve: cannot read ${flag} ${file}: ${(e as Error).message}`);
      return 2;
    }
  }
  let server: ParleyServer;
  try {
    server = await ParleyServer.start(config, { log });
  } catch (e) {
    if (
      e instanceof ExecSandboxError || e instanceof NatsStartError || e instanceof DataDirBusyError
    ) {
      console.error(`parley serve: ${e.message}`);
      return 1;
    }
    if (
      e instanceof TypeError &&
      (e.message.startsWith("invalid ") || e.message.startsWith("cannot read"))
    ) {
      console.error(`parley serve: ${e.message}`);
      return 2;
    }
    const problem = listenProblem(e, config.hostname, config.port);
    if (problem) {
      console.error(`parley: ${problem.message}`);
      return problem.exit;
    }
    // Anything else: the message, and the stack only when asked for.
    console.error(`parley serve: cannot start: ${(e as Error)?.message ?? String(e)}`);
    if (level === "debug") console.error((e as Error)?.stack ?? "");
    else console.error("(run with --log-level debug for the details)");
    return 1;
  }
  const scheme = server.tls ? "parley" : "parley+plain";
  const address = `${scheme}://${_urlHost(server.hostname)}:${server.port}`;
  if ((await server.accounts.list()).length === 0) {
    // Cluster nodes starting together may race for the first account: one wins, the rest skip.
    const key = await server.accounts.add("admin", { admin: true, exec: true }).catch((e) => {
      if (e instanceof RequestError && e.code === "exists") return undefined;
      throw e;
    });
    if (key !== undefined) {
      console.log(
        [
          "Created the first account: admin (admin, exec rights).",
          `Its key (shown once, keep it secret): ${key}`,
          "Connect with:",
          `  PARLEY_KEY=${key} parley connect ${address.replace("://", "://admin@")}`,
        ].join("\n"),
      );
    }
  }
  console.log(
    `parley: listening on ${address} (${
      config.cluster
        ? `cluster node ${config.cluster.node} on ${config.cluster.servers.join(",")}`
        : `data in ${config.dataDir}`
    })`,
  );
  if (server.fingerprint) {
    console.log(
      `parley: certificate ${server.fingerprint} (clients are shown it on first connect)`,
    );
  } else if (!_loopback(server.hostname)) {
    console.error(
      `parley: WARNING: serving plaintext on ${server.hostname}: anyone on the network can read ` +
        "names, messages, files and commands (frames are authenticated, not encrypted); " +
        "drop --plain to serve TLS",
    );
  }
  const stop = new Promise<string>((resolve) => {
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      Deno.addSignalListener(sig, () => resolve(sig));
    }
  });
  const sig = await stop;
  log.info("shutting down", { signal: sig });
  await server.close();
  return 0;
}

function _loopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}

function _urlHost(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}
