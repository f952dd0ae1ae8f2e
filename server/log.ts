/**
 * A small structured logger writing one line per event to stderr.
 * Callers pass facts, never keys, proofs or message bodies.
 *
 * @module
 */

/** Log levels in increasing severity. */
export type LogLevel = "debug" | "info" | "warn" | "error";

const _ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** Writes log lines at or above a level. */
export class Logger {
  #min: number;
  #sink: (line: string) => void;

  constructor(options: { level?: LogLevel; sink?: (line: string) => void } = {}) {
    this.#min = _ORDER[options.level ?? "info"];
    this.#sink = options.sink ?? ((line) => console.error(line));
  }

  /** Logs `msg` with key/value `fields`. */
  log(level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
    if (_ORDER[level] < this.#min) return;
    const extra = Object.entries(fields).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(" ");
    this.#sink(`${new Date().toISOString()} ${level} ${msg}${extra ? " " + extra : ""}`);
  }

  debug(msg: string, fields?: Record<string, unknown>): void {
    this.log("debug", msg, fields);
  }
  info(msg: string, fields?: Record<string, unknown>): void {
    this.log("info", msg, fields);
  }
  warn(msg: string, fields?: Record<string, unknown>): void {
    this.log("warn", msg, fields);
  }
  error(msg: string, fields?: Record<string, unknown>): void {
    this.log("error", msg, fields);
  }
}
