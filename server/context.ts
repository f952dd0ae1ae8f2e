/**
 * Per-connection state handed to every request handler.
 *
 * A feature that keeps its own state per connection (a current directory,
 * the commands running) keeps it in a `ConnectionState<T>` from
 * `connection_state.ts` (or its own `WeakMap<ClientContext, T>`), created in
 * the feature's factory: typed, private to the feature, and dropped with
 * the connection.
 *
 * @module
 */
import type { Session } from "../protocol/session.ts";
import type { Account } from "./backend/accounts.ts";

/** One authenticated client connection. */
export interface ClientContext {
  /** Unique id of this connection within the server process. */
  readonly connId: number;
  /**
   * The user's current account (no secret). The server replaces it when the
   * account gains rights; removing the account, changing its key or lowering
   * its rights closes the session instead.
   */
  readonly user: Account;
  /** Remote address as `host:port`. */
  readonly addr: string;
  /** The session; use `emit` to push events to this client. */
  readonly session: Session;
}
