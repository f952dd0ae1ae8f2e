/**
 * The embedded backend: one node, everything under the data dir. It is the
 * only code that touches the data dir.
 *
 * @module
 */
import type { Backend } from "../backend/mod.ts";
import type { ServerConfig } from "../config.ts";
import type { Logger } from "../log.ts";
import { openEmbeddedAccounts } from "./accounts.ts";
import { openEmbeddedChat } from "./chat.ts";
import { openEmbeddedExec } from "./exec.ts";
import { openEmbeddedFiles } from "./files.ts";

/** Opens (creating as needed) the embedded backend for `config.dataDir`. */
export async function openEmbeddedBackend(config: ServerConfig, log: Logger): Promise<Backend> {
  const parts: { close(): Promise<void> }[] = [];
  const open = async <T extends { close(): Promise<void> }>(p: Promise<T>): Promise<T> => {
    const part = await p;
    parts.push(part);
    return part;
  };
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    closing ??= (async () => {
      // Last opened, first closed; every part is closed even when one fails.
      const results = await Promise.allSettled(parts.reverse().map((p) => p.close()));
      const failed = results.find((r) => r.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
    })();
  try {
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
