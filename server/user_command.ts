/**
 * `parley user add|list|set|rotate|remove`: manages accounts in the data
 * directory. A running server sees each change at once and closes or
 * restricts the sessions it affects.
 *
 * @module
 */
import { EXIT, EXIT_HELP, exitForErrorCode } from "../cli/exit_codes.ts";
import { parseFlags, usageProblem } from "../cli/flags.ts";
import { didYouMean } from "../cli/suggest.ts";
import { RequestError } from "./errors.ts";
import type { Account, Accounts } from "./backend/accounts.ts";
import { UserStore } from "./embedded/user_store.ts";
import { CLUSTER_STRING_FLAGS, clusterOverrides, NATS_FLAGS_HELP } from "./cluster_flags.ts";
import { type ClusterConfig, loadConfig } from "./config.ts";
import { Logger } from "./log.ts";
import { NatsStartError } from "./nats/errors.ts";

const HELP = `Usage: parley user add NAME [--admin] [--exec] [--data DIR]
       parley user list [--json] [--data DIR]
       parley user set NAME [--admin|--no-admin] [--exec|--no-exec] [--data DIR]
       parley user rotate NAME [--data DIR]
       parley user remove NAME [--data DIR]

Manages accounts. \`add\` and \`rotate\` print the account's (new) key once;
give it to the user (PARLEY_KEY or their config file). The running server
sees changes at once: removing an account, rotating its key or taking a
right away closes that user's open connections; a right given applies to
them at once.

Options:
  --admin       the user may moderate chat (kick, ban, mute); --no-admin takes it away
  --exec        the user may run remote commands (when the server enables exec);
                --no-exec takes it away
  --data DIR    data directory (default ./parley-data)
  --json        machine-readable output
  -h, --help    show this help

Cluster mode (docs/cluster.md): the accounts of a cluster live in NATS. With
--cluster, or when DIR/config.json has a "cluster" section, the command
changes them there, and every node sees the change at once.
  --cluster URLS      NATS servers, comma-separated: nats://HOST:PORT[,…]
${NATS_FLAGS_HELP}

${EXIT_HELP}`;

/** Opens the accounts a command works on: the cluster's when configured, else the data dir's. */
async function _openAccounts(
  dataDir: string,
  flags: Record<string, unknown>,
): Promise<{ store: Accounts; close(): Promise<void> }> {
  const overrides = clusterOverrides(flags);
  // The node name only labels this short-lived NATS connection.
  overrides.node ??= "user-cli";
  const config = await loadConfig({ dataDir, cluster: flags.cluster ? overrides : {} });
  if (!config.cluster) {
    const store = await UserStore.open(dataDir);
    return { store, close: () => store[Symbol.asyncDispose]() };
  }
  return await _openClusterAccounts(config.cluster);
}

async function _openClusterAccounts(
  cluster: ClusterConfig,
): Promise<{ store: Accounts; close(): Promise<void> }> {
  const log = new Logger({ level: "error" });
  const { openNatsConnection } = await import("./nats/connection.ts");
  const { openNatsAccounts } = await import("./nats/accounts.ts");
  const nc = await openNatsConnection(cluster, log);
  try {
    const replicas = cluster.replicas ?? (nc.info?.cluster ? 3 : 1);
    const accounts = await openNatsAccounts(nc, { node: cluster.node, replicas, log });
    return {
      store: accounts,
      close: async () => {
        await accounts.close();
        await nc.drain().catch(() => nc.close());
      },
    };
  } catch (e) {
    await nc.close().catch(() => {});
    throw e;
  }
}

/**
 * The fingerprint clients see from the server on this data dir: its own
 * certificate (made now if the server never ran), or `--tls-cert`'s from
 * config.json; undefined for a plaintext or cluster setup (each node has its own).
 */
async function _fingerprint(
  dataDir: string,
  flags: Record<string, unknown>,
): Promise<string | undefined> {
  try {
    const config = await loadConfig({ dataDir });
    if (config.plain || config.cluster || flags.cluster) return undefined;
    const tls = await import("./tls_identity.ts");
    const id = config.tlsCert && config.tlsKey
      ? await tls.readTlsIdentity(config.tlsCert, config.tlsKey)
      : await tls.ensureTlsIdentity(dataDir);
    return id.fingerprint;
  } catch {
    return undefined; // the key matters more; the server prints its fingerprint at start
  }
}

/** Runs a user-management subcommand. */
export async function run(args: string[]): Promise<number> {
  const parsed = parseFlags(args, {
    string: ["data", ...CLUSTER_STRING_FLAGS],
    boolean: ["admin", "exec", "no-admin", "no-exec", "json"],
  }, HELP);
  if ("exitCode" in parsed) return parsed.exitCode;
  const f = parsed.flags;
  const [sub, name, ...extra] = f._.map(String);
  const subcommands = ["add", "list", "set", "rotate", "remove"];
  if (sub === undefined || !subcommands.includes(sub)) {
    return usageProblem(
      HELP,
      sub === undefined
        ? "name a command: add, list, set, rotate or remove"
        : `unknown command ${sub}${didYouMean(sub, subcommands)}`,
    );
  }
  let opened: { store: Accounts; close(): Promise<void> };
  try {
    opened = await _openAccounts((f.data as string | undefined) ?? "./parley-data", f);
  } catch (e) {
    if (e instanceof NatsStartError || e instanceof TypeError) {
      console.error(`parley user: ${e.message}`);
      return e instanceof TypeError ? EXIT.usage : EXIT.unreachable;
    }
    throw e;
  }
  const store = opened.store;
  try {
    if (sub === "add" && name && extra.length === 0) {
      const key = await store.add(name, { admin: Boolean(f.admin), exec: Boolean(f.exec) });
      if (f.json) console.log(JSON.stringify({ name, key }));
      else {
        console.log(`Created user ${name}. Key (shown once, keep it secret):\n${key}`);
        const fp = await _fingerprint((f.data as string | undefined) ?? "./parley-data", f);
        if (fp) {
          console.log(
            `The server's certificate (the user checks it on first connect, or passes --pin):\n${fp}`,
          );
        }
      }
      return 0;
    }
    if (sub === "list" && !name) {
      const users = (await store.list()).map(_printable);
      if (f.json) console.log(JSON.stringify(users));
      else if (users.length === 0) console.log("no users");
      else {
        for (const u of users) {
          const rights = _rights(u);
          console.log(`${u.name.padEnd(20)} ${(rights || "-").padEnd(11)} created ${u.created}`);
        }
      }
      return 0;
    }
    if (sub === "set" && name && extra.length === 0) {
      const rights = {
        ...(f.admin ? { admin: true } : f["no-admin"] ? { admin: false } : {}),
        ...(f.exec ? { exec: true } : f["no-exec"] ? { exec: false } : {}),
      };
      if (
        (f.admin && f["no-admin"]) || (f.exec && f["no-exec"]) || Object.keys(rights).length === 0
      ) {
        return usageProblem(
          HELP,
          "needs one of --admin/--no-admin, --exec/--no-exec",
          "parley user set",
        );
      }
      const u = await store.setRights(name, rights);
      if (f.json) console.log(JSON.stringify(_printable(u)));
      else console.log(`User ${name}: ${_rights(u) || "no rights"}.`);
      return 0;
    }
    if (sub === "rotate" && name && extra.length === 0) {
      const key = await store.rotate(name);
      if (f.json) console.log(JSON.stringify({ name, key }));
      else console.log(`New key for ${name} (shown once, keep it secret):\n${key}`);
      return 0;
    }
    if (sub === "remove" && name && extra.length === 0) {
      await store.remove(name);
      console.log(`Removed user ${name}.`);
      return 0;
    }
  } catch (e) {
    if (e instanceof RequestError) {
      const hint = sub === "add" && e.code === "exists"
        ? `; change its rights with \`parley user set ${name} --exec\` (or --admin, --no-exec, --no-admin)`
        : "";
      console.error(`parley user: ${e.message}${hint}`);
      // A name the accounts refuse is an argument given wrong.
      return e.code === "bad_request" ? EXIT.usage : exitForErrorCode(e.code);
    }
    throw e;
  } finally {
    await opened.close();
  }
  return usageProblem(
    HELP,
    sub === "list" ? "takes no NAME" : name === undefined ? "missing NAME" : "too many arguments",
    `parley user ${sub}`,
  );
}

/** What `list` and `set` print of an account. */
function _printable(u: Account): Pick<Account, "name" | "admin" | "exec" | "created"> {
  return { name: u.name, admin: u.admin, exec: u.exec, created: u.created };
}

function _rights(u: Pick<Account, "admin" | "exec">): string {
  return [u.admin ? "admin" : "", u.exec ? "exec" : ""].filter(Boolean).join(",");
}
