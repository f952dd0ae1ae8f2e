/**
 * Per-connection bookkeeping for exec: the stderr streams waiting for their
 * `exec.run` (paired by the client-chosen token) and the runs in progress.
 *
 * @module
 */
import type { MuxStream } from "../../protocol/mux_stream.ts";
import { RequestError } from "../errors.ts";
import type { ExecRun } from "../backend/exec.ts";

/** A stderr stream opened by `exec.stderr`, waiting for or used by a run. */
export interface StderrSlot {
  stream: MuxStream;
  /** Set once a run took the slot. */
  claimed: boolean;
  /** Ends the `exec.stderr` request with this result. */
  resolve(result: { bytes: number }): void;
  /** Ends the `exec.stderr` request with this error. */
  reject(error: Error): void;
}

/** How long an unclaimed stderr stream, or a run waiting for one, waits. */
export const PAIRING_TIMEOUT_MS = 10_000;

/** Exec state of one connection. */
export class RunTable {
  /** Runs in progress by token. */
  readonly runs: Map<string, ExecRun> = new Map();
  #slots = new Map<string, StderrSlot>();
  #waiters = new Map<string, { resolve(slot: StderrSlot): void; reject(e: Error): void }>();
  #closed = false;

  /** Number of stderr streams not yet claimed. */
  get waiting(): number {
    return this.#slots.size;
  }

  /** Whether `token` names a waiting stream or a running command. */
  has(token: string): boolean {
    return this.#slots.has(token) || this.runs.has(token);
  }

  /**
   * Registers a stderr stream; the returned promise is the `exec.stderr`
   * reply. It fails if no run claims the stream in time.
   */
  offer(token: string, stream: MuxStream): Promise<{ bytes: number }> {
    if (this.#closed) return Promise.reject(new RequestError("closed", "connection closing"));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (slot.claimed) return;
        this.#slots.delete(token);
        reject(
          new RequestError(
            "timeout",
            `no exec.run with this token arrived within ${PAIRING_TIMEOUT_MS / 1000} s`,
          ),
        );
      }, PAIRING_TIMEOUT_MS);
      const slot: StderrSlot = {
        stream,
        claimed: false,
        resolve: (r) => {
          clearTimeout(timer);
          this.#slots.delete(token);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          this.#slots.delete(token);
          reject(e);
        },
      };
      this.#slots.set(token, slot);
      const waiter = this.#waiters.get(token);
      if (waiter) {
        this.#waiters.delete(token);
        waiter.resolve(slot);
      }
    });
  }

  /** The stderr slot for `token`, waiting for it to be offered if needed; claims it. */
  async claim(token: string): Promise<StderrSlot> {
    let slot = this.#slots.get(token);
    if (!slot) {
      if (this.#waiters.has(token)) {
        throw new RequestError("bad_request", "another exec.run is using this token");
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      slot = await new Promise<StderrSlot>((resolve, reject) => {
        this.#waiters.set(token, { resolve, reject });
        timer = setTimeout(() => {
          this.#waiters.delete(token);
          reject(
            new RequestError(
              "bad_request",
              "exec.run needs its exec.stderr stream (same token) opened first",
            ),
          );
        }, PAIRING_TIMEOUT_MS);
      }).finally(() => clearTimeout(timer));
    }
    if (slot.claimed) throw new RequestError("bad_request", "this token is already in use");
    slot.claimed = true;
    return slot;
  }

  /** Fails the unclaimed stderr stream for `token`, if any. */
  fail(token: string, error: Error): void {
    const slot = this.#slots.get(token);
    if (slot && !slot.claimed) slot.reject(error);
  }

  /** Fails every waiting stream; later offers are refused. */
  close(): void {
    this.#closed = true;
    const err = new RequestError("closed", "connection closing");
    for (const slot of [...this.#slots.values()]) if (!slot.claimed) slot.reject(err);
    for (const w of this.#waiters.values()) w.reject(err);
    this.#waiters.clear();
  }
}
