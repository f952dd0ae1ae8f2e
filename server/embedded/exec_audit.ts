/**
 * The embedded exec audit sink: the bounded, rotated audit log file
 * (`exec_audit_log.ts`) with refused requests rate-limited per user
 * (`exec_refusal_throttle.ts`). What the limit held back is counted and
 * written with the user's next logged refusal, or as one
 * `"refused":"suppressed"` line per user when the sink closes.
 *
 * @module
 */
import type { ExecAudit, ExecAuditEntry } from "../backend/exec.ts";
import { AuditLog } from "./exec_audit_log.ts";
import { RefusalThrottle } from "./exec_refusal_throttle.ts";

/** An {@linkcode ExecAudit} writing to a local file. */
export class EmbeddedExecAudit implements ExecAudit, AsyncDisposable {
  #log: AuditLog;
  #throttle: RefusalThrottle;
  #closing: Promise<void> | undefined;

  private constructor(log: AuditLog, throttle: RefusalThrottle) {
    this.#log = log;
    this.#throttle = throttle;
  }

  /** Opens (creating with mode 0600) the log at `path`. */
  static async open(
    path: string,
    options: { maxBytes: number; refusedPerMinute: number },
  ): Promise<EmbeddedExecAudit> {
    const log = await AuditLog.open(path, { maxBytes: options.maxBytes });
    return new EmbeddedExecAudit(log, new RefusalThrottle(options.refusedPerMinute));
  }

  run(entry: ExecAuditEntry): Promise<void> {
    return this.#log.write(entry);
  }

  refused(entry: ExecAuditEntry): Promise<void> {
    const suppressed = this.#throttle.take(entry.user);
    if (suppressed === null) return Promise.resolve();
    return this.#log.write(suppressed > 0 ? { ...entry, suppressed } : entry);
  }

  /** Writes what the rate limit held back and closes the file. Idempotent. */
  close(): Promise<void> {
    return this.#closing ??= (async () => {
      const start = new Date().toISOString();
      for (const [user, n] of this.#throttle.drain()) {
        await this.#log.write({
          start,
          user,
          addr: "",
          argv: [],
          cwd: null,
          durationMs: 0,
          code: null,
          signal: null,
          refused: "suppressed",
          suppressed: n,
        }).catch(() => {});
      }
      await this.#log.close();
    })();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
