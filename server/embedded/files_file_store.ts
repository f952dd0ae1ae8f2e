/**
 * The embedded {@linkcode FileStore}: homes on disk (`files_store.ts`), every
 * change applied inside the user's ledger turn together with its accounting,
 * so usage stays exact whatever the interleaving.
 *
 * @module
 */
import { join } from "@std/path";
import type {
  BeginUploadOptions,
  FileEntry,
  FileLimits,
  FileReader,
  FileStore,
  FileUsage,
  UploadSession,
  UploadTarget,
} from "../backend/files.ts";
import { RequestError } from "../errors.ts";
import { displayPath } from "../files/remote_path.ts";
import { checkEntries, reservedBytes } from "./files_ledger.ts";
import { DiskFileReader } from "./files_reader.ts";
import { toEntry } from "./files_fs.ts";
import type { DiskStore } from "./files_store.ts";
import type { DiskUploads } from "./files_uploads.ts";

/** File operations over a {@linkcode DiskStore}. */
export class DiskFileStore implements FileStore {
  #store: DiskStore;
  #uploads: DiskUploads;

  constructor(store: DiskStore, uploads: DiskUploads) {
    this.#store = store;
    this.#uploads = uploads;
  }

  maxPathBytes(user: string): number {
    return this.#store.maxPathBytes(user);
  }

  async stat(user: string, parts: readonly string[]): Promise<FileEntry | undefined> {
    const r = await this.#store.resolve(user, parts);
    return r.info && toEntry(parts[parts.length - 1] ?? "~", r.info);
  }

  async *list(user: string, parts: readonly string[]): AsyncIterable<FileEntry> {
    const dir = await this.#store.existing(user, parts);
    if (!dir.info.isDirectory) {
      throw new RequestError("bad_request", `${displayPath(parts)} is not a directory`);
    }
    for await (const d of Deno.readDir(dir.abs)) {
      let info: Deno.FileInfo;
      try {
        info = await Deno.lstat(join(dir.abs, d.name));
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) continue;
        throw e;
      }
      yield toEntry(d.name, info);
    }
  }

  async open(user: string, parts: readonly string[]): Promise<FileReader> {
    const r = await this.#store.existing(user, parts);
    const file = await this.#store.openRead(r);
    try {
      return await DiskFileReader.of(parts[parts.length - 1] ?? "~", file, this.#store.checksums);
    } catch (e) {
      file.close();
      throw e;
    }
  }

  async mkdir(
    user: string,
    parts: readonly string[],
    options: { parents: boolean; limits: FileLimits },
  ): Promise<void> {
    if (parts.length === 0) throw new RequestError("exists", "~ already exists");
    this.#store.checkNewPath(user, parts);
    const max = options.limits.maxEntries;
    await this.#store.ledger.run(user, async (acct) => {
      if (options.parents) return await this.#store.mkdirs(user, parts, acct, max);
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
  }

  async rmdir(user: string, parts: readonly string[]): Promise<void> {
    if (parts.length === 0) throw new RequestError("bad_request", "cannot remove ~");
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
  }

  async remove(user: string, parts: readonly string[]): Promise<number> {
    return await this.#store.ledger.run(user, async (acct) => {
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
  }

  async rename(
    user: string,
    fromParts: readonly string[],
    toArg: readonly string[],
    options: { overwrite: boolean },
  ): Promise<string[]> {
    const { overwrite } = options;
    if (fromParts.length === 0) throw new RequestError("bad_request", "cannot move ~");
    return await this.#store.ledger.run(user, async (acct) => {
      let toParts = [...toArg];
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
              dst.info.isFile && src.info.isFile ? "; pass --overwrite to replace it" : ""
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
  }

  async usage(user: string): Promise<FileUsage> {
    return await this.#store.ledger.run(user, (acct) => {
      let partial = 0;
      for (const p of acct.partials.values()) partial += p.bytes;
      return { files: acct.files, partial, reserved: reservedBytes(acct), entries: acct.entries };
    });
  }

  uploadOffset(target: UploadTarget, limits: FileLimits) {
    return this.#uploads.offset(target, limits);
  }

  beginUpload(target: UploadTarget, options: BeginUploadOptions): Promise<UploadSession> {
    return this.#uploads.begin(target, options);
  }
}

/** Whether two lstat results are the same file (hard links included). */
function _same(a: Deno.FileInfo, b: Deno.FileInfo): boolean {
  return a.ino !== null && a.ino === b.ino && a.dev === b.dev;
}
