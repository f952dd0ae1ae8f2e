/**
 * The embedded files backend (see `../backend/files.ts`): homes, uploads in
 * progress and share records under `<data>/files/` (docs/files.md "Storage
 * layout"). Interrupted uploads found at start are counted; those older than
 * `partialTtlHours` or beyond `maxPartialsPerUser` are deleted at start and
 * hourly.
 *
 * @module
 */
import type { FilesBackend } from "../backend/files.ts";
import type { ServerConfig } from "../config.ts";
import type { Logger } from "../log.ts";
import { parseFileConfig } from "../files/file_config.ts";
import { DiskFileStore } from "./files_file_store.ts";
import { DiskPartials } from "./files_partials.ts";
import { DiskShares } from "./files_shares.ts";
import { DiskStore } from "./files_store.ts";
import { DiskUploads } from "./files_uploads.ts";

const _SWEEP_MS = 3600_000;

/** The embedded files backend, with its sweep. */
export interface EmbeddedFiles extends FilesBackend, AsyncDisposable {
  /** Deletes old and surplus interrupted uploads now (also run at start and hourly). */
  sweep(now?: number): Promise<void>;
  /** Stops the sweep. Idempotent. */
  close(): Promise<void>;
}

/** Opens the embedded files backend under `config.dataDir`. */
export async function openEmbeddedFiles(
  config: ServerConfig,
  log: Logger,
): Promise<EmbeddedFiles> {
  const fileConfig = parseFileConfig(config.features.files);
  const disk = new DiskStore(config.dataDir);
  await disk.init();
  const shares = new DiskShares(disk);
  await shares.init();
  const partials = new DiskPartials(disk);
  await partials.init();
  const uploads = new DiskUploads(disk, partials, log);
  const sweep = (now = Date.now()) =>
    partials.sweep(fileConfig.partialTtlHours * 3600_000, fileConfig.maxPartialsPerUser, now);
  await sweep();
  let running: Promise<void> | undefined;
  const timer = setInterval(() => {
    running ??= sweep()
      .catch((e) => log.warn("file sweep failed", { error: String(e) }))
      .finally(() => running = undefined);
  }, _SWEEP_MS);
  Deno.unrefTimer(timer);
  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      clearInterval(timer);
      await running;
    })();
  return {
    store: new DiskFileStore(disk, uploads),
    shares,
    sweep,
    close,
    [Symbol.asyncDispose]: close,
  };
}
