/**
 * Small file-system helpers of the embedded files backend: lstat results as
 * the seam's entries, lstat/remove that tolerate a missing path, hashing a
 * prefix of an open file in bounded chunks, and flushing a directory entry.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { EntryType, FileEntry } from "../backend/files.ts";
import { RequestError } from "../errors.ts";

const _HASH_CHUNK = 256 * 1024;

/** Maps an lstat result to an entry type (symlinks and devices are `other`). */
export function entryType(info: Deno.FileInfo): EntryType {
  if (info.isSymlink) return "other";
  if (info.isFile) return "file";
  if (info.isDirectory) return "dir";
  return "other";
}

/** The seam's view of an lstat result named `name`. */
export function toEntry(name: string, info: Deno.FileInfo): FileEntry {
  return {
    name,
    type: entryType(info),
    size: info.isFile ? info.size : 0,
    mtime: info.mtime?.getTime() ?? 0,
    version: versionOf(info),
  };
}

/** A file's identity on disk: device and inode. */
export function versionOf(info: Deno.FileInfo): string {
  return `${info.dev}:${info.ino ?? ""}`;
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

/** Removes a file, no error when it is gone. */
export async function removeIfPresent(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/** Flushes a directory entry change to disk (best effort: not every FS allows it). */
export async function syncDir(dir: string): Promise<void> {
  let f: Deno.FsFile | undefined;
  try {
    f = await Deno.open(dir, { read: true });
    await f.sync();
  } catch {
    // Some file systems refuse fsync on a directory; the data itself is synced.
  } finally {
    f?.close();
  }
}
