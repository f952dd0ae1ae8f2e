/**
 * Downloads (`file.get`): streams a file from an offset and replies with the
 * SHA-256 of the whole file, so the client can verify what it assembled
 * (resumed prefix included). The file is opened once, so a concurrent
 * replace (always a rename) cannot mix two versions into one download.
 * A shared file is checked against the SHA-256 pinned when it was shared
 * before its first byte is sent: share holders get exactly what was shared
 * or an error, never other bytes (files in the store are never written in
 * place, so the open file cannot change after the check).
 *
 * @module
 */
import type { Json } from "../../protocol/messages.ts";
import type { MuxStream } from "../../protocol/mux_stream.ts";
import type { ClientContext } from "../context.ts";
import { RequestError } from "../errors.ts";
import { fileError } from "./file_errors.ts";
import { intArg, optIntArg, pathArg } from "./file_args.ts";
import { ChecksumCache } from "./checksum_cache.ts";
import type { FileStore } from "./file_store.ts";
import { displayPath } from "./remote_path.ts";
import type { Shares } from "./shares.ts";

const _CHUNK = 256 * 1024;

/** `file.get {path | shared, offset?, size?, mtime?}`. */
export async function handleGet(
  store: FileStore,
  shares: Shares,
  ctx: ClientContext,
  args: Json,
  stream: MuxStream | undefined,
): Promise<unknown> {
  if (!stream) throw new RequestError("bad_request", "file.get needs a stream");
  const a = args as Record<string, unknown>;
  let owner = ctx.user.name;
  let parts: string[];
  let pinned: { size: number; sha256: string } | undefined;
  if (a.shared !== undefined && a.shared !== null) {
    const rec = await shares.lookup(a.shared);
    owner = rec.owner;
    parts = rec.parts;
    pinned = { size: rec.size, sha256: rec.sha256 };
  } else {
    parts = pathArg(ctx, args, "path");
  }
  const offset = intArg(args, "offset", 0);
  const wantSize = optIntArg(args, "size");
  const wantMtime = optIntArg(args, "mtime");
  const r = await store.existing(owner, parts).catch((e) => {
    if (pinned) throw new RequestError("not_found", "the shared file was removed");
    throw e;
  });
  const file = await store.openRead(r);
  try {
    const st = await file.stat();
    const mtime = st.mtime?.getTime() ?? 0;
    const name = pinned ? "the shared file" : displayPath(parts);
    if (pinned && st.size !== pinned.size) {
      throw new RequestError("not_found", "the shared file was changed or removed");
    }
    if (
      (wantSize !== undefined && wantSize !== st.size) ||
      (wantMtime !== undefined && wantMtime !== mtime)
    ) {
      throw fileError("changed", `${name} changed since it was listed; download it again`);
    }
    if (offset > st.size) throw fileError("changed", `${name} is shorter than the offset`);
    // A file hashed before (same inode, size, mtime, ctime) is only read once more.
    let known = store.checksums.get(st);
    if (pinned) {
      known ??= await store.sha256OfOpen(ctx.user.name, file);
      if (known !== pinned.sha256) {
        throw new RequestError("not_found", "the shared file was changed or removed");
      }
    }
    const hash = known === undefined
      ? await store.hashPrefix(ctx.user.name, file, offset)
      : undefined;
    await file.seek(offset, Deno.SeekMode.Start);
    let left = st.size - offset;
    let pending: Promise<void> | undefined;
    while (left > 0) {
      const buf = new Uint8Array(Math.min(_CHUNK, left));
      let filled = 0;
      while (filled < buf.byteLength) {
        const n = await file.read(buf.subarray(filled));
        if (n === null) throw new RequestError("internal", `${name} shrank while reading`);
        filled += n;
      }
      hash?.update(buf);
      left -= buf.byteLength;
      await pending;
      pending = stream.write(buf);
      pending.catch(() => {}); // awaited on the next turn; a reset must not go unhandled meanwhile
    }
    await pending;
    const sha256 = known ?? hash!.digest("hex");
    if (known === undefined) {
      // Remember it only if the file did not change while it was read.
      const after = await file.stat();
      if (ChecksumCache.key(after) === ChecksumCache.key(st)) store.checksums.set(st, sha256);
    }
    if (pinned && sha256 !== pinned.sha256) {
      throw fileError("checksum", "the shared file's content changed since it was shared");
    }
    return { path: pinned ? undefined : displayPath(parts), size: st.size, mtime, sha256 };
  } finally {
    file.close();
  }
}
