/**
 * The embedded files backend (see `../backend/files.ts`).
 *
 * @module
 */
import type { FilesBackend } from "../backend/files.ts";
import type { ServerConfig } from "../config.ts";
import type { Logger } from "../log.ts";

/** Opens the embedded files backend under `config.dataDir`. */
export function openEmbeddedFiles(
  _config: ServerConfig,
  _log: Logger,
): Promise<FilesBackend & { close(): Promise<void> }> {
  return Promise.resolve({ close: () => Promise.resolve() });
}
