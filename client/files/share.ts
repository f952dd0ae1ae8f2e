/**
 * Sharing files in chat, for the one-shot commands and the REPL alike:
 * {@linkcode shareLocalFile} uploads a local file to `~/shared/…`, shares it
 * (`file.share`) and posts a message that carries it; {@linkcode resolveShared}
 * turns what a user names (a message id as chat shows it, or a share id) into
 * a download source verified against the SHA-256 the message carries.
 *
 * @example
 * ```ts ignore
 * const r = await shareLocalFile(client, "notes.txt", { room: "lobby" });
 * console.log(`posted as message ${r.message.id}`);
 * const source = await resolveShared(client, r.message.id);
 * ```
 *
 * @module
 */
import { basename } from "@std/path";
import { EXIT, ExitError } from "../../cli/exit_codes.ts";
import type { ChatMessage } from "../../protocol/chat_message.ts";
import { RemoteError } from "../../protocol/errors.ts";
import {
  CHAT_GET,
  CHAT_SEND,
  type ChatGetReply,
  type ChatSendReply,
} from "../../protocol/ops/chat.ts";
import {
  FILE_SHARE,
  FILE_STAT,
  type FileShareReply,
  type FileStatReply,
  SHARE_ID,
} from "../../protocol/ops/files.ts";
import type { ParleyClient } from "../client.ts";
import { hashLocalFile, TransferError, type TransferProgress } from "./transfer_common.ts";
import type { DownloadSource } from "./transfer_download.ts";
import { formatBytes } from "./transfer_progress.ts";
import { uploadFile } from "./transfer_upload.ts";

/** The `path` prefix a chat file reference uses for a shared file. */
export const SHARED_PREFIX = "shared:";

/** Where a share is posted: a room, or a user as a direct message. */
export type ShareDestination = { room: string } | { to: string };

/** What {@linkcode shareLocalFile} did. */
export interface ShareResult {
  /** The share (`file.share` reply). */
  share: FileShareReply;
  /** The chat message that carries it (`chat.send` reply: its id and time). */
  message: ChatSendReply;
}

/** The remote path a shared file is uploaded to: one directory per content, the file's name. */
export function sharedRemotePath(name: string, sha256: string): string {
  return `~/shared/${sha256.slice(0, 16)}/${name}`;
}

/**
 * Uploads `local` (unless the same content under the same name is there
 * already), shares it and posts it to `dest` with `text` (default
 * "shared NAME (SIZE)"). The remote name is the local one in NFC.
 */
export async function shareLocalFile(
  client: ParleyClient,
  local: string,
  dest: ShareDestination,
  options: { text?: string; onProgress?: (p: TransferProgress) => void } = {},
): Promise<ShareResult> {
  const info = await Deno.stat(local).catch((e) => {
    throw new TransferError("not_found", `cannot read ${local}: ${(e as Error).message}`);
  });
  if (!info.isFile) throw new TransferError("local", `${local} is not a file; share one file`);
  const name = basename(local).normalize("NFC");
  const { sha256 } = await hashLocalFile(local, options.onProgress);
  const remote = sharedRemotePath(name, sha256);
  try {
    await uploadFile(client, local, remote, {
      parents: true,
      sha256,
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
  } catch (e) {
    // Already uploaded earlier (same content, same name): share that copy.
    if (!(e instanceof RemoteError && e.code === "exists")) throw e;
    const st = await client.call(FILE_STAT, { path: remote, sha256: true }) as FileStatReply;
    if (st.sha256 !== sha256) throw e;
  }
  const share = await client.call(FILE_SHARE, { path: remote }) as FileShareReply;
  const message = await client.call(CHAT_SEND, {
    ...dest,
    text: options.text || `shared ${share.name} (${formatBytes(share.size)})`,
    file: {
      path: `${SHARED_PREFIX}${share.id}`,
      name: share.name,
      size: share.size,
      sha256: share.sha256,
    },
  }) as ChatSendReply;
  return { share, message };
}

/** The download source of the file a message carries, if it carries one. */
export function sourceOfMessage(
  message: Pick<ChatMessage, "file"> | undefined,
): DownloadSource | undefined {
  const file = message?.file as { path?: unknown; sha256?: unknown } | undefined;
  if (!file || typeof file.path !== "string") return undefined;
  if (file.path.startsWith(SHARED_PREFIX)) {
    return {
      shared: file.path.slice(SHARED_PREFIX.length),
      ...(typeof file.sha256 === "string" ? { sha256: file.sha256 } : {}),
    };
  }
  return { path: file.path };
}

/** Whether `id` names a share: a message id (1–20 digits) or a share id (32 hex digits). */
export function isSharedId(id: string): boolean {
  return /^\d{1,20}$/.test(id) || SHARE_ID.test(id);
}

/**
 * What a user names to fetch a share: a message id (digits, as chat shows
 * it; the message must carry a file) or a share id (32 hex digits). An
 * optional `sha256` pins a share id's content.
 */
export async function resolveShared(
  client: ParleyClient,
  id: string,
  sha256?: string,
): Promise<DownloadSource> {
  if (SHARE_ID.test(id)) return { shared: id, ...(sha256 ? { sha256 } : {}) };
  if (!/^\d{1,20}$/.test(id)) {
    throw new ExitError(
      EXIT.usage,
      `${JSON.stringify(id)} is neither a message id (digits, as chat shows it) nor a share id ` +
        "(32 hex digits)",
    );
  }
  const { message } = await client.call(CHAT_GET, { id }) as ChatGetReply;
  const source = sourceOfMessage(message);
  if (!source) throw new ExitError(EXIT.notFound, `message ${id} carries no file`);
  // A plain path names a file in the sender's home: only the sender can fetch it that way.
  if ("path" in source && message.from !== client.user) {
    throw new ExitError(
      EXIT.refused,
      `message ${id} names ${message.from}'s file ${source.path}, which is not shared; ` +
        `ask ${message.from} to share it (parley share, or /share in the REPL)`,
      { code: "forbidden" },
    );
  }
  return source;
}
