/**
 * An append-only JSON-lines file. Appends are group-committed: those made
 * while a write is in progress are batched into the next single write and
 * `fsync`, and an append's promise resolves only once its line is durable
 * (a new or compacted file's directory is synced too, so its name is).
 *
 * Faults never leave a torn line behind a later entry: the journal tracks
 * the offset of the last complete line, and when a write or sync fails (a
 * full disk) it cuts the file back to that offset before reporting the
 * error. If even the cut fails, the file is closed and the next append
 * re-opens it and cuts it first, so nothing is ever appended after a torn
 * tail. Loading tolerates a crash: a torn last line (no trailing newline) is
 * cut off, and lines that do not parse are skipped, so a damaged journal
 * never stops the server from starting. Compaction writes a new file beside
 * the old one and renames it over.
 *
 * Loading reads a file whole and splits it rather than streaming it through
 * `TextLineStream`: a journal is bounded (twice its history limit), and with
 * many small journals (one per room and per user) the stream's per-file setup
 * made start-up about three times slower (500 files of 100 lines: 45–80 ms
 * read whole, 155–350 ms streamed).
 *
 * @module
 */

import { dirname } from "@std/path";
import { endOfTurn } from "../end_of_turn.ts";

const _ENC = new TextEncoder();

/** What {@linkcode Journal.open} found on disk. */
export interface JournalLoad<T> {
  journal: Journal<T>;
  /** Entries in file order. */
  entries: T[];
  /** Lines skipped because they did not parse (or failed `parse`). */
  skipped: number;
  /** Bytes cut off the end (a torn last line). */
  truncated: number;
}

/** Options for a journal. */
export interface JournalOptions<T> {
  /**
   * Called synchronously with the entries of each batch once they are
   * durable, in append order, before any append promise of the batch
   * resolves (and before a later compaction reads its entries).
   */
  onCommit?: (entries: T[]) => void;
}

interface _Pending<T> {
  entry: T;
  line: string;
}

/** One journal file. */
export class Journal<T> {
  readonly path: string;
  #file: Deno.FsFile | undefined;
  /** Offset just past the last complete line; undefined until the file is opened. */
  #good: number | undefined;
  #pending: _Pending<T>[] = [];
  #flushing: Promise<void> | undefined;
  #tail: Promise<void> = Promise.resolve();
  #lines: number;
  #closed = false;
  /** The file was created and its directory not yet synced. */
  #unsyncedName = false;
  #onCommit: ((entries: T[]) => void) | undefined;

  private constructor(path: string, lines: number, options: JournalOptions<T>) {
    this.path = path;
    this.#lines = lines;
    this.#onCommit = options.onCommit;
  }

  /**
   * Reads `path` (missing = empty). `parse` checks one decoded line and
   * returns the entry, or undefined to skip it.
   */
  static async open<T>(
    path: string,
    parse: (v: unknown) => T | undefined,
    options: JournalOptions<T> = {},
  ): Promise<JournalLoad<T>> {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      bytes = new Uint8Array(0);
    }
    const end = bytes.lastIndexOf(0x0a) + 1;
    let truncated = 0;
    if (end < bytes.byteLength) {
      truncated = bytes.byteLength - end;
      await Deno.truncate(path, end);
    }
    const text = new TextDecoder().decode(bytes.subarray(0, end));
    const entries: T[] = [];
    let skipped = 0;
    for (const line of text.split("\n")) {
      if (line === "") continue;
      let entry: T | undefined;
      try {
        entry = parse(JSON.parse(line));
      } catch {
        entry = undefined;
      }
      if (entry === undefined) skipped++;
      else entries.push(entry);
    }
    const journal = new Journal<T>(path, entries.length + skipped, options);
    return { journal, entries, skipped, truncated };
  }

  /** A journal for a file that does not exist yet (created on first append). */
  static create<T>(path: string, options: JournalOptions<T> = {}): Journal<T> {
    return new Journal<T>(path, 0, options);
  }

  /** Lines in the file, including ones not yet flushed. */
  get lines(): number {
    return this.#lines;
  }

  /** Appends an entry; resolves once it is durable, rejects if it was not stored. */
  append(entry: T): Promise<void> {
    if (this.#closed) return Promise.reject(new Error(`journal ${this.path} is closed`));
    this.#pending.push({ entry, line: JSON.stringify(entry) + "\n" });
    this.#lines++;
    // The flush starts after this turn of the event loop, so every append made
    // in it (a batch of sends read at once) shares one write and one sync.
    this.#flushing ??= this.#enqueue(() => endOfTurn().then(() => this.#flush()));
    return this.#flushing;
  }

  /**
   * Replaces the file's content with `entries()` (evaluated when the
   * rewrite runs, so it includes every batch committed before then; batches
   * still pending follow in their own flush). On failure the old file stays
   * as it was and the temporary file is removed.
   */
  rewrite(entries: () => T[]): Promise<void> {
    return this.#enqueue(async () => {
      const list = entries();
      const bytes = _ENC.encode(list.map((e) => JSON.stringify(e) + "\n").join(""));
      const tmp = `${this.path}.compact.tmp`;
      try {
        const f = await Deno.open(tmp, { write: true, create: true, truncate: true, mode: 0o600 });
        try {
          await _writeAll(f, bytes);
          await f.sync();
        } finally {
          f.close();
        }
        await Deno.rename(tmp, this.path);
      } catch (e) {
        try {
          await Deno.remove(tmp);
        } catch {
          // the write's error is the one to report; the next compaction truncates the file anyway
        }
        throw e;
      }
      // the old file is gone: appends go to the new one from here on, whatever happens next
      this.#file?.close();
      this.#file = undefined;
      this.#good = bytes.byteLength;
      this.#lines = list.length + this.#pending.length;
      await _syncDir(this.path);
    });
  }

  /** Waits for queued writes and closes the file. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#tail;
    this.#file?.close();
    this.#file = undefined;
  }

  #enqueue(fn: () => Promise<void>): Promise<void> {
    const p = this.#tail.then(fn);
    // the queue goes on after a failure; the failure itself reaches the caller through `p`
    this.#tail = p.then(() => {}, () => {});
    return p;
  }

  async #open(): Promise<Deno.FsFile> {
    if (this.#file) return this.#file;
    let f: Deno.FsFile;
    try {
      f = await Deno.open(this.path, { read: true, append: true });
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      f = await Deno.open(this.path, { read: true, append: true, create: true, mode: 0o600 });
      this.#unsyncedName = true;
    }
    try {
      // a new file's name must be durable too, or its synced lines vanish with it
      if (this.#unsyncedName) await _syncDir(this.path);
      this.#unsyncedName = false;
      const size = (await f.stat()).size;
      let good = this.#good;
      if (good === undefined || size < good) good = size > 0 ? await _lineEnd(f, size) : 0;
      // after a failed cut (or a torn line left by a crash): never append behind a torn line
      if (size > good) await f.truncate(good);
      this.#good = good;
    } catch (e) {
      f.close();
      throw e;
    }
    this.#file = f;
    return f;
  }

  async #flush(): Promise<void> {
    this.#flushing = undefined;
    const batch = this.#pending;
    this.#pending = [];
    if (batch.length === 0) return;
    try {
      const f = await this.#open();
      const bytes = _ENC.encode(batch.map((p) => p.line).join(""));
      try {
        await _writeAll(f, bytes);
        await f.syncData();
      } catch (e) {
        await this.#cut();
        throw e;
      }
      this.#good! += bytes.byteLength;
    } catch (e) {
      this.#lines -= batch.length;
      throw e;
    }
    this.#onCommit?.(batch.map((p) => p.entry));
  }

  /** Cuts a partly written batch off; if that fails, closes so the next open cuts it. */
  async #cut(): Promise<void> {
    try {
      await this.#file!.truncate(this.#good!);
    } catch {
      // the next #open() truncates to #good before anything is appended
      this.#file?.close();
      this.#file = undefined;
    }
  }
}

/** The offset just past the last newline of an existing file (its end if it ends in one). */
async function _lineEnd(f: Deno.FsFile, size: number): Promise<number> {
  const buf = new Uint8Array(Math.min(size, 64 * 1024));
  let end = size;
  while (end > 0) {
    const start = Math.max(0, end - buf.byteLength);
    const chunk = buf.subarray(0, end - start);
    await f.seek(start, Deno.SeekMode.Start);
    let got = 0;
    while (got < chunk.byteLength) {
      const n = await f.read(chunk.subarray(got));
      if (n === null) break;
      got += n;
    }
    const i = chunk.subarray(0, got).lastIndexOf(0x0a);
    if (i >= 0) return start + i + 1;
    end = start;
  }
  return 0;
}

/** Syncs the directory holding `path`, so a created or renamed name survives a power loss. */
async function _syncDir(path: string): Promise<void> {
  const d = await Deno.open(dirname(path), { read: true });
  try {
    await d.sync();
  } finally {
    d.close();
  }
}

async function _writeAll(f: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.byteLength) off += await f.write(bytes.subarray(off));
}
