/**
 * An append-only JSON-lines file. Appends are batched (one write per batch)
 * and serialized with compactions. Loading tolerates a crash: a torn last
 * line (no trailing newline) is cut off the file, and lines that do not parse
 * are skipped, so a damaged journal never stops the server from starting.
 * Compaction writes a new file beside the old one and renames it over.
 *
 * @module
 */

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

/** One journal file. */
export class Journal<T> {
  readonly path: string;
  #file: Deno.FsFile | undefined;
  #pending: string[] = [];
  #flushing: Promise<void> | undefined;
  #tail: Promise<void> = Promise.resolve();
  #lines: number;
  #closed = false;

  private constructor(path: string, lines: number) {
    this.path = path;
    this.#lines = lines;
  }

  /**
   * Reads `path` (missing = empty). `parse` checks one decoded line and
   * returns the entry, or undefined to skip it.
   */
  static async open<T>(
    path: string,
    parse: (v: unknown) => T | undefined,
  ): Promise<JournalLoad<T>> {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      bytes = new Uint8Array(0);
    }
    let end = bytes.lastIndexOf(0x0a) + 1;
    let truncated = 0;
    if (end < bytes.byteLength) {
      truncated = bytes.byteLength - end;
      await Deno.truncate(path, end);
    }
    const text = new TextDecoder().decode(bytes.subarray(0, end));
    end = 0;
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
    return { journal: new Journal<T>(path, entries.length + skipped), entries, skipped, truncated };
  }

  /** A journal for a file that does not exist yet (created on first append). */
  static create<T>(path: string): Journal<T> {
    return new Journal<T>(path, 0);
  }

  /** Lines in the file, including ones not yet flushed. */
  get lines(): number {
    return this.#lines;
  }

  /** Appends an entry; resolves once it has been written. */
  append(entry: T): Promise<void> {
    if (this.#closed) return Promise.reject(new Error(`journal ${this.path} is closed`));
    this.#pending.push(JSON.stringify(entry) + "\n");
    this.#lines++;
    this.#flushing ??= this.#enqueue(() => this.#flush());
    return this.#flushing;
  }

  /**
   * Replaces the file's content with `entries()` (evaluated when the
   * rewrite runs, so it includes every append made before then).
   */
  rewrite(entries: () => T[]): Promise<void> {
    return this.#enqueue(async () => {
      this.#pending = [];
      const list = entries();
      const tmp = `${this.path}.compact.tmp`;
      const f = await Deno.open(tmp, { write: true, create: true, truncate: true, mode: 0o600 });
      try {
        await _writeAll(f, _ENC.encode(list.map((e) => JSON.stringify(e) + "\n").join("")));
        await f.sync();
      } finally {
        f.close();
      }
      this.#file?.close();
      this.#file = undefined;
      await Deno.rename(tmp, this.path);
      // entries appended while this ran are still pending and follow in the next flush
      this.#lines = list.length + this.#pending.length;
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
    this.#tail = p.catch(() => {});
    return p;
  }

  async #flush(): Promise<void> {
    this.#flushing = undefined;
    const batch = this.#pending;
    this.#pending = [];
    if (batch.length === 0) return;
    this.#file ??= await Deno.open(this.path, { append: true, create: true, mode: 0o600 });
    await _writeAll(this.#file, _ENC.encode(batch.join("")));
  }
}

async function _writeAll(f: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.byteLength) off += await f.write(bytes.subarray(off));
}
