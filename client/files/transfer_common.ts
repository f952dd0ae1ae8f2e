/**
 * Shared pieces of client transfers: options and progress types, the
 * `TransferError` for local failures, local SHA-256 hashing and the retry
 * loop that resumes a transfer after the connection comes back.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { dirname } from "@std/path";
import { ProtocolError, RemoteError } from "../../protocol/errors.ts";
import type { ParleyClient } from "../client.ts";

/** Progress of one transfer. */
export interface TransferProgress {
  /** `hash`: reading the local file to checksum it; `send`/`receive`: moving bytes. */
  phase: "hash" | "send" | "receive";
  /** Bytes done in this phase (a resumed transfer starts at its offset). */
  done: number;
  /** Bytes in total. */
  total: number;
}

/** Options shared by uploads and downloads. */
export interface TransferOptions {
  /** Replace an existing file. Default false. */
  overwrite?: boolean;
  /** Continue an interrupted transfer of the same file. Default true. */
  resume?: boolean;
  /** Create missing remote parent directories (uploads). Default false. */
  parents?: boolean;
  /** The local file's SHA-256 when already known (uploads skip hashing it again). */
  sha256?: string;
  /** Called as bytes move (often; keep it cheap). */
  onProgress?: (p: TransferProgress) => void;
  /** How long to wait for a lost connection to come back, in ms. Default 60 000. */
  reconnectWaitMs?: number;
  /** Most attempts after connection losses. Default 20. */
  maxAttempts?: number;
}

/** What a finished transfer reports. */
export interface TransferResult {
  /** Remote path as the server shows it (`~/…`), or the share id. */
  remote: string;
  /** Local path. */
  local: string;
  /** File size. */
  size: number;
  /** SHA-256 of the file, verified. */
  sha256: string;
  /** Offset the last attempt started from (0 unless resumed). */
  resumedFrom: number;
  /** Bytes that crossed the network in this call. */
  transferred: number;
  /** Wall time in ms. */
  ms: number;
}

/** Codes of {@linkcode TransferError}. */
export type TransferErrorCode = "checksum" | "exists" | "not_found" | "local" | "interrupted";

/** A transfer failed on the client side (or its verification failed). */
export class TransferError extends Error {
  readonly code: TransferErrorCode;
  constructor(code: TransferErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "TransferError";
    this.code = code;
  }
}

/** `"Permission denied (os error 13): writefile 'x'"` → `"permission denied"`. */
function _reason(e: Error): string {
  const text = /^(.*?) \(os error \d+\)/.exec(e.message)?.[1] ?? e.message;
  return text.charAt(0).toLowerCase() + text.slice(1);
}

/** The directory `path` is in, as the user named it. */
function _dirOf(path: string): string {
  const dir = dirname(path);
  return dir === "." ? "the current directory" : dir;
}

/**
 * A local failure to write `local` (or the part files beside it) in plain
 * words: where, why, and what to do instead, never the part files' names.
 * Errors that are not about the local file system are returned as they are.
 */
export function localWriteError(e: unknown, local: string): unknown {
  if (!(e instanceof Error)) return e;
  const dir = _dirOf(local);
  const instead = "choose a directory you can write (get REMOTE DIR)";
  if (e instanceof Deno.errors.PermissionDenied) {
    return new TransferError("local", `cannot write in ${dir}: permission denied; ${instead}`, {
      cause: e,
    });
  }
  if (e instanceof Deno.errors.NotCapable) {
    return new TransferError(
      "local",
      `cannot write in ${dir}: parley runs without write access there (Deno's --allow-write); ` +
        instead,
      { cause: e },
    );
  }
  if (e instanceof Deno.errors.NotFound) {
    return new TransferError(
      "not_found",
      `cannot write in ${dir}: it does not exist; create it first (mkdir -p ${dir}) or ${instead}`,
      { cause: e },
    );
  }
  if (/\(os error \d+\)/.test(e.message)) {
    return new TransferError("local", `cannot write ${local}: ${_reason(e)}`, { cause: e });
  }
  return e;
}

/** A local failure to read `local` in plain words (`not_found` when it does not exist). */
export function localReadError(e: unknown, local: string): TransferError {
  if (e instanceof Deno.errors.NotFound) {
    return new TransferError("not_found", `${local} does not exist`, { cause: e });
  }
  if (e instanceof Deno.errors.NotCapable) {
    return new TransferError(
      "local",
      `cannot read ${local}: parley runs without read access there (Deno's --allow-read)`,
      { cause: e },
    );
  }
  const why = e instanceof Error ? _reason(e) : String(e);
  return new TransferError("local", `cannot read ${local}: ${why}`, { cause: e });
}

/** Whether a local path exists (without following a final symlink). */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Read size for local files (1 MiB: the session cuts it into frames). */
export const LOCAL_CHUNK = 1024 * 1024;

/** SHA-256 of a local file, with progress. */
export async function hashLocalFile(
  path: string,
  onProgress?: (p: TransferProgress) => void,
): Promise<{ sha256: string; size: number }> {
  using file = await Deno.open(path, { read: true });
  const hash = createHash("sha256");
  const buf = new Uint8Array(LOCAL_CHUNK);
  const total = (await file.stat()).size;
  let done = 0;
  for (let n = await file.read(buf); n !== null; n = await file.read(buf)) {
    hash.update(buf.subarray(0, n));
    done += n;
    onProgress?.({ phase: "hash", done, total });
  }
  return { sha256: hash.digest("hex"), size: done };
}

/** Hashes the first `length` bytes of an open file into `hash` (from the start). */
export async function hashPrefix(
  file: Deno.FsFile,
  length: number,
  hash: { update(bytes: Uint8Array): unknown },
  onProgress?: (done: number) => void,
): Promise<void> {
  await file.seek(0, Deno.SeekMode.Start);
  const buf = new Uint8Array(LOCAL_CHUNK);
  let left = length;
  while (left > 0) {
    const n = await file.read(buf.subarray(0, Math.min(left, buf.byteLength)));
    if (n === null) throw new TransferError("local", "a partial file is shorter than expected");
    await hash.update(buf.subarray(0, n)); // a worker-backed hash copies and may wait
    left -= n;
    onProgress?.(length - left);
  }
}

/** Whether `e` means the connection went away (as opposed to a refusal). */
export function isConnectionLoss(client: ParleyClient, e: unknown): boolean {
  if (client.state === "reconnecting" || client.session.state !== "open") return true;
  if (e instanceof ProtocolError) return e.code === "closed";
  if (e instanceof RemoteError) return e.code === "closed" || e.code === "slow_consumer";
  return false;
}

/**
 * Runs `attempt` until it succeeds; after a connection loss waits for the
 * client to reconnect (when it reconnects at all) and tries again with
 * `resumed = true`. A server `busy` (the old attempt is still being torn
 * down) is retried too, briefly.
 */
export async function withRetries<T>(
  client: ParleyClient,
  options: TransferOptions,
  attempt: (resumed: boolean) => Promise<T>,
): Promise<T> {
  const max = options.maxAttempts ?? 20;
  for (let i = 0;; i++) {
    try {
      return await attempt(i > 0);
    } catch (e) {
      if (i + 1 >= max) throw e;
      if (e instanceof RemoteError && e.code === "busy") {
        await new Promise((r) => setTimeout(r, 250 * (i + 1)));
        continue;
      }
      if (!isConnectionLoss(client, e) || !client.options.reconnect) throw e;
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        await Promise.race([
          client.waitOpen(),
          new Promise((_, reject) => {
            timer = setTimeout(
              () =>
                reject(
                  new TransferError(
                    "interrupted",
                    "the connection did not come back; resume later",
                    {
                      cause: e,
                    },
                  ),
                ),
              options.reconnectWaitMs ?? 60_000,
            );
          }),
        ]);
      } finally {
        clearTimeout(timer);
      }
    }
  }
}
