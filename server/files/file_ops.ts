/**
 * The metadata operations: `file.stat`, `file.ls` (entries streamed as
 * NDJSON, so a large directory never exceeds the header limit), `file.mkdir`,
 * `file.rmdir`, `file.rm`, `file.mv`, `file.cd`, `file.pwd`, `file.usage`.
 *
 * @module
 */
import type { MuxStream } from "../../protocol/mux_stream.ts";
import {
  FILE_CD,
  FILE_LS,
  FILE_MKDIR,
  FILE_MV,
  FILE_RM,
  FILE_RMDIR,
  FILE_STAT,
  type FileEntryInfo,
  type FileRequest,
} from "../../protocol/ops/files.ts";
import type { FileEntry } from "../backend/files.ts";
import type { ClientContext } from "../context.ts";
import { RequestError } from "../errors.ts";
import { pathArg } from "./path_arg.ts";
import { cwdOf, type FileDeps, limitsOf, sha256Of } from "./file_deps.ts";
import { checkNewPath } from "./path_limits.ts";
import { displayPath } from "./remote_path.ts";
import { statShare } from "./shares.ts";

/** Most entries one `file.ls` lists (recursive listings included). */
export const MAX_LIST_ENTRIES = 200_000;

const _encoder = new TextEncoder();

/** One listed entry, as the protocol sends it. */
export type EntryInfo = FileEntryInfo;

function _info(name: string, e: FileEntry): EntryInfo {
  return { name, type: e.type, size: e.size, mtime: e.mtime };
}

function _tooMany(): RequestError {
  return new RequestError(
    "too_large",
    `more than ${MAX_LIST_ENTRIES} entries to list; list a subdirectory (or without -r)`,
  );
}

/** The metadata operations. */
export class FileOps {
  #deps: FileDeps;

  constructor(deps: FileDeps) {
    this.#deps = deps;
  }

  get #store() {
    return this.#deps.backend.store;
  }

  async #existing(user: string, parts: readonly string[]): Promise<FileEntry> {
    const e = await this.#store.stat(user, parts);
    if (!e) throw new RequestError("not_found", `${displayPath(parts)} does not exist`);
    return e;
  }

  async #sha256(user: string, owner: string, parts: readonly string[]): Promise<string> {
    await using reader = await this.#store.open(owner, parts);
    return await sha256Of(this.#deps, user, reader);
  }

  /** `file.stat {path | shared, sha256?}`. */
  async stat(ctx: ClientContext, a: FileRequest<typeof FILE_STAT>): Promise<unknown> {
    if (a.shared != null) return await statShare(this.#deps, a.shared);
    const parts = pathArg(FILE_STAT, cwdOf(this.#deps, ctx), a.path ?? "");
    const user = ctx.user.name;
    const entry = await this.#existing(user, parts);
    const e = _info(parts[parts.length - 1] ?? "~", entry);
    if (a.sha256 && e.type === "file") {
      e.sha256 = await this.#sha256(user, user, parts);
    }
    return { ...e, path: displayPath(parts) };
  }

  /** `file.ls {path?, sha256?, recursive?}`: NDJSON entries on the stream, `{path, count}` reply. */
  async ls(
    ctx: ClientContext,
    a: FileRequest<typeof FILE_LS>,
    stream: MuxStream | undefined,
  ): Promise<unknown> {
    if (!stream) throw new RequestError("bad_request", "file.ls needs a stream");
    const parts = pathArg(FILE_LS, cwdOf(this.#deps, ctx), a.path ?? "");
    const withSha = a.sha256 === true;
    const recursive = a.recursive === true;
    const user = ctx.user.name;
    const top = await this.#existing(user, parts);
    if (top.type !== "dir") {
      const e = _info(parts[parts.length - 1]!, top);
      if (withSha && e.type === "file") e.sha256 = await this.#sha256(user, user, parts);
      await stream.write(_encoder.encode(JSON.stringify(e) + "\n"));
      return { path: displayPath(parts), count: 1, dir: false };
    }
    let count = 0;
    let batch = "";
    const flush = async () => {
      if (batch) await stream.write(_encoder.encode(batch));
      batch = "";
    };
    const walk = async (dirParts: string[], prefix: string): Promise<void> => {
      const entries: FileEntry[] = [];
      for await (const d of this.#store.list(user, dirParts)) {
        // Bounded before sorting: a huge directory is refused, not held in memory.
        if (count + entries.length >= MAX_LIST_ENTRIES) throw _tooMany();
        entries.push(d);
      }
      entries.sort((x, y) => x.name < y.name ? -1 : x.name > y.name ? 1 : 0);
      for (const entry of entries) {
        if (++count > MAX_LIST_ENTRIES) throw _tooMany();
        const e = _info(prefix + entry.name, entry);
        if (withSha && e.type === "file") {
          e.sha256 = await this.#sha256(user, user, [...dirParts, entry.name]);
        }
        batch += JSON.stringify(e) + "\n";
        if (batch.length > 32 * 1024) await flush();
        if (recursive && e.type === "dir") {
          await walk([...dirParts, entry.name], `${prefix}${entry.name}/`);
        }
      }
    };
    await walk(parts, "");
    await flush();
    return { path: displayPath(parts), count, dir: true };
  }

  /** `file.mkdir {path, parents?}`. */
  async mkdir(ctx: ClientContext, a: FileRequest<typeof FILE_MKDIR>): Promise<unknown> {
    const parts = pathArg(FILE_MKDIR, cwdOf(this.#deps, ctx), a.path);
    if (parts.length === 0) throw new RequestError("exists", "~ already exists");
    const user = ctx.user.name;
    checkNewPath(parts, this.#store.maxPathBytes(user));
    await this.#store.mkdir(user, parts, {
      parents: a.parents === true,
      limits: limitsOf(this.#deps.config),
    });
    return { path: displayPath(parts) };
  }

  /** `file.rmdir {path}`: removes an empty directory. */
  async rmdir(ctx: ClientContext, a: FileRequest<typeof FILE_RMDIR>): Promise<unknown> {
    const parts = pathArg(FILE_RMDIR, cwdOf(this.#deps, ctx), a.path);
    if (parts.length === 0) throw new RequestError("bad_request", "cannot remove ~");
    await this.#store.rmdir(ctx.user.name, parts);
    return { path: displayPath(parts) };
  }

  /** `file.rm {path}`: removes a file. */
  async rm(ctx: ClientContext, a: FileRequest<typeof FILE_RM>): Promise<unknown> {
    const parts = pathArg(FILE_RM, cwdOf(this.#deps, ctx), a.path);
    const size = await this.#store.remove(ctx.user.name, parts);
    return { path: displayPath(parts), size };
  }

  /**
   * `file.mv {from, to, overwrite?}`: renames; into `to` when it is a
   * directory. Moving an entry onto itself changes nothing.
   */
  async mv(ctx: ClientContext, a: FileRequest<typeof FILE_MV>): Promise<unknown> {
    const cwd = cwdOf(this.#deps, ctx);
    const fromParts = pathArg(FILE_MV, cwd, a.from, "from");
    const toArg = pathArg(FILE_MV, cwd, a.to, "to");
    const overwrite = a.overwrite === true;
    if (fromParts.length === 0) throw new RequestError("bad_request", "cannot move ~");
    const toParts = await this.#store.rename(ctx.user.name, fromParts, toArg, { overwrite });
    return { from: displayPath(fromParts), to: displayPath(toParts) };
  }

  /** `file.cd {path?}`: changes the session's directory (home when absent). */
  async cd(ctx: ClientContext, a: FileRequest<typeof FILE_CD>): Promise<unknown> {
    const session = this.#deps.sessions.of(ctx);
    const parts = pathArg(FILE_CD, session.cwd, a.path ?? "~");
    const e = await this.#existing(ctx.user.name, parts);
    if (e.type !== "dir") {
      throw new RequestError("bad_request", `${displayPath(parts)} is not a directory`);
    }
    session.cwd = parts;
    return { cwd: displayPath(parts) };
  }

  /** `file.pwd`. */
  pwd(ctx: ClientContext): Promise<unknown> {
    return Promise.resolve({ cwd: displayPath(cwdOf(this.#deps, ctx)) });
  }

  /**
   * `file.usage`: bytes used (files plus interrupted uploads), reserved by
   * uploads running, quota and largest file.
   */
  async usage(ctx: ClientContext): Promise<unknown> {
    const u = await this.#store.usage(ctx.user.name);
    const { config } = this.#deps;
    return {
      used: u.files + u.partial,
      files: u.files,
      partial: u.partial,
      reserved: u.reserved,
      entries: u.entries,
      maxEntries: config.maxEntriesPerUser,
      quota: config.quotaBytes,
      maxFile: config.maxFileBytes,
    };
  }
}
