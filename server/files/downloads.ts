/**
 * Downloads (`file.get`): streams a file from an offset and replies with the
 * SHA-256 of the whole file, so the client can verify what it assembled
 * (resumed prefix included). The file is opened once, so a concurrent
 * replace cannot mix two versions into one download. A shared file is
 * checked against the SHA-256 pinned when it was shared before its first
 * byte is sent: share holders get exactly what was shared or an error, never
 * other bytes.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { encodeHex } from "@std/encoding/hex";
import { FILE_GET, type FileRequest } from "../../protocol/ops/files.ts";
import type { MuxStream } from "../../protocol/mux_stream.ts";
import type { ClientContext } from "../context.ts";
import { RequestError } from "../errors.ts";
import { pathArg } from "./path_arg.ts";
import { cwdOf, type FileDeps, sha256Of } from "./file_deps.ts";
import { displayPath } from "./remote_path.ts";
import { lookupShare } from "./shares.ts";

type _Hash = ReturnType<typeof createHash>;

/** SHA-256 of an empty file (nothing crossed the stream, so it has no digest yet). */
function _sha256Empty(size: number): Uint8Array {
  if (size !== 0) throw new RequestError("internal", "the stream has no SHA-256 of the bytes sent");
  return new Uint8Array(createHash("sha256").digest());
}

/** Hashes a stream's bytes into `hash`. */
async function _hashStream(hash: _Hash, bytes: ReadableStream<Uint8Array>): Promise<_Hash> {
  for await (const chunk of bytes) hash.update(chunk);
  return hash;
}

/** `file.get {path | shared, offset?, size?, mtime?}`. */
export async function handleGet(
  deps: FileDeps,
  ctx: ClientContext,
  a: FileRequest<typeof FILE_GET>,
  stream: MuxStream | undefined,
): Promise<unknown> {
  if (!stream) throw new RequestError("bad_request", "file.get needs a stream");
  const user = ctx.user.name;
  let owner = user;
  let parts: string[];
  let pinned: { size: number; sha256: string } | undefined;
  if (a.shared != null) {
    const rec = await lookupShare(deps, a.shared);
    owner = rec.owner;
    parts = rec.parts;
    pinned = { size: rec.size, sha256: rec.sha256 };
  } else {
    parts = pathArg(FILE_GET, cwdOf(deps, ctx), a.path);
  }
  const offset = a.offset ?? 0;
  const wantSize = a.size ?? undefined;
  const wantMtime = a.mtime ?? undefined;
  await using reader = await deps.backend.store.open(owner, parts).catch((e) => {
    // A holder learns nothing about the owner's home: whatever happened to the file, it is gone.
    if (pinned && e instanceof RequestError) {
      throw new RequestError("not_found", "the shared file was removed");
    }
    throw e;
  });
  const { size, mtime } = reader.entry;
  const name = pinned ? "the shared file" : displayPath(parts);
  if (pinned && size !== pinned.size) {
    throw new RequestError("not_found", "the shared file was changed or removed");
  }
  if (
    (wantSize !== undefined && wantSize !== size) ||
    (wantMtime !== undefined && wantMtime !== mtime)
  ) {
    throw new RequestError("changed", `${name} changed since it was listed; download it again`);
  }
  if (offset > size) throw new RequestError("changed", `${name} is shorter than the offset`);
  let known = reader.knownSha256;
  if (pinned) {
    known ??= await sha256Of(deps, user, reader);
    if (known !== pinned.sha256) {
      throw new RequestError("not_found", "the shared file was changed or removed");
    }
  }
  // From byte 0 the stream's running SHA-256 (PROTOCOL.md §4.7), which the session computes as it
  // sends, is the file's: nothing here hashes the bytes again. A resumed download hashes the
  // prefix and the rest itself, and a known checksum needs no hashing at all.
  const fromStream = known === undefined && offset === 0 && stream.hashesWrites;
  const hash = known !== undefined || fromStream
    ? undefined
    : offset === 0
    ? createHash("sha256")
    : await deps.hashJobs.run(
      user,
      () => _hashStream(createHash("sha256"), reader.read(0, offset)),
    );
  let pending: Promise<void> | undefined;
  for await (const chunk of reader.read(offset)) {
    hash?.update(chunk);
    await pending;
    pending = stream.write(chunk);
    pending.catch(() => {}); // awaited on the next turn; a reset must not go unhandled meanwhile
  }
  await pending;
  const sent = fromStream ? (stream.sentSha256 ?? _sha256Empty(size)) : undefined;
  const sha256 = known ?? (sent ? encodeHex(sent) : hash!.digest("hex"));
  if (known === undefined) await reader.remember(sha256);
  if (pinned && sha256 !== pinned.sha256) {
    throw new RequestError("checksum", "the shared file's content changed since it was shared");
  }
  return { path: pinned ? undefined : displayPath(parts), size, mtime, sha256 };
}
