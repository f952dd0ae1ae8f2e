/**
 * Uploads a local file: checksums it, asks the server how much of this exact
 * upload it already holds (`file.offset`), then streams the rest through
 * `file.put`. Memory stays bounded (two 1 MiB buffers); a lost connection is
 * resumed from the server's offset once the client reconnects.
 *
 * @example
 * ```ts ignore
 * const r = await uploadFile(client, "./report.pdf", "docs/report.pdf", { parents: true });
 * console.log(r.sha256);
 * ```
 *
 * @module
 */
import type { ParleyClient } from "./client.ts";
import {
  hashLocalFile,
  LOCAL_CHUNK,
  TransferError,
  type TransferOptions,
  type TransferResult,
  withRetries,
} from "./transfer_common.ts";

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
  const { sha256, size } = options.sha256
    ? { sha256: options.sha256, size: info.size }
    : await hashLocalFile(local, options.onProgress);
  const base = {
    path: remote,
    size,
    sha256,
    overwrite: options.overwrite ?? false,
    parents: options.parents ?? false,
  };
  let transferred = 0;
  const reply = await withRetries(client, options, async (resumed) => {
    const { offset } = (await client.call("file.offset", base)) as { offset: number };
    const start = options.resume === false && !resumed ? 0 : offset;
    using file = await Deno.open(local, { read: true });
    await file.seek(start, Deno.SeekMode.Start);
    const { stream, result } = client.open("file.put", { ...base, offset: start });
    result.catch(() => {}); // observed below; avoid an unhandled rejection while pumping
    let sent = start;
    try {
      let pending: Promise<void> | undefined;
      while (sent < size) {
        const buf = new Uint8Array(Math.min(LOCAL_CHUNK, size - sent));
        const n = await _readFull(file, buf);
        if (n === 0) break;
        await pending;
        pending = stream.write(n === buf.byteLength ? buf : buf.subarray(0, n));
        pending.catch(() => {}); // awaited on the next turn; a reset must not go unhandled meanwhile
        sent += n;
        transferred += n;
        options.onProgress?.({ phase: "send", done: sent, total: size });
      }
      await pending;
      stream.end();
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
  });
  return {
    remote: reply.path,
    local,
    size,
    sha256,
    resumedFrom: reply.resumedFrom,
    transferred,
    ms: performance.now() - t0,
  };
}
