/**
 * The on-disk file store: per-user homes under `<data>/files/home/<user>/`,
 * uploads in progress under `<data>/files/.parley-tmp/`, share records under
 * `<data>/files/shares/`. Every path a client names is resolved here, one
 * component at a time with `lstat`, so a symlink anywhere in the store is
 * refused rather than followed (Deno has no `O_NOFOLLOW`; after opening, the
 * file's device and inode are compared with the `lstat` result to catch a
 * swap in between). Also holds the per-user quota ledger and the checksum
 * cache.
 *
 * @module
 */
import { join } from "@std/path";
import { RequestError } from "../errors.ts";
import { checkNewPath, pathBytes, shortPath } from "../files/path_limits.ts";
import { displayPath, MAX_DEPTH, MAX_PATH_BYTES } from "../files/remote_path.ts";
import { ChecksumCache } from "./files_checksum_cache.ts";
import { lstatIfPresent } from "./files_fs.ts";
import { type Account, checkEntries, type HomeSize, Ledger } from "./files_ledger.ts";

/** An entry resolved inside a home. */
export interface Resolved {
  /** Absolute path on the server. */
  abs: string;
  /** Components under the home. */
  parts: string[];
  /** lstat of the entry, or undefined when it does not exist. */
  info: Deno.FileInfo | undefined;
}

/** The kernel's PATH_MAX (bytes, NUL included): no absolute path the store uses may reach it. */
const _PATH_MAX = 4096;

const _encoder = new TextEncoder();

/** The disk store rooted at `<data>/files`. */
export class DiskStore {
  /** `<data>/files`. */
  readonly root: string;
  /** Where uploads in progress live. */
  readonly tmpDir: string;
  /** Where share records live. */
  readonly sharesDir: string;
  /** SHA-256 of files already hashed, so repeated downloads read a file once. */
  readonly checksums = new ChecksumCache();
  /** Per-user usage; every change to a home runs inside `ledger.run`. */
  readonly ledger: Ledger;
  #homes: string;

  constructor(dataDir: string) {
    this.root = join(dataDir, "files");
    this.#homes = join(this.root, "home");
    this.tmpDir = join(this.root, ".parley-tmp");
    this.sharesDir = join(this.root, "shares");
    this.ledger = new Ledger(async (user) => _du(await this.home(user)));
  }

  /**
   * Longest path (bytes of the components joined by `/`) allowed under
   * `user`'s home: the protocol's limit, lowered so that the absolute path on
   * the server stays under the kernel's PATH_MAX whatever the data dir.
   */
  maxPathBytes(user: string): number {
    const home = _encoder.encode(join(this.#homes, user)).byteLength;
    return Math.min(MAX_PATH_BYTES, _PATH_MAX - 2 - home);
  }

  /** Refuses a path about to be created that would break the depth or length limit. */
  checkNewPath(user: string, parts: readonly string[]): void {
    checkNewPath(parts, this.maxPathBytes(user));
  }

  /**
   * Checks that moving the entry at `srcAbs` (a directory when `isDir`) from
   * `fromParts` to `toParts` keeps every path in the moved tree within the
   * depth and length limits. A move that makes no path deeper or longer is
   * not walked; otherwise the tree is walked only as deep as the limit.
   */
  async checkMove(
    user: string,
    srcAbs: string,
    isDir: boolean,
    fromParts: readonly string[],
    toParts: readonly string[],
  ): Promise<void> {
    this.checkNewPath(user, toParts);
    if (!isDir) return;
    const toBytes = pathBytes(toParts);
    const fromBytes = pathBytes(fromParts);
    if (toParts.length <= fromParts.length && toBytes <= fromBytes) return;
    const maxBytes = this.maxPathBytes(user);
    const refuse = (rel: readonly string[], why: string) => {
      throw new RequestError(
        "bad_request",
        `cannot move ${shortPath(fromParts)} to ${shortPath(toParts)}: ` +
          `${shortPath([...toParts, ...rel])} would be ${why}`,
      );
    };
    const walk = async (dir: string, relBytes: number, rel: string[]) => {
      for await (const e of Deno.readDir(dir)) {
        const bytes = relBytes + 1 + _encoder.encode(e.name).byteLength;
        const here = [...rel, e.name];
        if (toParts.length + here.length > MAX_DEPTH) {
          refuse(here, `deeper than ${MAX_DEPTH} levels`);
        }
        if (toBytes + bytes > maxBytes) refuse(here, `longer than ${maxBytes} bytes`);
        if (e.isDirectory) await walk(join(dir, e.name), bytes, here);
      }
    };
    await walk(srcAbs, 0, []);
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
    const max = this.maxPathBytes(user);
    if (_encoder.encode(parts.join("/")).byteLength > max) {
      throw new RequestError(
        "bad_request",
        `the path is longer than ${max} bytes (the server's limit for this storage)`,
      );
    }
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

  /**
   * Creates missing directories along `parts`, never following symlinks;
   * inside the user's ledger turn, each counted in `acct` (at most
   * `maxEntries`).
   */
  async mkdirs(
    user: string,
    parts: readonly string[],
    acct: Account,
    maxEntries: number,
  ): Promise<void> {
    for (let i = 1; i <= parts.length; i++) {
      const r = await this.resolve(user, parts.slice(0, i));
      if (r.info) {
        if (!r.info.isDirectory) {
          throw new RequestError("bad_request", `${displayPath(r.parts)} is not a directory`);
        }
        continue;
      }
      checkEntries(acct, 1, maxEntries);
      try {
        await Deno.mkdir(r.abs, { mode: 0o755 });
        acct.entries++;
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      }
    }
  }
}

/** Bytes of regular files and number of entries under `dir`. */
async function _du(dir: string, total: HomeSize = { bytes: 0, entries: 0 }): Promise<HomeSize> {
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    total.entries++;
    // Symlinks are never followed; a tree left deeper than PATH_MAX (by an older
    // version) cannot be reached by any operation: count what can be.
    if (e.isSymlink || _encoder.encode(p).byteLength >= _PATH_MAX - 1) continue;
    if (e.isDirectory) await _du(p, total);
    else if (e.isFile) {
      const info = await lstatIfPresent(p);
      total.bytes += info?.size ?? 0;
    }
  }
  return total;
}
