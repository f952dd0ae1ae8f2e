/**
 * The REPL's line history, kept in the client config dir (next to
 * `config.json`) with mode 0600, oldest line first, capped in length.
 *
 * @module
 */
import { dirname, join } from "@std/path";
import { configPath } from "./credentials.ts";

/** Most lines kept. */
export const HISTORY_SIZE = 1000;

/** Default history file path, or undefined when there is no config dir. */
export function historyPath(): string | undefined {
  const cfg = configPath();
  return cfg ? join(dirname(cfg), "history") : undefined;
}

/** Reads the history, newest first (the order `node:readline` wants). Missing file = empty. */
export async function loadHistory(path: string | undefined): Promise<string[]> {
  if (!path) return [];
  try {
    const lines = (await Deno.readTextFile(path)).split("\n").filter((l) => l !== "");
    return lines.slice(-HISTORY_SIZE).reverse();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.PermissionDenied) return [];
    throw e;
  }
}

/** Writes the history (given newest first) with mode 0600. */
export async function saveHistory(path: string | undefined, newestFirst: string[]): Promise<void> {
  if (!path) return;
  await Deno.mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const body = newestFirst.slice(0, HISTORY_SIZE).reverse().join("\n") + "\n";
  const tmp = `${path}.tmp`;
  await Deno.writeTextFile(tmp, body, { mode: 0o600 });
  await Deno.chmod(tmp, 0o600);
  await Deno.rename(tmp, path);
}
