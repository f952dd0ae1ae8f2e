/**
 * `parley cluster import`: moves the data of one embedded server (its data
 * dir) into a NATS cluster — accounts, chat history and moderation state,
 * files and shares — and checks the result. Exec audit logs stay behind:
 * they are per node.
 *
 * Steps, each safe to run again: take the data dir's lock (no server may
 * run on it); open it read-mostly through the embedded backend and the
 * cluster through the NATS one; refuse a cluster that holds data unless
 * merging; record the import in the bucket `parley_import` (key `state`),
 * then copy accounts, files and shares, messages, moderation state, mark the
 * import finished and verify. A run that finds an unfinished import of the
 * same data dir continues it: accounts and files already there are kept,
 * messages go on after the last one stored.
 *
 * Accounts are copied as stored records, whatever they hold (a key, or a
 * verifier of it), into the accounts bucket with a create (an existing name
 * is kept): the `Accounts` interface hands out no stored secret by design,
 * and a user must keep the key they have.
 *
 * @module
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { join } from "@std/path";
import { validUserName } from "../backend/accounts.ts";
import type { ChatMessage } from "../backend/chat.ts";
import { parseChatConfig } from "../chat/chat_config.ts";
import type { ServerConfig } from "../config.ts";
import { lockDataDir } from "../embedded/data_dir_lock.ts";
import { openEmbeddedChat } from "../embedded/chat.ts";
import { openEmbeddedFiles } from "../embedded/files.ts";
import { DiskStore } from "../embedded/files_store.ts";
import type { Logger } from "../log.ts";
import { openNatsAccounts, USERS_BUCKET } from "./accounts.ts";
import { openNatsChat } from "./chat.ts";
import { CHAT_STREAM } from "./chat_subjects.ts";
import { openNatsConnection } from "./connection.ts";
import { openNatsFiles } from "./files.ts";
import { FS_BUCKET } from "./files_ctx.ts";
import {
  appendMessages,
  copyPolicy,
  type PolicyResult,
  readAfter,
  readHistory,
  sameMessage,
} from "./import_chat.ts";
import { copyFiles, type FilesResult, readSha256 } from "./import_files.ts";
import { encodeKeyToken, isWrongLastSequence, openRecordBucket } from "./kv_watch.ts";

/** The bucket recording imports (key {@linkcode _STATE_KEY}). */
export const IMPORT_BUCKET = "parley_import";
const _STATE_KEY = "state";

/** A refusal before anything was written: the message says what to do. */
export class ImportRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ImportRefused";
  }
}

/** How to import. */
export interface ImportOptions {
  /** `dataDir` is the source; `cluster` the target. */
  config: ServerConfig & { cluster: NonNullable<ServerConfig["cluster"]> };
  /** Import into a cluster that holds data (see docs/cluster.md). */
  merge: boolean;
  /** Progress lines (stdout). */
  progress(line: string): void;
  log: Logger;
}

/** What an import did, and what the verification found. */
export interface ImportReport {
  resumed: boolean;
  accounts: { copied: number; present: number; kept: string[] };
  messages: { total: number; appended: number; rooms: number; start: number; ms: number };
  policy: PolicyResult;
  files: FilesResult & { ms: number };
  /** Whatever the verification found wrong (empty: all equal). */
  problems: string[];
  verified: { messages: number; files: number; bytes: number };
  epoch: string;
}

/** The import record in {@linkcode IMPORT_BUCKET}. */
interface _State {
  /** The data dir's identity: its chat epoch and path. */
  source: string;
  dataDir: string;
  /** The chat stream's last sequence when the import began. */
  start: number;
  /** Messages to import. */
  messages: number;
  started: string;
  finished?: string;
}

/** Runs the import; throws {@linkcode ImportRefused} when it may not start. */
export async function importDataDir(o: ImportOptions): Promise<ImportReport> {
  const { config } = o;
  await _checkDataDir(config.dataDir);
  const lock = await lockDataDir(config.dataDir, "parley cluster import");
  await using _unlock = { [Symbol.asyncDispose]: () => lock.close() };
  const chatConfig = parseChatConfig(config.features.chat);
  const records = await _readAccountRecords(config.dataDir);
  // The cluster first: an unreachable one leaves the data dir as it was.
  const nc = await openNatsConnection(config.cluster, o.log);
  await using _nc = { [Symbol.asyncDispose]: () => nc.drain().catch(() => nc.close()) };
  const srcChat = await openEmbeddedChat(config, o.log);
  await using _srcChat = srcChat;
  const srcFiles = await openEmbeddedFiles(config, o.log);
  await using _srcFiles = srcFiles;

  const replicas = config.cluster.replicas ?? (nc.info?.cluster ? 3 : 1);
  const node = config.cluster.node;
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const accounts = await openNatsAccounts(nc, { node, replicas, log: o.log });
  await using _accounts = accounts;
  const usersKv = await openRecordBucket(js, USERS_BUCKET, replicas);
  const dstChat = await openNatsChat(nc, {
    node,
    replicas,
    historyPerRoom: chatConfig.historyPerRoom,
    dmHistory: chatConfig.dmHistoryPerUser,
    maxTextBytes: chatConfig.maxTextBytes,
    log: o.log,
  });
  await using _dstChat = dstChat;
  const dstFiles = await openNatsFiles(nc, { node, replicas, sweepEveryMs: 0, log: o.log });
  await using _dstFiles = { [Symbol.asyncDispose]: () => dstFiles.close() };
  const stateKv = await openRecordBucket(js, IMPORT_BUCKET, replicas);

  // What the data dir holds.
  const names = records.map((r) => r.name);
  const history = await readHistory(srcChat, names);
  const source = `${srcChat.log.epoch()}:${await Deno.realPath(config.dataDir)}`;
  o.progress(
    `data dir ${config.dataDir}: ${records.length} accounts, ${history.messages.length} messages ` +
      `in ${history.rooms.length} rooms and direct messages`,
  );

  // Fresh, resumed, or refused.
  const lastSeq = async () => (await jsm.streams.info(CHAT_STREAM)).state.last_seq;
  const prior = await _readState(stateKv);
  let state: _State;
  let resumed = false;
  if (prior && prior.value.source === source) {
    if (prior.value.messages !== history.messages.length) {
      throw new ImportRefused(
        `an import of ${config.dataDir} into this cluster started with ${prior.value.messages} ` +
          `messages, and the data dir now holds ${history.messages.length}: a server ran on it ` +
          "in between. Import into a fresh cluster",
      );
    }
    state = prior.value;
    resumed = true;
    o.progress(
      prior.value.finished
        ? `this data dir was imported on ${prior.value.finished}; checking it again`
        : `continuing the import started on ${prior.value.started}`,
    );
  } else {
    const held = await _clusterHolds(accounts, jsm, js);
    if (held && !o.merge) {
      throw new ImportRefused(
        `the cluster already holds ${held}. Import into a cluster no Parley node has run on ` +
          "yet, or pass --merge to add this data dir's data to it (accounts that exist " +
          "there are kept as they are, messages are added after the cluster's own)",
      );
    }
    state = {
      source,
      dataDir: config.dataDir,
      start: await lastSeq(),
      messages: history.messages.length,
      started: new Date().toISOString(),
    };
    if (prior) await stateKv.update(_STATE_KEY, JSON.stringify(state), prior.rev);
    else await stateKv.create(_STATE_KEY, JSON.stringify(state));
  }

  // Accounts: stored records as they are.
  const acc = { copied: 0, present: 0, kept: [] as string[] };
  for (const rec of records) {
    const outcome = await _createRecord(usersKv, rec);
    if (outcome === "created") acc.copied++;
    else if (outcome === "same") acc.present++;
    else acc.kept.push(rec.name);
  }
  o.progress(
    `accounts: ${acc.copied} copied, ${acc.present} already there` +
      (acc.kept.length ? `, ${acc.kept.length} kept as the cluster has them` : ""),
  );

  // Files and shares (before messages: a message may point at a share).
  const filesStarted = Date.now();
  const shareIds: string[] = [];
  for await (const e of Deno.readDir(new DiskStore(config.dataDir).sharesDir)) {
    const m = /^([0-9a-f]{32})\.json$/.exec(e.name);
    if (m && e.isFile) shareIds.push(m[1]!);
  }
  shareIds.sort();
  const files = await copyFiles({
    nc,
    src: srcFiles,
    dst: dstFiles,
    users: names,
    shareIds,
    progress: o.progress,
  });
  const filesMs = Date.now() - filesStarted;

  // Messages.
  const last = await lastSeq();
  const done = last - state.start;
  if (done < 0 || done > history.messages.length) {
    throw new Error(
      `the cluster's chat holds ${last - state.start} messages since this import began, ` +
        `not between 0 and ${history.messages.length}: something else wrote to it`,
    );
  }
  if (done > 0) {
    const m = history.messages[done - 1]!;
    const there = await dstChat.log.get(String(last), m.to ?? m.from);
    if (!there || !sameMessage(m, there, files.shares)) {
      throw new Error(
        `the cluster's last message (${last}) is not the last one this import stored: ` +
          "something else wrote to the cluster's chat. Stop every Parley node on it",
      );
    }
  }
  const msgStarted = Date.now();
  const appended = await appendMessages({
    dst: dstChat,
    messages: history.messages,
    start: state.start,
    done,
    sourceEpoch: srcChat.log.epoch(),
    shares: files.shares,
    progress: o.progress,
  });
  const msgMs = Date.now() - msgStarted;
  o.progress(`messages: ${history.messages.length} in place (${appended} appended now)`);

  // Moderation and per-user state.
  const users = [...new Set([...names, ...history.dmUsers])].sort();
  const policy = await copyPolicy(srcChat, dstChat, users, {
    oldIds: history.messages.map((m) => Number(m.id)),
    start: state.start,
  });
  o.progress(
    `chat state: ${policy.bans} bans, ${policy.mutes} mutes, ${policy.ignores} ignores, ` +
      `${policy.marks} DM delivery marks`,
  );

  if (!state.finished) {
    const cur = await _readState(stateKv);
    const finished = { ...state, finished: new Date().toISOString() };
    if (cur) await stateKv.update(_STATE_KEY, JSON.stringify(finished), cur.rev);
  }

  // Verification.
  o.progress("verifying …");
  const problems: string[] = [];
  for (const rec of records) {
    if (acc.kept.includes(rec.name)) continue;
    const a = await accounts.get(rec.name);
    if (!a) problems.push(`account ${rec.name} is missing in the cluster`);
    else if (a.admin !== (rec.admin === true) || a.exec !== (rec.exec === true)) {
      problems.push(`account ${rec.name} has other rights in the cluster`);
    }
  }
  const verifiedIds = new Set<string>();
  const check = (label: string, want: ChatMessage[], got: ChatMessage[]): void => {
    if (want.length !== got.length) {
      problems.push(
        `${label}: ${want.length} messages in the data dir, ${got.length} in the cluster`,
      );
      return;
    }
    for (let i = 0; i < want.length; i++) {
      if (!sameMessage(want[i]!, got[i]!, files.shares)) {
        problems.push(`${label}: message ${want[i]!.id} differs in the cluster (${got[i]!.id})`);
        return;
      }
    }
    for (const m of want) verifiedIds.add(m.id);
  };
  for (const room of history.rooms) {
    check(
      `room ${room}`,
      history.messages.filter((m) => m.room === room),
      await _settled(
        () => readAfter(dstChat, { room }, state.start),
        history.messages.filter((m) => m.room === room).length,
      ),
    );
  }
  for (const user of history.dmUsers) {
    const dms = history.messages.filter((m) =>
      m.room === undefined && (m.from === user || m.to === user)
    );
    // Direct messages the cluster held before the import come first; only ours are compared.
    const got = await _settled(
      async () =>
        (await readAfter(dstChat, { dm: user }, state.start)).filter((m) =>
          Number(m.id) > state.start
        ),
      dms.length,
    );
    check(`direct messages of ${user}`, dms, got);
  }
  let verifiedBytes = 0;
  for (const f of files.files) {
    const got = await readSha256(dstFiles, f.user, f.parts).catch((e) => ({
      sha256: `unreadable: ${e instanceof Error ? e.message : String(e)}`,
      size: -1,
    }));
    if (got.sha256 !== f.sha256 || got.size !== f.size) {
      problems.push(`file ${f.user}:${f.parts.join("/")}: ${got.sha256} in the cluster`);
    } else verifiedBytes += got.size;
  }
  if (files.conflicts.length === 0 && !o.merge) {
    for (const user of names) {
      const [a, b] = await Promise.all([srcFiles.store.usage(user), dstFiles.store.usage(user)]);
      if (a.files !== b.files || a.entries !== b.entries) {
        problems.push(
          `usage of ${user}: ${a.files} bytes in ${a.entries} entries in the data dir, ` +
            `${b.files} bytes in ${b.entries} entries in the cluster`,
        );
      }
    }
  }
  return {
    resumed,
    accounts: acc,
    messages: {
      total: history.messages.length,
      appended,
      rooms: history.rooms.length,
      start: state.start,
      ms: msgMs,
    },
    policy,
    files: { ...files, ms: filesMs },
    problems,
    verified: { messages: verifiedIds.size, files: files.files.length, bytes: verifiedBytes },
    epoch: dstChat.log.epoch(),
  };
}

/**
 * `read()`, read again (for at most about 5 s) while it returns fewer than
 * `want` messages: a history read just after the appends was seen to come
 * back empty now and then on a 3-node cluster (the reading consumer did not
 * see the newest messages yet), which is not a difference in the data.
 */
async function _settled(
  read: () => Promise<ChatMessage[]>,
  want: number,
): Promise<ChatMessage[]> {
  let got = await read();
  for (let i = 0; i < 10 && got.length < want; i++) {
    await new Promise((r) => setTimeout(r, 500));
    got = await read();
  }
  return got;
}

/** Refuses a data dir that does not exist or holds no Parley data. */
async function _checkDataDir(dataDir: string): Promise<void> {
  let found = false;
  for (const name of ["users.json", "chat", "files"]) {
    try {
      await Deno.stat(join(dataDir, name));
      found = true;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  if (!found) {
    throw new ImportRefused(
      `${dataDir} holds no Parley data (no users.json, chat or files): give the --data ` +
        "directory your server ran with",
    );
  }
}

/** A stored account record, as the data dir holds it (opaque past name and rights). */
type _Record = Record<string, unknown> & { name: string; admin?: unknown; exec?: unknown };

/** The data dir's account records, as stored. */
async function _readAccountRecords(dataDir: string): Promise<_Record[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(join(dataDir, "users.json"));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  const parsed = JSON.parse(text) as { users?: unknown };
  const users = Array.isArray(parsed.users) ? parsed.users : [];
  const out: _Record[] = [];
  for (const u of users) {
    if (
      typeof u !== "object" || u === null || typeof (u as _Record).name !== "string" ||
      !validUserName((u as _Record).name)
    ) {
      throw new ImportRefused(`${dataDir}/users.json holds a record that is not an account`);
    }
    out.push(u as _Record);
  }
  return out.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/** Creates the record under its name: "created", "same" (already there, equal) or "kept". */
async function _createRecord(kv: KV, rec: _Record): Promise<"created" | "same" | "kept"> {
  const key = encodeKeyToken(rec.name);
  try {
    await kv.create(key, JSON.stringify(rec));
    return "created";
  } catch (e) {
    if (!isWrongLastSequence(e) && !/key exists|wrong last sequence/i.test(String(e))) throw e;
  }
  const there = await kv.get(key);
  if (!there || there.operation !== "PUT") return "kept";
  return JSON.stringify(there.json()) === JSON.stringify(rec) ? "same" : "kept";
}

async function _readState(kv: KV): Promise<{ value: _State; rev: number } | undefined> {
  const e = await kv.get(_STATE_KEY);
  if (!e || e.operation !== "PUT" || e.length === 0) return undefined;
  return { value: e.json<_State>(), rev: e.revision };
}

/** What data the cluster holds ("3 accounts and 12 messages"), or "" when none. */
async function _clusterHolds(
  accounts: { list(): Promise<unknown[]> },
  jsm: Awaited<ReturnType<typeof jetstreamManager>>,
  js: ReturnType<typeof jetstream>,
): Promise<string> {
  const n = (await accounts.list()).length;
  const msgs = (await jsm.streams.info(CHAT_STREAM)).state.messages;
  let files = 0;
  const kv = await new Kvm(js).open(FS_BUCKET);
  const it = await kv.keys("h.>");
  for await (const _k of it) {
    files++;
    if (files >= 1000) break;
  }
  const parts = [
    n ? `${n} account${n === 1 ? "" : "s"}` : "",
    msgs ? `${msgs} message${msgs === 1 ? "" : "s"}` : "",
    files ? `${files >= 1000 ? "1000 or more" : files} file entries` : "",
  ].filter(Boolean);
  return parts.join(" and ");
}
