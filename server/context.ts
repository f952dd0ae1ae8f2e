/**
 * Per-connection state handed to every request handler.
 *
 * @module
 */
import type { Session } from "../protocol/session.ts";
import type { UserRecord } from "./users.ts";

/** One authenticated client connection. */
export interface ClientContext {
  /** Unique id of this connection within the server process. */
  readonly connId: number;
  /**
   * The user's current account record. The server replaces it when the
   * account gains rights; removing the account, changing its key or lowering
   * its rights closes the session instead.
   */
  readonly user: UserRecord;
  /** Remote address as `host:port`. */
  readonly addr: string;
  /** The session; use `emit` to push events to this client. */
  readonly session: Session;
  /** Per-feature connection state (e.g. the file feature's current directory). */
  readonly state: Map<string, unknown>;
}
