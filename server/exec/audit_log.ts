/**
 * The exec audit log: one JSON object per line, appended to a file that only
 * the server's user may read (mode 0600, tightened if it was looser).
 *
 * Bounded on disk whatever users send: argv is cut to a byte budget (with
 * its full count and size recorded), and when the file would grow past
 * `maxBytes` it is renamed to `<path>.1` (replacing the older one) and a
 * new file is started, so the log never holds more than about twice
 * `maxBytes`. Rate-limiting refused requests is {@linkcode RefusalThrottle}'s job.
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
  /** The command as run (argv; shell lines as `[shell, "-c", LINE]`), cut to the byte budget. */
  argv: string[];
  /** Set when `argv` was cut: how many arguments and UTF-8 bytes it really had. */
  argvTotal?: { args: number; bytes: number };
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
  /** Refused requests of this user not logged (rate limit) since its previous entry. */
  suppressed?: number;
}

/** Byte budget for the argv of a refused request. */
export const REFUSED_ARGV_BYTES = 256;
/** Byte budget for the argv of a run. */
export const RUN_ARGV_BYTES = 4096;

/**
 * Cuts `argv` to at most `budget` UTF-8 bytes (the last kept argument may
 * be cut, marked with `…`); returns the kept part and, when anything was
 * cut, the real totals.
 */
export function compactArgv(
  argv: readonly string[],
  budget: number,
): { argv: string[]; argvTotal?: { args: number; bytes: number } } {
  const enc = new TextEncoder();
  let total = 0;
  for (const a of argv) total += enc.encode(a).byteLength;
  if (total <= budget) return { argv: [...argv] };
  const kept: string[] = [];
  let left = budget;
  for (const a of argv) {
    if (left <= 0) break;
    const bytes = enc.encode(a);
    if (bytes.byteLength <= left) {
      kept.push(a);
      left -= bytes.byteLength;
      continue;
    }
    // Cut on a character boundary.
    const cut = new TextDecoder().decode(bytes.subarray(0, left)).replace(/\uFFFD$/, "");
    kept.push(cut + "…");
    break;
  }
  return { argv: kept, argvTotal: { args: argv.length, bytes: total } };
}

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
  write(entry: AuditEntry): Promise<void> {
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
