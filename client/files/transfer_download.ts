/**
 * Downloads a remote or shared file into `LOCAL.parley-part`, verifies the
 * SHA-256 the server (and, for a shared file, the chat message) names, then
 * renames it into place. The part file and a small `.json` beside it let an
 * interrupted download resume when the remote file is unchanged (same size
 * and modification time).
 *
 * @example
 * ```ts ignore
 * await downloadFile(client, { path: "docs/report.pdf" }, "./report.pdf");
 * await downloadFile(client, { shared: id, sha256 }, "./photo.jpg");
 * ```
 *
 * @module
 */
import { createHash } from "node:crypto";
import { encodeHex } from "@std/encoding/hex";
import { RemoteError } from "../../protocol/errors.ts";
import type { ParleyClient } from "../client.ts";
import {
  exists,
  hashPrefix,
  localWriteError,
  TransferError,
  type TransferOptions,
  type TransferResult,
  withRetries,
} from "./transfer_common.ts";
import { FILE_GET, FILE_STAT, type FileGetReply } from "../../protocol/ops/files.ts";

/** What to download: a path (relative to the session's directory) or a share id. */
export type DownloadSource =
  | { path: string }
  | { shared: string; sha256?: string };

/** Suffix of an incomplete download. */
export const PART_SUFFIX = ".parley-part";

interface _Stat {
  path?: string;
  name: string;
  type: "file" | "dir" | "other";
  size: number;
  mtime?: number;
  sha256?: string;
}

interface _PartMeta {
  source: string;
  size: number;
  mtime: number;
}

async function _remove(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/** Describes a source for messages and the part-file record. */
export function sourceName(source: DownloadSource): string {
  return "path" in source ? source.path : `shared:${source.shared}`;
}

/** Asks the server about `source` (`file.stat`). */
export async function statSource(client: ParleyClient, source: DownloadSource): Promise<_Stat> {
  return (await client.call(
    FILE_STAT,
    "path" in source ? { path: source.path } : { shared: source.shared },
  )) as _Stat;
}

/** Downloads `source` to the local file `local`. */
export async function downloadFile(
  client: ParleyClient,
  source: DownloadSource,
  local: string,
  options: TransferOptions = {},
): Promise<TransferResult> {
  const t0 = performance.now();
  if (!options.overwrite && await exists(local)) {
    throw new TransferError("exists", `${local} already exists; pass --overwrite to replace it`);
  }
  const part = local + PART_SUFFIX;
  const metaPath = part + ".json";
  // A local failure says where and what to do, not which part file failed.
  const writing = <T>(p: Promise<T>): Promise<T> =>
    p.catch((e) => {
      throw localWriteError(e, local);
    });
  let transferred = 0;
  let resumedFrom = 0;
  let restart = options.resume === false;
  const once = async () => {
    const st = await statSource(client, source);
    if (st.type !== "file") {
      throw new TransferError("local", `${sourceName(source)} is not a file`);
    }
    const meta: _PartMeta = { source: sourceName(source), size: st.size, mtime: st.mtime ?? 0 };
    let offset = 0;
    if (!restart) {
      try {
        const old = JSON.parse(await Deno.readTextFile(metaPath)) as _PartMeta;
        const have = (await Deno.lstat(part)).size;
        if (
          old.source === meta.source && old.size === meta.size && old.mtime === meta.mtime &&
          have <= meta.size
        ) offset = have;
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound || e instanceof SyntaxError)) throw e;
      }
    }
    restart = false;
    await writing(Deno.writeTextFile(metaPath, JSON.stringify(meta)));
    using file = await writing(Deno.open(part, { read: true, write: true, create: true }));
    await file.truncate(offset);
    const hash = createHash("sha256");
    await hashPrefix(file, offset, hash);
    await file.seek(offset, Deno.SeekMode.Start);
    resumedFrom = offset;
    const args = "path" in source
      ? { path: source.path, offset, size: st.size, mtime: st.mtime ?? 0 }
      : { shared: source.shared, offset, size: st.size };
    const { stream, result } = client.open(FILE_GET, args, { fin: true });
    result.catch(() => {});
    // From byte 0 the stream's running SHA-256 (PROTOCOL.md §4.7), where the session keeps one
    // (plaintext), is the file's: each byte is hashed once, as the session receives it.
    const fromStream = offset === 0 && stream.hashesReads;
    let got = offset;
    // Each chunk goes to the file as soon as it is read, from the buffer it arrived in, with a
    // synchronous write (to the page cache: well under a millisecond per chunk). Awaiting an
    // asynchronous write per chunk cost more CPU and let the reader fall up to a whole window
    // behind, so the server stopped to wait for credit.
    const writeAll = (chunk: Uint8Array) => {
      try {
        let off = 0;
        while (off < chunk.byteLength) off += file.writeSync(chunk.subarray(off));
      } catch (e) {
        throw localWriteError(e, local);
      }
    };
    try {
      for (let chunk = await stream.read(); chunk; chunk = await stream.read()) {
        got += chunk.byteLength;
        if (got > st.size) throw new TransferError("checksum", "the server sent too many bytes");
        if (!fromStream) hash.update(chunk);
        writeAll(chunk);
        transferred += chunk.byteLength;
        options.onProgress?.({ phase: "receive", done: got, total: st.size });
      }
    } catch (e) {
      await result; // a refusal arrives as the reply; prefer it over the stream's reset
      throw e;
    }
    const reply = (await result) as FileGetReply;
    const sha256 = fromStream ? encodeHex(stream.readSha256 ?? hash.digest()) : hash.digest("hex");
    const expected = "shared" in source && source.sha256 ? source.sha256 : reply.sha256;
    if (got !== reply.size || sha256 !== reply.sha256 || sha256 !== expected) {
      await _remove(part);
      await _remove(metaPath);
      throw new TransferError(
        "checksum",
        `${sourceName(source)}: the downloaded bytes do not match the SHA-256 ` +
          `(${sha256.slice(0, 16)}… vs ${expected.slice(0, 16)}…); nothing was kept`,
      );
    }
    await file.syncData();
    return { size: got, sha256, remote: st.path ?? sourceName(source) };
  };
  const result = await withRetries(client, options, async () => {
    try {
      return await once();
    } catch (e) {
      // `changed`: the part file belongs to another version; start over once.
      if (!(e instanceof RemoteError && e.code === "changed")) throw e;
      restart = true;
      return await once();
    }
  });
  if (options.overwrite) {
    await writing(Deno.rename(part, local));
  } else {
    try {
      await Deno.link(part, local);
    } catch (e) {
      if (e instanceof Deno.errors.AlreadyExists) {
        throw new TransferError("exists", `${local} appeared during the download; kept ${part}`);
      }
      throw localWriteError(e, local);
    }
    await Deno.remove(part);
  }
  await _remove(metaPath);
  return {
    remote: result.remote,
    local,
    size: result.size,
    sha256: result.sha256,
    resumedFrom,
    transferred,
    ms: performance.now() - t0,
  };
}
