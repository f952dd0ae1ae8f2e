/**
 * A file opened for reading on disk (see `FileReader` in
 * `../backend/files.ts`). The file is opened once, so a concurrent replace
 * (always a rename or a new link, never a write in place) cannot mix two
 * versions into one read. Reads are pulled, one 256 KiB chunk ahead of the
 * consumer, so memory stays bounded while the disk read overlaps sending.
 * One stream at a time per reader: streams share the file position.
 *
 * @module
 */
import type { FileEntry, FileReader } from "../backend/files.ts";
import { RequestError } from "../errors.ts";
import { ChecksumCache } from "./files_checksum_cache.ts";
import { hashFile, toEntry } from "./files_fs.ts";

const _CHUNK = 256 * 1024;

/** A reader over one open file. */
export class DiskFileReader implements FileReader {
  readonly entry: FileEntry;
  #file: Deno.FsFile;
  #st: Deno.FileInfo;
  #checksums: ChecksumCache;
  #closed = false;

  /** Wraps `file` (already checked to be the entry `lstat` saw), stat'ed as `st`. */
  constructor(name: string, file: Deno.FsFile, st: Deno.FileInfo, checksums: ChecksumCache) {
    this.#file = file;
    this.#st = st;
    this.#checksums = checksums;
    this.entry = toEntry(name, st);
  }

  /** Opens the reader: `file` is stat'ed once here. */
  static async of(name: string, file: Deno.FsFile, checksums: ChecksumCache) {
    return new DiskFileReader(name, file, await file.stat(), checksums);
  }

  get knownSha256(): string | undefined {
    // A file hashed before (same inode, size, mtime, ctime) is not read again.
    return this.#checksums.get(this.#st);
  }

  read(offset = 0, end = this.#st.size): ReadableStream<Uint8Array> {
    const file = this.#file;
    let pos = offset;
    let seeked = false;
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        if (pos >= end) {
          controller.close();
          return;
        }
        // One seek per stream: reads continue where the last one stopped.
        if (!seeked) {
          await file.seek(pos, Deno.SeekMode.Start);
          seeked = true;
        }
        const buf = new Uint8Array(Math.min(_CHUNK, end - pos));
        let filled = 0;
        while (filled < buf.byteLength) {
          const n = await file.read(buf.subarray(filled));
          if (n === null) throw new RequestError("internal", "the file shrank while reading");
          filled += n;
        }
        pos += filled;
        controller.enqueue(buf);
      },
      // One chunk read ahead, so the disk read overlaps hashing and sending.
    }, { highWaterMark: 1 });
  }

  async sha256(): Promise<string> {
    const known = this.knownSha256;
    if (known !== undefined) return known;
    const sha = (await hashFile(this.#file, this.#st.size)).digest("hex");
    await this.remember(sha);
    return sha;
  }

  async remember(sha256: string): Promise<void> {
    // Only if the file did not change while it was read.
    const after = await this.#file.stat();
    if (ChecksumCache.key(after) === ChecksumCache.key(this.#st)) {
      this.#checksums.set(this.#st, sha256);
    }
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#file.close();
    }
    return Promise.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
