/**
 * The embedded chat backend (see `../backend/chat.ts`).
 *
 * @module
 */
import type { ChatBackend } from "../backend/chat.ts";
import type { ServerConfig } from "../config.ts";
import type { Logger } from "../log.ts";

/** Opens the embedded chat backend under `config.dataDir`. */
export function openEmbeddedChat(
  _config: ServerConfig,
  _log: Logger,
): Promise<ChatBackend & { close(): Promise<void> }> {
  return Promise.resolve({ close: () => Promise.resolve() });
}
