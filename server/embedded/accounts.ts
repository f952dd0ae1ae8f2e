/**
 * The embedded accounts backend (see `../backend/accounts.ts`).
 *
 * @module
 */
import type { Accounts } from "../backend/accounts.ts";
import type { ServerConfig } from "../config.ts";
import type { Logger } from "../log.ts";

/** Opens the embedded accounts backend under `config.dataDir`. */
export function openEmbeddedAccounts(
  _config: ServerConfig,
  _log: Logger,
): Promise<Accounts & { close(): Promise<void> }> {
  return Promise.resolve({ close: () => Promise.resolve() });
}
