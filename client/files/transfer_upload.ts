/**
 * Uploads a local file: asks the server how much of this upload it already
 * holds (`file.offset`, keyed by path, size and a resume tag made of the local
 * file's modification time and inode), then streams the rest through
 * `file.put`, hashing the bytes as they go and sending the SHA-256 after them
 * for the server to check. Memory stays bounded (two 1 MiB buffers); a lost
 * connection is resumed from the server's offset once the client reconnects.
 *
 * @example
 * ```ts ignore
 * const r = await uploadFile(client, "./report.pdf", "docs/report.pdf", { parents: true });
 * console.log(r.sha256);
 * ```
 *
 * @module
 */
import { createHash } from "node:crypto";
import { RemoteError } from "../../protocol/errors.ts";
import type { ParleyClient } from "../client.ts";
import {
  hashPrefix,
  LOCAL_CHUNK,
  TransferError,
  type TransferOptions,
  type TransferResult,
  withRetries,
} from "./transfer_common.ts";
import { FILE_OFFSET, FILE_PUT, type FileOffsetReply } from "../../protocol/ops/files.ts";

/** SHA-256 of no bytes (an empty file sends no data before its trailer). */
const _EMPTY_SHA256 = new Uint8Array(createHash("sha256").digest());

interface _PutReply {
  path: string;
  size: number;
  sha256: string;
  resumedFrom: number;
}

async function _readFull(file: Deno.FsFile, buf: Uint8Array): Promise<number> {
  let filled = 0;
  while (filled < buf.byteLength) {
    const n = await file.read(buf.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return filled;
}

/** A resume tag for `info`: the server keys interrupted uploads by it (with path and size). */
export function resumeTag(info: Deno.FileInfo): string {
  const mtime = Math.trunc(info.mtime?.getTime() ?? 0);
  return info.ino === null ? `m${mtime}` : `m${mtime}-i${info.ino}`;
}

/** Uploads `local` to `remote` (relative to the session's remote directory, or `~/…`). */
export async function uploadFile(
  client: ParleyClient,
  local: string,
  remote: string,
  options: TransferOptions = {},
): Promise<TransferResult> {
  const t0 = performance.now();
  const info = await Deno.stat(local).catch((e) => {
    throw new TransferError("not_found", `cannot read ${local}: ${(e as Error).message}`, {
      cause: e,
    });
  });
  if (!info.isFile) throw new TransferError("local", `${local} is not a regular file`);
  const size = info.size;
  // With a known checksum it goes up front; otherwise the file is hashed while
  // it is sent and the digest follows the bytes as a 32-byte trailer.
  const id = options.sha256 ? { sha256: options.sha256 } : { tag: resumeTag(info) };
  const base = {
    path: remote,
    size,
    ...id,
    overwrite: options.overwrite ?? false,
    parents: options.parents ?? false,
  };
  let transferred = 0;
  let restart = options.resume === false;
  let resumedAt = 0;
  const once = async (): Promise<_PutReply> => {
    const { offset } = (await client.call(FILE_OFFSET, base)) as FileOffsetReply;
    const start = restart ? 0 : offset;
    restart = false;
    resumedAt = start;
    using file = await Deno.open(local, { read: true });
    // A resumed upload hashes the prefix, then the rest as it sends it.
    let hash = options.sha256 || start === 0 ? undefined : createHash("sha256");
    if (hash) {
      await hashPrefix(
        file,
        start,
        hash,
        (done) => options.onProgress?.({ phase: "hash", done, total: start }),
      );
    }
    await file.seek(start, Deno.SeekMode.Start);
    const { stream, result } = client.open(FILE_PUT, { ...base, offset: start });
    result.catch(() => {}); // observed below; avoid an unhandled rejection while pumping
    // From byte 0 the stream's running SHA-256 (PROTOCOL.md §4.7), where the session keeps one
    // (plaintext), is the file's: each byte is hashed once, as the session sends it.
    const fromStream = !options.sha256 && start === 0 && stream.hashesWrites;
    if (!options.sha256 && start === 0 && !fromStream) hash = createHash("sha256");
    let sent = start;
    try {
      let pending: Promise<void> | undefined;
      while (sent < size) {
        const buf = new Uint8Array(Math.min(LOCAL_CHUNK, size - sent));
        const n = await _readFull(file, buf);
        if (n === 0) break;
        const chunk = n === buf.byteLength ? buf : buf.subarray(0, n);
        hash?.update(chunk);
        await pending;
        pending = stream.write(chunk);
        pending.catch(() => {}); // awaited on the next turn; a reset must not go unhandled meanwhile
        sent += n;
        transferred += n;
        options.onProgress?.({ phase: "send", done: sent, total: size });
      }
      await pending;
      if (sent === size && hash) await stream.write(new Uint8Array(hash.digest()));
      // Its own write, so the trailer starts a data frame of its own (§4.7 asks for that).
      if (sent === size && fromStream) await stream.write(stream.sentSha256 ?? _EMPTY_SHA256);
      if (sent === size) stream.end();
    } catch (e) {
      // A refusal arrives as the reply; prefer it over the stream's reset.
      await result;
      throw e;
    }
    if (sent !== size) {
      stream.reset("cancel", "local file changed");
      throw new TransferError("local", `${local} changed size while uploading`);
    }
    const r = (await result) as _PutReply;
    try {
      while ((await stream.read()) !== null) { /* drain to the server's end of stream */ }
    } catch {
      // The upload is committed; a reset of the empty return direction changes nothing.
    }
    return r;
  };
  const reply = await withRetries(client, options, async () => {
    try {
      return await once();
    } catch (e) {
      // A resumed prefix that no longer matches the local file: start over once.
      if (!(e instanceof RemoteError && e.code === "checksum" && "tag" in id)) throw e;
      if (resumedAt === 0) throw e;
      restart = true;
      return await once();
    }
  });
  return {
    remote: reply.path,
    local,
    size,
    sha256: reply.sha256,
    resumedFrom: reply.resumedFrom,
    transferred,
    ms: performance.now() - t0,
  };
}
