/**
 * The metadata operations: `file.stat`, `file.ls` (entries streamed as
 * NDJSON, so a large directory never exceeds the header limit), `file.mkdir`,
 * `file.rmdir`, `file.rm`, `file.mv`, `file.cd`, `file.pwd`, `file.usage`.
 *
 * @module
 */
import { join } from "@std/path";
import type { Json } from "../../protocol/messages.ts";
import type { MuxStream } from "../../protocol/mux_stream.ts";
import type { ClientContext } from "../context.ts";
import { RequestError } from "../errors.ts";
import type { FileConfig } from "./file_config.ts";
import { boolArg, cwdOf, pathArg, setCwd } from "./file_args.ts";
import { entryType, type FileStore } from "./file_store.ts";
import { displayPath } from "./remote_path.ts";
import { checkEntries, reservedBytes, usedBytes } from "./ledger.ts";
import type { Shares } from "./shares.ts";

/** Most entries one `file.ls` lists (recursive listings included). */
export const MAX_LIST_ENTRIES = 200_000;

const _encoder = new TextEncoder();

/** One listed entry. */
export interface EntryInfo {
  /** Name, or a relative path in a recursive listing. */
  name: string;
  type: "file" | "dir" | "other";
  size: number;
  /** Modification time, ms since the epoch. */
  mtime: number;
  sha256?: string;
}

function _entry(name: string, info: Deno.FileInfo): EntryInfo {
  return {
    name,
    type: entryType(info),
    size: info.isFile ? info.size : 0,
    mtime: info.mtime?.getTime() ?? 0,
  };
}

/** The metadata operations of one store. */
export class FileOps {
  #store: FileStore;
  #shares: Shares;
  #config: FileConfig;

  constructor(store: FileStore, shares: Shares, config: FileConfig) {
    this.#store = store;
    this.#shares = shares;
    this.#config = config;
  }

  /** `file.stat {path | shared, sha256?}`. */
  async stat(ctx: ClientContext, args: Json): Promise<unknown> {
    const a = args as Record<string, unknown>;
    if (a.shared !== undefined && a.shared !== null) return await this.#shares.stat(a.shared);
    const parts = pathArg(ctx, args, "path", "");
    const r = await this.#store.existing(ctx.user.name, parts);
    const e = _entry(parts[parts.length - 1] ?? "~", r.info);
    if (boolArg(args, "sha256") && e.type === "file") {
      e.sha256 = await this.#store.sha256Of(ctx.user.name, r);
    }
    return { ...e, path: displayPath(parts) };
  }

  /** `file.ls {path?, sha256?, recursive?}`: NDJSON entries on the stream, `{path, count}` reply. */
  async ls(ctx: ClientContext, args: Json, stream: MuxStream | undefined): Promise<unknown> {
    if (!stream) throw new RequestError("bad_request", "file.ls needs a stream");
    const parts = pathArg(ctx, args, "path", "");
    const withSha = boolArg(args, "sha256");
    const recursive = boolArg(args, "recursive");
    const r = await this.#store.existing(ctx.user.name, parts);
    if (!r.info.isDirectory) {
      const e = _entry(parts[parts.length - 1]!, r.info);
      if (withSha && e.type === "file") e.sha256 = await this.#store.sha256Of(ctx.user.name, r);
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
      const dir = await this.#store.existing(ctx.user.name, dirParts);
      const names: string[] = [];
      for await (const d of Deno.readDir(dir.abs)) {
        // Bounded before sorting: a huge directory is refused, not held in memory.
        if (count + names.length >= MAX_LIST_ENTRIES) {
          throw new RequestError("too_large", `more than ${MAX_LIST_ENTRIES} entries`);
        }
        names.push(d.name);
      }
      names.sort();
      for (const name of names) {
        if (++count > MAX_LIST_ENTRIES) {
          throw new RequestError("too_large", `more than ${MAX_LIST_ENTRIES} entries`);
        }
        let info: Deno.FileInfo;
        try {
          info = await Deno.lstat(join(dir.abs, name));
        } catch (e) {
          if (e instanceof Deno.errors.NotFound) continue;
          throw e;
        }
        const e = _entry(prefix + name, info);
        if (withSha && e.type === "file") {
          e.sha256 = await this.#store.sha256Of(ctx.user.name, {
            abs: join(dir.abs, name),
            parts: [...dirParts, name],
            info,
          });
        }
        batch += JSON.stringify(e) + "\n";
        if (batch.length > 32 * 1024) await flush();
        if (recursive && e.type === "dir") await walk([...dirParts, name], `${prefix}${name}/`);
      }
    };
    await walk(parts, "");
    await flush();
    return { path: displayPath(parts), count, dir: true };
  }

  /** `file.mkdir {path, parents?}`. */
  async mkdir(ctx: ClientContext, args: Json): Promise<unknown> {
    const parts = pathArg(ctx, args, "path");
    if (parts.length === 0) throw new RequestError("exists", "~ already exists");
    const user = ctx.user.name;
    this.#store.checkNewPath(user, parts);
    const max = this.#config.maxEntriesPerUser;
    await this.#store.ledger.run(user, async (acct) => {
      if (boolArg(args, "parents")) return await this.#store.mkdirs(user, parts, acct, max);
      const r = await this.#store.resolve(user, parts);
      if (r.info) throw new RequestError("exists", `${displayPath(parts)} already exists`);
      checkEntries(acct, 1, max);
      try {
        await Deno.mkdir(r.abs, { mode: 0o755 });
        acct.entries++;
      } catch (e) {
        if (e instanceof Deno.errors.AlreadyExists) {
          throw new RequestError("exists", `${displayPath(parts)} already exists`);
        }
        throw e;
      }
    });
    return { path: displayPath(parts) };
  }

  /** `file.rmdir {path}`: removes an empty directory. */
  async rmdir(ctx: ClientContext, args: Json): Promise<unknown> {
    const parts = pathArg(ctx, args, "path");
    if (parts.length === 0) throw new RequestError("bad_request", "cannot remove ~");
    const user = ctx.user.name;
    await this.#store.ledger.run(user, async (acct) => {
      const r = await this.#store.existing(user, parts);
      if (!r.info.isDirectory) {
        throw new RequestError("bad_request", `${displayPath(parts)} is not a directory`);
      }
      for await (const _ of Deno.readDir(r.abs)) {
        throw new RequestError("bad_request", `${displayPath(parts)} is not empty`);
      }
      await Deno.remove(r.abs);
      acct.entries--;
    });
    return { path: displayPath(parts) };
  }

  /** `file.rm {path}`: removes a file. */
  async rm(ctx: ClientContext, args: Json): Promise<unknown> {
    const parts = pathArg(ctx, args, "path");
    const user = ctx.user.name;
    const size = await this.#store.ledger.run(user, async (acct) => {
      const r = await this.#store.existing(user, parts);
      if (!r.info.isFile) {
        throw new RequestError(
          "bad_request",
          `${displayPath(parts)} is not a file${r.info.isDirectory ? "; use rmdir" : ""}`,
        );
      }
      await Deno.remove(r.abs);
      acct.files -= r.info.size;
      acct.entries--;
      return r.info.size;
    });
    return { path: displayPath(parts), size };
  }

  /**
   * `file.mv {from, to, overwrite?}`: renames; into `to` when it is a
   * directory. Moving an entry onto itself (the same path, or another name
   * of the same file) changes nothing. Every path of the moved tree must keep
   * within the depth and length limits at its new place.
   */
  async mv(ctx: ClientContext, args: Json): Promise<unknown> {
    const user = ctx.user.name;
    const fromParts = pathArg(ctx, args, "from");
    const toArg = pathArg(ctx, args, "to");
    const overwrite = boolArg(args, "overwrite");
    if (fromParts.length === 0) throw new RequestError("bad_request", "cannot move ~");
    const toParts = await this.#store.ledger.run(user, async (acct) => {
      let toParts = toArg;
      const src = await this.#store.existing(user, fromParts);
      if (src.info.isSymlink || !(src.info.isFile || src.info.isDirectory)) {
        throw new RequestError(
          "forbidden",
          `${displayPath(fromParts)} is not a file or directory`,
        );
      }
      let dst = await this.#store.resolve(user, toParts);
      if (dst.info?.isDirectory && !_same(src.info, dst.info)) {
        toParts = [...toParts, fromParts[fromParts.length - 1]!];
        dst = await this.#store.resolve(user, toParts);
      }
      if (dst.info && _same(src.info, dst.info)) return toParts;
      if (
        src.info.isDirectory && toParts.length >= fromParts.length &&
        fromParts.every((p, i) => toParts[i] === p)
      ) {
        throw new RequestError("bad_request", "cannot move a directory into itself");
      }
      await this.#store.checkMove(user, src.abs, src.info.isDirectory, fromParts, toParts);
      let replaced = 0;
      if (dst.info) {
        if (!overwrite || !dst.info.isFile || !src.info.isFile) {
          throw new RequestError(
            "exists",
            `${displayPath(toParts)} already exists${
              dst.info.isFile && src.info.isFile ? "; use overwrite to replace it" : ""
            }`,
          );
        }
        replaced = dst.info.size;
      }
      if (src.info.isFile && !overwrite) {
        // link + unlink: never replaces a file that appeared meanwhile.
        try {
          await Deno.link(src.abs, dst.abs);
        } catch (e) {
          if (e instanceof Deno.errors.AlreadyExists) {
            throw new RequestError("exists", `${displayPath(toParts)} already exists`);
          }
          throw e;
        }
        try {
          await Deno.remove(src.abs);
        } catch (e) {
          // Both names stay: each counts.
          acct.files += src.info.size;
          acct.entries++;
          throw e;
        }
      } else {
        await Deno.rename(src.abs, dst.abs);
      }
      acct.files -= replaced;
      if (dst.info) acct.entries--;
      return toParts;
    });
    return { from: displayPath(fromParts), to: displayPath(toParts) };
  }

  /** `file.cd {path?}`: changes the session's directory (home when absent). */
  async cd(ctx: ClientContext, args: Json): Promise<unknown> {
    const parts = pathArg(ctx, args, "path", "~");
    const r = await this.#store.existing(ctx.user.name, parts);
    if (!r.info.isDirectory) {
      throw new RequestError("bad_request", `${displayPath(parts)} is not a directory`);
    }
    setCwd(ctx, parts);
    return { cwd: displayPath(parts) };
  }

  /** `file.pwd`. */
  pwd(ctx: ClientContext): Promise<unknown> {
    return Promise.resolve({ cwd: displayPath(cwdOf(ctx)) });
  }

  /**
   * `file.usage`: bytes used (files plus interrupted uploads), reserved by
   * uploads running, quota and largest file.
   */
  async usage(ctx: ClientContext): Promise<unknown> {
    return await this.#store.ledger.run(ctx.user.name, (acct) => {
      let partial = 0;
      for (const p of acct.partials.values()) partial += p.bytes;
      return {
        used: usedBytes(acct),
        files: acct.files,
        partial,
        reserved: reservedBytes(acct),
        entries: acct.entries,
        maxEntries: this.#config.maxEntriesPerUser,
        quota: this.#config.quotaBytes,
        maxFile: this.#config.maxFileBytes,
      };
    });
  }
}

/** Whether two lstat results are the same file (hard links included). */
function _same(a: Deno.FileInfo, b: Deno.FileInfo): boolean {
  return a.ino !== null && a.ino === b.ino && a.dev === b.dev;
}
