/**
 * The on-disk file store: per-user homes under `<data>/files/home/<user>/`,
 * uploads in progress under `<data>/files/.parley-tmp/`, share records under
 * `<data>/files/shares/`. Every path a client names is resolved here, one
 * component at a time with `lstat`, so a symlink anywhere in the store is
 * refused rather than followed (Deno has no `O_NOFOLLOW`; after opening, the
 * file's device and inode are compared with the `lstat` result to catch a
 * swap in between). Also tracks per-user usage for the quota.
 *
 * @module
 */
import { ChecksumCache } from "./checksum_cache.ts";
import { createHash } from "node:crypto";
import { join } from "@std/path";
import { RequestError } from "../errors.ts";
import { displayPath } from "./remote_path.ts";

/** What a resolved, existing entry is. */
export type EntryType = "file" | "dir" | "other";

/** An entry resolved inside a home. */
export interface Resolved {
  /** Absolute path on the server. */
  abs: string;
  /** Components under the home. */
  parts: string[];
  /** lstat of the entry, or undefined when it does not exist. */
  info: Deno.FileInfo | undefined;
}

const _HASH_CHUNK = 1024 * 1024;

/** Maps an lstat result to an entry type (symlinks and devices are `other`). */
export function entryType(info: Deno.FileInfo): EntryType {
  if (info.isSymlink) return "other";
  if (info.isFile) return "file";
  if (info.isDirectory) return "dir";
  return "other";
}

/** lstat, or undefined when the path (or a parent) does not exist. */
export async function lstatIfPresent(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    if (e instanceof Deno.errors.NotADirectory) return undefined;
    throw e;
  }
}

/** Hashes bytes `[0, length)` of an open file from its current start. */
export async function hashFile(
  file: Deno.FsFile,
  length: number,
  hash = createHash("sha256"),
): Promise<ReturnType<typeof createHash>> {
  await file.seek(0, Deno.SeekMode.Start);
  const buf = new Uint8Array(_HASH_CHUNK);
  let left = length;
  while (left > 0) {
    const n = await file.read(buf.subarray(0, Math.min(buf.byteLength, left)));
    if (n === null) throw new RequestError("internal", "file shorter than expected");
    hash.update(buf.subarray(0, n));
    left -= n;
  }
  return hash;
}

/** The file store rooted at `<data>/files`. */
export class FileStore {
  /** `<data>/files`. */
  readonly root: string;
  /** Where uploads in progress live. */
  readonly tmpDir: string;
  /** Where share records live. */
  readonly sharesDir: string;
  /** SHA-256 of files already hashed, so repeated downloads read a file once. */
  readonly checksums = new ChecksumCache();
  #homes: string;
  #usage = new Map<string, Promise<number>>();
  #reserved = new Map<string, number>();

  constructor(dataDir: string) {
    this.root = join(dataDir, "files");
    this.#homes = join(this.root, "home");
    this.tmpDir = join(this.root, ".parley-tmp");
    this.sharesDir = join(this.root, "shares");
  }

  /** Creates the store's directories, refusing symlinked ones. */
  async init(): Promise<void> {
    for (const dir of [this.root, this.#homes, this.tmpDir, this.sharesDir]) {
      await this.#realDir(dir);
    }
  }

  async #realDir(dir: string): Promise<void> {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    const info = await Deno.lstat(dir);
    if (!info.isDirectory || info.isSymlink) {
      throw new RequestError("forbidden", `store directory ${dir} is not a plain directory`);
    }
  }

  /** The user's home directory (created on first use). */
  async home(user: string): Promise<string> {
    const dir = join(this.#homes, user);
    await this.#realDir(dir);
    return dir;
  }

  /**
   * Resolves `parts` under `user`'s home. Every existing component must be a
   * plain directory and the last one anything but a symlink; a missing
   * component other than the last is `not_found`; a missing last one gives
   * `info` undefined.
   */
  async resolve(user: string, parts: readonly string[]): Promise<Resolved> {
    let abs = await this.home(user);
    let info: Deno.FileInfo | undefined = await Deno.lstat(abs);
    for (let i = 0; i < parts.length; i++) {
      if (!info) {
        throw new RequestError(
          "not_found",
          `${displayPath(parts.slice(0, i))} does not exist; create it with mkdir ` +
            "(or pass -p to create missing directories)",
        );
      }
      if (info.isSymlink) {
        throw new RequestError("forbidden", `${displayPath(parts.slice(0, i))} is a symlink`);
      }
      if (!info.isDirectory) {
        throw new RequestError(
          "bad_request",
          `${displayPath(parts.slice(0, i))} is not a directory`,
        );
      }
      abs = join(abs, parts[i]!);
      info = await lstatIfPresent(abs);
    }
    if (info?.isSymlink) {
      throw new RequestError("forbidden", `${displayPath(parts)} is a symlink; not followed`);
    }
    return { abs, parts: [...parts], info };
  }

  /** Like {@linkcode resolve} but the entry must exist. */
  async existing(
    user: string,
    parts: readonly string[],
  ): Promise<Resolved & { info: Deno.FileInfo }> {
    const r = await this.resolve(user, parts);
    if (!r.info) throw new RequestError("not_found", `${displayPath(parts)} does not exist`);
    return r as Resolved & { info: Deno.FileInfo };
  }

  /**
   * Opens a regular file for reading without following symlinks: the file
   * opened must be the one `lstat` saw (same device and inode).
   */
  async openRead(r: Resolved & { info: Deno.FileInfo }): Promise<Deno.FsFile> {
    if (!r.info.isFile) {
      throw new RequestError("bad_request", `${displayPath(r.parts)} is not a file`);
    }
    const file = await Deno.open(r.abs, { read: true });
    try {
      const st = await file.stat();
      const after = await lstatIfPresent(r.abs);
      if (
        !st.isFile || !after || after.isSymlink || st.ino !== r.info.ino ||
        st.dev !== r.info.dev || after.ino !== st.ino
      ) {
        throw new RequestError("forbidden", `${displayPath(r.parts)} changed while opening`);
      }
      return file;
    } catch (e) {
      file.close();
      throw e;
    }
  }

  /** Creates missing directories along `parts`, never following symlinks. */
  async mkdirs(user: string, parts: readonly string[]): Promise<void> {
    for (let i = 1; i <= parts.length; i++) {
      const r = await this.resolve(user, parts.slice(0, i));
      if (r.info) {
        if (!r.info.isDirectory) {
          throw new RequestError("bad_request", `${displayPath(r.parts)} is not a directory`);
        }
        continue;
      }
      try {
        await Deno.mkdir(r.abs, { mode: 0o755 });
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      }
    }
  }

  /** Bytes stored in `user`'s home (computed once, then kept up to date). */
  usage(user: string): Promise<number> {
    let p = this.#usage.get(user);
    if (!p) {
      p = this.home(user).then((h) => _du(h));
      this.#usage.set(user, p);
      p.catch(() => this.#usage.delete(user));
    }
    return p;
  }

  /** Adds `delta` bytes to `user`'s usage. */
  async adjustUsage(user: string, delta: number): Promise<void> {
    if (delta === 0) return;
    const now = await this.usage(user);
    this.#usage.set(user, Promise.resolve(Math.max(0, now + delta)));
  }

  /** Bytes reserved by `user`'s uploads in progress. */
  reserved(user: string): number {
    return this.#reserved.get(user) ?? 0;
  }

  /** Reserves bytes for an upload; returns the release function. */
  reserve(user: string, bytes: number): () => void {
    this.#reserved.set(user, this.reserved(user) + bytes);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const left = this.reserved(user) - bytes;
      if (left <= 0) this.#reserved.delete(user);
      else this.#reserved.set(user, left);
    };
  }
}

async function _du(dir: string): Promise<number> {
  let total = 0;
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isSymlink) continue;
    if (e.isDirectory) total += await _du(p);
    else if (e.isFile) {
      const info = await lstatIfPresent(p);
      total += info?.size ?? 0;
    }
  }
  return total;
}
