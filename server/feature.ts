/**
 * The shape of a server feature (chat, files, exec, …): it registers request
 * operations, may refuse users, and may react to logins and logouts.
 *
 * @module
 */
import type { ClientContext } from "./context.ts";
import type { Logger } from "./log.ts";
import type { OpRegistry } from "./registry.ts";
import type { Backend } from "./backend/mod.ts";
import type { Account } from "./backend/accounts.ts";

/** Read-only view of the connected clients, for features that fan out. */
export interface ClientDirectory {
  /** All authenticated connections. */
  all(): Iterable<ClientContext>;
  /** Connections of one user (a user may be connected several times). */
  byUser(name: string): ClientContext[];
}

/** What a feature gets when it is created. */
export interface FeatureDeps {
  /** Storage and delivery: the only way a feature reaches stored data. */
  backend: Backend;
  /** This feature's raw config section (validate it). */
  config: unknown;
  /** Connected clients. */
  clients: ClientDirectory;
  /** Logger; never pass secrets. */
  log: Logger;
}

/** A server feature. */
export interface Feature {
  /** Short name, e.g. `chat`. */
  readonly name: string;
  /** Adds this feature's operations. */
  register(registry: OpRegistry): void;
  /**
   * Refuses `user` by throwing a `ProtocolError` (e.g. `forbidden`
   * for a ban). Checked after the login proof, before the session is
   * announced to any feature, and again before every request, so a refused
   * user's requests are never run. Must be quick and synchronous.
   */
  admit?(user: Account): void;
  /** Called after a client authenticated, before its first request is handled. */
  onLogin?(ctx: ClientContext): void | Promise<void>;
  /** Called once a client's session has closed. */
  onLogout?(ctx: ClientContext): void | Promise<void>;
  /** Releases resources at server shutdown. */
  close?(): void | Promise<void>;
}
