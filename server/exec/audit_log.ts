/**
 * The exec audit log: one JSON object per line, appended to a file that only
 * the server's user may read (mode 0600, tightened if it was looser).
 *
 * @module
 */

/** One audited run (or refused attempt). */
export interface AuditEntry {
  /** Start time, ISO 8601. */
  start: string;
  user: string;
  /** Client address `host:port`. */
  addr: string;
  /** The command as run (argv; shell lines as `[shell, "-c", LINE]`). */
  argv: string[];
  /** Working directory (absolute, on the server). */
  cwd: string | null;
  /** Run time in ms (0 when refused). */
  durationMs: number;
  /** Exit code (128+n when killed by signal n); null when it never ran. */
  code: number | null;
  /** Terminating signal, if any. */
  signal: string | null;
  /** Whether the timeout killed it. */
  timedOut?: boolean;
  /** Why it ended early: `timeout`, `disconnect`, `shutdown`, `client`. */
  killed?: string;
  /** Error code when the run was refused or failed to start. */
  refused?: string;
}

/** An append-only JSON-lines file with mode 0600. */
export class AuditLog {
  readonly path: string;
  #file: Deno.FsFile;
  #queue: Promise<void> = Promise.resolve();
  #closed = false;
  #enc = new TextEncoder();

  private constructor(path: string, file: Deno.FsFile) {
    this.path = path;
    this.#file = file;
  }

  /** Opens (creating with mode 0600) the log at `path`. */
  static async open(path: string): Promise<AuditLog> {
    const file = await Deno.open(path, { append: true, create: true, mode: 0o600 });
    try {
      const st = await file.stat();
      if (st.mode !== null && (st.mode & 0o077) !== 0) await Deno.chmod(path, 0o600);
    } catch (e) {
      file.close();
      throw e;
    }
    return new AuditLog(path, file);
  }

  /** Appends one entry; entries are written in call order. */
  write(entry: AuditEntry): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const bytes = this.#enc.encode(JSON.stringify(entry) + "\n");
    const next = this.#queue.then(async () => {
      let off = 0;
      while (off < bytes.byteLength) off += await this.#file.write(bytes.subarray(off));
    });
    this.#queue = next.catch(() => {});
    return next;
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
