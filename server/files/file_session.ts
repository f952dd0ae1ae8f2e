/**
 * The files feature's per-connection state: the current remote directory and
 * the number of transfers running. Held by the feature, keyed by connection,
 * and gone with it.
 *
 * @module
 */
import { ConnectionState } from "../connection_state.ts";
import type { ClientContext } from "../context.ts";
import { RequestError } from "../errors.ts";

/** One connection's files state. */
export interface FileSession {
  /** Current directory (components under the home). */
  cwd: string[];
  /** Uploads and downloads running now. */
  transfers: number;
}

/** Files state of every connection. */
export class FileSessions {
  #byConn = new ConnectionState<FileSession>(() => ({ cwd: [], transfers: 0 }));
  #maxTransfers: number;

  /** `maxTransfers`: uploads and downloads one connection may run at once. */
  constructor(maxTransfers: number) {
    this.#maxTransfers = maxTransfers;
  }

  /** The state of `ctx` (created on first use). */
  of(ctx: ClientContext): FileSession {
    return this.#byConn.get(ctx);
  }

  /** Runs `fn` as one of `ctx`'s transfers; `busy` when it already runs the most allowed. */
  async transfer<T>(ctx: ClientContext, fn: () => Promise<T>): Promise<T> {
    const s = this.of(ctx);
    if (s.transfers >= this.#maxTransfers) {
      throw new RequestError(
        "busy",
        `at most ${this.#maxTransfers} transfers at once per connection`,
      );
    }
    s.transfers++;
    try {
      return await fn();
    } finally {
      s.transfers--;
    }
  }
}
