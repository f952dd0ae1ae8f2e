/**
 * The seam between features and storage/delivery. Features (`server/chat/`,
 * `server/files/`, `server/exec/`) hold policy — validation, limits, rights,
 * ordering — and reach data only through these interfaces. Two
 * implementations exist: embedded (`server/embedded/`, one node, files under
 * the data dir) and NATS JetStream (a cluster of nodes).
 *
 * Each area's interfaces, with the ordering and durability guarantees every
 * implementation must keep, live in their own file:
 * - {@linkcode Accounts} — `accounts.ts`
 * - {@linkcode ChatBackend} — `chat.ts`
 * - {@linkcode FilesBackend} — `files.ts`
 * - {@linkcode ExecBackend} — `exec.ts`
 *
 * @module
 */
import type { Accounts } from "./accounts.ts";
import type { ChatBackend } from "./chat.ts";
import type { ExecBackend } from "./exec.ts";
import type { FilesBackend } from "./files.ts";

export type { Accounts, ChatBackend, ExecBackend, FilesBackend };

/** Every backend a server node runs on, bundled. */
export interface Backend extends AsyncDisposable {
  /** Accounts: names, rights, verifiers; watched for changes. */
  readonly accounts: Accounts;
  /** Chat history, live feed, moderation state and presence. */
  readonly chat: ChatBackend;
  /** File storage, uploads and shares. */
  readonly files: FilesBackend;
  /** Running commands and choosing the node that runs them. */
  readonly exec: ExecBackend;
  /** Flushes and releases everything. Idempotent. */
  close(): Promise<void>;
}
