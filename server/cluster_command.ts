/**
 * `parley cluster import`: moves an embedded server's data dir into a NATS
 * cluster (docs/cluster.md "Moving a single server into a cluster").
 *
 * @module
 */
import { parseFlags, usageProblem } from "../cli/flags.ts";
import { didYouMean } from "../cli/suggest.ts";
import { CLUSTER_STRING_FLAGS, clusterOverrides, NATS_FLAGS_HELP } from "./cluster_flags.ts";
import { loadConfig } from "./config.ts";
import { DataDirBusyError } from "./embedded/data_dir_lock.ts";
import { Logger } from "./log.ts";
import { NatsStartError } from "./nats/errors.ts";

const HELP = `Usage: parley cluster COMMAND [OPTIONS]

Cluster tools (docs/cluster.md).

Commands:
  import    copy a single server's data dir into a NATS cluster

Run \`parley cluster import --help\` for its options.`;

const IMPORT_HELP = `Usage: parley cluster import --data DIR --cluster URLS [OPTIONS]

Copies the data of a single server (its data dir) into a NATS cluster, so
the cluster's nodes serve it: accounts with their keys and rights, every
room and direct message in order, bans, mutes, ignore lists and DM delivery
marks, and every file with its bytes and modification time, and shares.
Exec audit logs stay in the data dir (they belong to the node that ran the
commands). Then it checks the copy: message counts and contents, each
file's SHA-256, each user's file usage.

Stop the server first: the import refuses a data dir a server holds. Run it
before any Parley node runs on the cluster: it refuses a cluster that
already holds accounts, messages or files, unless --merge is given.
Interrupted (Ctrl-C, a lost connection)? Run the same command again: it
continues where it stopped.

Message ids change (new ids come from the cluster; clients see the new
epoch and reload history). Share ids change too: the old and new ids are
printed, and messages pointing at a shared file are rewritten.

Options:
  --data DIR          the single server's data directory (required)
  --merge             import into a cluster that already holds data:
                      accounts that exist there are kept as they are (same
                      name: the cluster's key and rights win), messages are
                      added after the cluster's own, files that exist there
                      with other content are kept and listed
  --log-level LEVEL   debug, info, warn or error (default warn)
  -h, --help          show this help

Cluster:
  --cluster URLS      NATS servers, comma-separated: nats://HOST:PORT[,…]
                      (tls://HOST:PORT or --nats-ca for TLS)
${NATS_FLAGS_HELP}
  --nats-replicas N   replicas of the streams and buckets created (default 3
                      on a NATS cluster, 1 on a single server); also --replicas
  --node NAME         name of this connection in NATS (default "import")

Limits and chat settings (history per room, message size) come from
DIR/config.json, as for \`parley serve\`: give every node the same ones.`;

/** Runs `parley cluster ARGS`. */
export async function run(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help") {
    console.log(HELP);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== "import") {
    return usageProblem(HELP, `unknown command ${sub}${didYouMean(sub, ["import"])}`);
  }
  return await _import(rest);
}

async function _import(args: string[]): Promise<number> {
  const parsed = parseFlags(args, {
    string: ["data", "log-level", ...CLUSTER_STRING_FLAGS],
    boolean: ["merge"],
    alias: { replicas: "nats-replicas" },
  }, IMPORT_HELP);
  if ("exitCode" in parsed) return parsed.exitCode;
  const f = parsed.flags;
  const fail = (message: string, code = 2): number => {
    console.error(`parley cluster import: ${message}`);
    return code;
  };
  if (f._.length > 0) return fail(`unexpected argument ${JSON.stringify(String(f._[0]))}`);
  if (typeof f.data !== "string" || f.data === "") {
    return fail("--data DIR is required: the data directory of the server to import");
  }
  if (typeof f.cluster !== "string" || f.cluster === "") {
    return fail("--cluster URLS is required: the NATS servers of the cluster (nats://HOST:PORT,…)");
  }
  const level = (f["log-level"] as string | undefined) ?? "warn";
  if (!["debug", "info", "warn", "error"].includes(level)) {
    return fail("--log-level must be debug, info, warn or error");
  }
  const overrides = clusterOverrides(f);
  overrides.node ??= "import";
  let config;
  try {
    config = await loadConfig({ dataDir: f.data, cluster: overrides });
  } catch (e) {
    if (!(e instanceof TypeError)) throw e;
    return fail(e.message);
  }
  const cluster = config.cluster;
  if (!cluster) return fail("--cluster URLS is required");
  const log = new Logger({ level: level as "warn" });
  // Loaded only here: `parley cluster --help` needs no NATS client.
  const { importDataDir, ImportRefused } = await import("./nats/import.ts");
  const started = Date.now();
  let report;
  try {
    report = await importDataDir({
      config: { ...config, cluster },
      merge: f.merge === true,
      progress: (line) => console.log(line),
      log,
    });
  } catch (e) {
    if (e instanceof DataDirBusyError) return fail(e.message, 1);
    if (e instanceof ImportRefused || e instanceof NatsStartError) return fail(e.message, 1);
    const msg = e instanceof Error ? e.message : String(e);
    return fail(
      `stopped: ${msg}\nNothing is lost: run the same command again to continue where it stopped.`,
      1,
    );
  }
  const r = report;
  const secs = (ms: number) => Math.max(ms, 1) / 1000;
  const lines = [
    "",
    "Summary:",
    `  accounts  ${r.accounts.copied} copied, ${r.accounts.present} already there` +
    (r.accounts.kept.length
      ? `, kept as the cluster has them (not copied): ${r.accounts.kept.join(", ")}`
      : ""),
    `  messages  ${r.messages.total} in ${r.messages.rooms} rooms and direct messages; ` +
    `${r.messages.appended} appended now` +
    (r.messages.appended > 0
      ? ` (${Math.round(r.messages.appended / secs(r.messages.ms))}/s)`
      : "") +
    `; new ids ${r.messages.start + 1}…${r.messages.start + r.messages.total}, epoch ${r.epoch}`,
    `  chat      ${r.policy.bans} bans, ${r.policy.mutes} mutes, ${r.policy.ignores} ignores, ` +
    `${r.policy.marks} DM delivery marks`,
    `  files     ${r.files.copied} copied, ${r.files.present} already there, ` +
    `${r.files.dirs} directories, ${(r.files.bytes / 1048576).toFixed(1)} MiB uploaded` +
    (r.files.bytes > 0
      ? ` (${(r.files.bytes / 1048576 / secs(r.files.ms)).toFixed(1)} MiB/s)`
      : ""),
    `  shares    ${r.files.shares.size} carried over (new ids below), ${r.files.deadShares} dropped ` +
    "(their file was removed or changed)",
    "  exec      audit logs are not copied: they stay in this data dir (exec-audit.log)",
  ];
  for (const [from, to] of r.files.shares) lines.push(`  share ${from} -> ${to}`);
  for (const c of r.files.conflicts) {
    lines.push(`  kept the cluster's own file (other content): ${c}`);
  }
  for (const s of r.files.skipped) lines.push(`  not copied (neither file nor directory): ${s}`);
  console.log(lines.join("\n"));
  if (r.problems.length > 0) {
    console.error(
      [
        "",
        `parley cluster import: the check found ${r.problems.length} difference(s):`,
        ...r.problems.slice(0, 50).map((p) => `  ${p}`),
        ...(r.problems.length > 50 ? [`  … and ${r.problems.length - 50} more`] : []),
        "The data dir is unchanged. Fix the cause and run the command again.",
      ].join("\n"),
    );
    return 1;
  }
  console.log(
    [
      "",
      `Checked: ${r.verified.messages} messages and ${r.verified.files} files ` +
      `(${(r.verified.bytes / 1048576).toFixed(1)} MiB, SHA-256) equal in the cluster. ` +
      `Took ${secs(Date.now() - started).toFixed(1)} s.`,
      "",
      "Next: start the nodes (each with its own data dir; copy config.json to each if you set",
      "limits or chat settings there), e.g.",
      `  parley serve --cluster ${cluster.servers.join(",")} --node NAME --data NODE_DIR`,
      `Keep ${f.data} as a backup; do not start \`parley serve\` on it again for these users.`,
    ].join("\n"),
  );
  return 0;
}
