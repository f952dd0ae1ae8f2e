/**
 * The embedded files backend on a fresh temporary data dir, for the contract
 * suite and the feature-level tests.
 *
 * @module
 */
import { DEFAULT_LIMITS, type ServerConfig } from "../../server/config.ts";
import { type EmbeddedFiles, openEmbeddedFiles } from "../../server/embedded/files.ts";
import { Logger } from "../../server/log.ts";
import type { FilesFixture } from "./files_contract.ts";

/** A config for the embedded files backend under `dataDir`. */
export function embeddedConfig(dataDir: string, files: unknown = {}): ServerConfig {
  return {
    hostname: "127.0.0.1",
    port: 0,
    dataDir,
    tlsCert: undefined,
    tlsKey: undefined,
    plain: true,
    limits: DEFAULT_LIMITS,
    features: { files },
  };
}

/** A logger that drops everything. */
export function quietLogger(): Logger {
  return new Logger({ level: "error", sink: () => {} });
}

/** Opens the embedded files backend on a new temp dir, removed on dispose. */
export async function openEmbeddedFilesFixture(): Promise<FilesFixture> {
  const dataDir = await Deno.makeTempDir({ prefix: "parley-files-contract-" });
  const log = quietLogger();
  const config = embeddedConfig(dataDir);
  let backend: EmbeddedFiles = await openEmbeddedFiles(config, log);
  return {
    get backend() {
      return backend;
    },
    async reopen() {
      await backend.close();
      backend = await openEmbeddedFiles(config, log);
      return backend;
    },
    async [Symbol.asyncDispose]() {
      await backend.close();
      await Deno.remove(dataDir, { recursive: true });
    },
  };
}
