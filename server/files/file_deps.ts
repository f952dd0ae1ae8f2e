/**
 * What the files feature's operations share: the backend, the validated
 * config, per-connection state and the hashing gate.
 *
 * @module
 */
import type { FileLimits, FileReader, FilesBackend } from "../backend/files.ts";
import type { ClientContext } from "../context.ts";
import type { Logger } from "../log.ts";
import type { FileConfig } from "./file_config.ts";
import type { FileSessions } from "./file_session.ts";
import type { HashJobs } from "./hash_jobs.ts";

/** Dependencies of the file operations. */
export interface FileDeps {
  backend: FilesBackend;
  config: FileConfig;
  sessions: FileSessions;
  /** Every whole-file hash goes through it. */
  hashJobs: HashJobs;
  log: Logger;
}

/** The limits every change to a home is checked against. */
export function limitsOf(config: FileConfig): FileLimits {
  return {
    quotaBytes: config.quotaBytes,
    maxEntries: config.maxEntriesPerUser,
    maxPartials: config.maxPartialsPerUser,
  };
}

/** The session's current directory. */
export function cwdOf(deps: FileDeps, ctx: ClientContext): string[] {
  return deps.sessions.of(ctx).cwd;
}

/**
 * SHA-256 of an open file: known to the store, or read whole through the
 * hashing gate on behalf of `user` (`busy` when they ask for too many at once).
 */
export async function sha256Of(deps: FileDeps, user: string, reader: FileReader) {
  return reader.knownSha256 ?? await deps.hashJobs.run(user, () => reader.sha256());
}
