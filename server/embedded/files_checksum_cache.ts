/**
 * Remembers the SHA-256 of files the server has already hashed, keyed by
 * device, inode, size, mtime and ctime, so a file downloaded again is read
 * once (for the frame MACs) instead of twice. Any change to a file sets its
 * ctime to the current time (and an upload replaces the inode). The runtime
 * reports ctime in whole seconds, so only files whose ctime is at least two
 * seconds old are remembered: a later change then always lands in a later
 * second and misses the cache. The client verifies every download anyway.
 * Bounded in size.
 *
 * @module
 */

/** Default number of files remembered. */
export const DEFAULT_CHECKSUM_ENTRIES = 10_000;

/** ctime has one-second resolution: a file is "still" once its ctime is this old. */
const _SETTLED_MS = 2000;

/** An in-memory map from file identity to SHA-256. */
export class ChecksumCache {
  #entries = new Map<string, string>();
  #max: number;

  constructor(maxEntries = DEFAULT_CHECKSUM_ENTRIES) {
    this.#max = maxEntries;
  }

  /** The identity of a file as stat reports it, or undefined when it can't be told apart. */
  static key(info: Deno.FileInfo): string | undefined {
    if (info.ino === null || info.mtime === null || info.ctime === null) return undefined;
    return `${info.dev}:${info.ino}:${info.size}:${info.mtime.getTime()}:${info.ctime.getTime()}`;
  }

  /** The remembered SHA-256 for `info`, if any. */
  get(info: Deno.FileInfo): string | undefined {
    const key = ChecksumCache.key(info);
    return key === undefined ? undefined : this.#entries.get(key);
  }

  /** Remembers `sha256` for `info` if the file has been still long enough; drops the oldest entry when full. */
  set(info: Deno.FileInfo, sha256: string, now = Date.now()): void {
    const key = ChecksumCache.key(info);
    if (key === undefined || now - info.ctime!.getTime() < _SETTLED_MS) return;
    this.#entries.delete(key);
    if (this.#entries.size >= this.#max) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    this.#entries.set(key, sha256);
  }
}
