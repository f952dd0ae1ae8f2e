/**
 * The embedded backend: one node, everything under the data dir. It is the
 * only code that touches the data dir.
 *
 * @module
 */
import type { Backend } from "../backend/mod.ts";
import { BackendParts, type Closable } from "../backend/parts.ts";
import type { ServerConfig } from "../config.ts";
import type { Logger } from "../log.ts";
import { openEmbeddedAccounts } from "./accounts.ts";
import { lockDataDir } from "./data_dir_lock.ts";
import { openEmbeddedChat } from "./chat.ts";
import { openEmbeddedExec } from "./exec.ts";
import { openEmbeddedFiles } from "./files.ts";

/**
 * Opens (creating as needed) the embedded backend for `config.dataDir`; throws
 * `DataDirBusyError` (`./data_dir_lock.ts`) when another process holds the data dir.
 */
export async function openEmbeddedBackend(config: ServerConfig, log: Logger): Promise<Backend> {
  const parts = new BackendParts();
  const open = <T extends Closable>(p: Promise<T>): Promise<T> => parts.open(p);
  const close = (): Promise<void> => parts.close();
  try {
    // One process on a data dir at a time (a second server, or `parley cluster import`).
    await open(lockDataDir(config.dataDir, "parley serve"));
    const accounts = await open(openEmbeddedAccounts(config, log));
    const chat = await open(openEmbeddedChat(config, log));
    const files = await open(openEmbeddedFiles(config, log));
    const exec = await open(openEmbeddedExec(config, log));
    return { accounts, chat, files, exec, close, [Symbol.asyncDispose]: close };
  } catch (e) {
    await close().catch(() => {});
    throw e;
  }
}
