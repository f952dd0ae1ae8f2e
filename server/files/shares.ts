/**
 * Shared files (`file.share`, and `file.get`/`file.stat` with `shared`): a
 * share record points at a file in its owner's home and pins its size and
 * SHA-256. Any signed-in user who knows the id may fetch or stat it; the
 * file stays in (and counts against) the owner's home, and removing or
 * changing it ends the share (`downloads.ts` checks the SHA-256 before the
 * first byte). A user has at most `maxSharesPerUser` records.
 *
 * @module
 */
import { FILE_SHARE, type FileRequest, SHARE_ID } from "../../protocol/ops/files.ts";
import type { ShareRecord } from "../backend/files.ts";
import type { ClientContext } from "../context.ts";
import { RequestError } from "../errors.ts";
import { pathArg } from "./path_arg.ts";
import { cwdOf, type FileDeps, sha256Of } from "./file_deps.ts";
import { displayPath } from "./remote_path.ts";

/** `file.share {path}`: shares one of your files; returns `{id, name, size, sha256}`. */
export async function handleShare(
  deps: FileDeps,
  ctx: ClientContext,
  a: FileRequest<typeof FILE_SHARE>,
): Promise<unknown> {
  const owner = ctx.user.name;
  const parts = pathArg(FILE_SHARE, cwdOf(deps, ctx), a.path);
  let file: { size: number; sha256: string; version: string };
  {
    await using reader = await deps.backend.store.open(owner, parts);
    const sha256 = await sha256Of(deps, owner, reader);
    file = { size: reader.entry.size, sha256, version: reader.entry.version };
  }
  const rec = await deps.backend.shares.create(
    { owner, parts, ...file },
    deps.config.maxSharesPerUser,
  );
  return {
    id: rec.id,
    name: rec.name,
    size: rec.size,
    sha256: rec.sha256,
    owner: rec.owner,
    path: displayPath(rec.parts),
  };
}

/** Finds a share by id; `not_found` when there is none. */
export async function lookupShare(deps: FileDeps, id: unknown): Promise<ShareRecord> {
  if (typeof id !== "string" || !SHARE_ID.test(id)) {
    throw new RequestError("bad_request", "a share id is 32 lower-case hex digits");
  }
  const rec = await deps.backend.shares.resolve(id);
  if (!rec) throw new RequestError("not_found", `no shared file ${id}`);
  return rec;
}

/** `file.stat {shared}` reply. */
export async function statShare(deps: FileDeps, id: unknown): Promise<unknown> {
  const rec = await lookupShare(deps, id);
  return {
    shared: rec.id,
    name: rec.name,
    type: "file",
    size: rec.size,
    sha256: rec.sha256,
    owner: rec.owner,
  };
}
