/**
 * The embedded exec backend (see `../backend/exec.ts`).
 *
 * @module
 */
import type { ExecBackend } from "../backend/exec.ts";
import type { ServerConfig } from "../config.ts";
import type { Logger } from "../log.ts";

/** Opens the embedded exec backend under `config.dataDir`. */
export function openEmbeddedExec(
  _config: ServerConfig,
  _log: Logger,
): Promise<ExecBackend & { close(): Promise<void> }> {
  return Promise.resolve({ close: () => Promise.resolve() });
}
