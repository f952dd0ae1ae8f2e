/**
 * The embedded exec audit log file: one JSON object per line, appended to a
 * file that only the server's user may read (mode 0600, tightened if it was
 * looser).
 *
 * Bounded on disk whatever users send: when the file would grow past
 * `maxBytes` it is renamed to `<path>.1` (replacing the older one) and a
 * new file is started, so the log never holds more than about twice
 * `maxBytes`. Cutting argv to a byte budget is the feature's job
 * (`server/exec/audit_argv.ts`); rate-limiting refused requests is
 * `exec_refusal_throttle.ts`'s, and `exec_audit.ts` puts them together.
 *
 * @module
 */
import type { ExecAuditEntry } from "../backend/exec.ts";

/** An append-only, size-rotated JSON-lines file with mode 0600. */
export class AuditLog {
  readonly path: string;
  readonly maxBytes: number;
  #file: Deno.FsFile;
  #size: number;
  #queue: Promise<void> = Promise.resolve();
  #closed = false;
  #enc = new TextEncoder();

  private constructor(path: string, file: Deno.FsFile, size: number, maxBytes: number) {
    this.path = path;
    this.#file = file;
    this.#size = size;
    this.maxBytes = maxBytes;
  }

  /** Opens (creating with mode 0600) the log at `path`; rotates past `maxBytes` (default 16 MiB). */
  static async open(path: string, options: { maxBytes?: number } = {}): Promise<AuditLog> {
    const { file, size } = await _openLog(path);
    return new AuditLog(path, file, size, options.maxBytes ?? 16 * 1024 * 1024);
  }

  /** Appends one entry; entries are written in call order. */
  write(entry: ExecAuditEntry): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const bytes = this.#enc.encode(JSON.stringify(entry) + "\n");
    const next = this.#queue.then(async () => {
      if (this.#size > 0 && this.#size + bytes.byteLength > this.maxBytes) await this.#rotate();
      let off = 0;
      while (off < bytes.byteLength) off += await this.#file.write(bytes.subarray(off));
      this.#size += bytes.byteLength;
    });
    this.#queue = next.catch(() => {});
    return next;
  }

  async #rotate(): Promise<void> {
    this.#file.close();
    try {
      await Deno.rename(this.path, `${this.path}.1`);
    } finally {
      const { file, size } = await _openLog(this.path);
      this.#file = file;
      this.#size = size;
    }
  }

  /** Waits for queued entries and closes the file. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue;
    this.#file.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

async function _openLog(path: string): Promise<{ file: Deno.FsFile; size: number }> {
  const file = await Deno.open(path, { append: true, create: true, mode: 0o600 });
  try {
    const st = await file.stat();
    if (st.mode !== null && (st.mode & 0o077) !== 0) await Deno.chmod(path, 0o600);
    return { file, size: st.size };
  } catch (e) {
    file.close();
    throw e;
  }
}
