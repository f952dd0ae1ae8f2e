/**
 * Uploads (`file.offset`, `file.put`): the request is checked here (size
 * against the largest file allowed, sha256 or resume tag, flags), the bytes
 * after `offset` go to an {@linkcode UploadSession} of the backend, which
 * keeps nothing visible until the SHA-256 matches. The SHA-256 is declared
 * up front, or sent by the client as a 32-byte trailer right after the
 * file's bytes (so it can hash while sending).
 *
 * @module
 */
import { decodeHex, encodeHex } from "@std/encoding/hex";
import type { MuxStream } from "../../protocol/mux_stream.ts";
import { formatBytes as _fmtBytes } from "../../protocol/format_bytes.ts";
import { FILE_OFFSET, FILE_PUT, type FileRequest } from "../../protocol/ops/files.ts";
import type { UploadTarget } from "../backend/files.ts";
import type { ClientContext } from "../context.ts";
import { RequestError } from "../errors.ts";
import { pathArg } from "./path_arg.ts";
import { cwdOf, type FileDeps, limitsOf } from "./file_deps.ts";
import { displayPath } from "./remote_path.ts";

/** Bytes of the SHA-256 trailer of a tagged upload. */
const _TRAILER = 32;

/** SHA-256 of no bytes. */
const _EMPTY_SHA256 = decodeHex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

/** Reads and checks an upload request. */
function _target(
  deps: FileDeps,
  ctx: ClientContext,
  op: string,
  a: FileRequest<typeof FILE_OFFSET>,
): UploadTarget {
  const parts = pathArg(op, cwdOf(deps, ctx), a.path);
  if (parts.length === 0) throw new RequestError("bad_request", "cannot upload onto ~ itself");
  const size = a.size;
  // The schema lets through exactly one of the two.
  const id = a.tag != null ? { tag: a.tag } : { sha256: a.sha256 ?? "" };
  const overwrite = a.overwrite === true;
  const parents = a.parents === true;
  const max = deps.config.maxFileBytes;
  if (size > max) {
    throw new RequestError(
      "too_large",
      `${_fmtBytes(size)} is over the largest file allowed (${_fmtBytes(max)})`,
    );
  }
  return { user: ctx.user.name, parts, size, id, overwrite, parents };
}

/** `file.offset`: how many bytes of this upload the server already has. */
export async function handleOffset(
  deps: FileDeps,
  ctx: ClientContext,
  a: FileRequest<typeof FILE_OFFSET>,
): Promise<unknown> {
  const target = _target(deps, ctx, FILE_OFFSET, a);
  return await deps.backend.store.uploadOffset(target, limitsOf(deps.config));
}

/** `file.put`: receives the bytes from `offset` on and commits the file. */
export async function handlePut(
  deps: FileDeps,
  ctx: ClientContext,
  a: FileRequest<typeof FILE_PUT>,
  stream: MuxStream | undefined,
): Promise<unknown> {
  if (!stream) throw new RequestError("bad_request", "file.put needs a stream");
  const target = _target(deps, ctx, FILE_PUT, a);
  const offset = a.offset ?? 0;
  if (offset > target.size) throw new RequestError("bad_request", "offset is past the end");
  const user = ctx.user.name;
  // From byte 0 the stream's running SHA-256 (PROTOCOL.md §4.7), where the session keeps one, is
  // the file's: the session hashed every byte once already, so the store need not hash them again.
  const fromStream = offset === 0 && stream.hashesReads;
  await using upload = await deps.backend.store.beginUpload(target, {
    offset,
    limits: limitsOf(deps.config),
    hashGate: (work) => deps.hashJobs.run(user, work),
    callerHashes: fromStream,
  });
  const size = target.size;
  const declared = "sha256" in target.id ? target.id.sha256 : undefined;
  const wantTrailer = declared === undefined ? _TRAILER : 0;
  const trailer = new Uint8Array(_TRAILER);
  let trailerLength = 0;
  let received = offset;
  let digest: Uint8Array | undefined = fromStream && size === 0 ? _EMPTY_SHA256 : undefined;
  for (let chunk = await stream.read(); chunk; chunk = await stream.read()) {
    let rest = chunk;
    if (received < size) {
      const take = Math.min(rest.byteLength, size - received);
      const body = take === rest.byteLength ? rest : rest.subarray(0, take);
      rest = rest.subarray(take);
      received += take;
      // The file ends here: its SHA-256 is the stream's through this byte (the trailer may follow
      // in the same chunk).
      if (fromStream && received === size) digest = stream.readSha256At(take);
      await upload.write(body);
    }
    if (rest.byteLength > 0) {
      if (trailerLength + rest.byteLength > wantTrailer) {
        throw new RequestError(
          "bad_request",
          wantTrailer
            ? `more bytes than the declared ${size} and the ${_TRAILER}-byte SHA-256`
            : `more bytes than the declared ${size}`,
        );
      }
      trailer.set(rest, trailerLength);
      trailerLength += rest.byteLength;
    }
  }
  if (received < size) {
    throw new RequestError(
      "bad_request",
      `the upload ended after ${received} of ${size} bytes; resume it`,
    );
  }
  if (trailerLength < wantTrailer) {
    throw new RequestError(
      "bad_request",
      `the upload ended before its ${_TRAILER}-byte SHA-256 trailer; resume it`,
    );
  }
  if (fromStream && digest === undefined) {
    throw new RequestError("internal", "the stream gave no SHA-256 of the file's bytes");
  }
  const computed = digest === undefined ? undefined : encodeHex(digest);
  const { sha256 } = await upload.finish(declared ?? encodeHex(trailer), computed);
  deps.log.info("file.put", { user, path: displayPath(target.parts), size });
  return { path: displayPath(target.parts), size, sha256, resumedFrom: offset };
}
