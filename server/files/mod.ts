/**
 * The files feature: per-user homes with atomic, resumable, SHA-256-checked
 * uploads and downloads over flow-controlled streams, quota and size limits,
 * and shared files (docs/files.md, PROTOCOL.md "Operations: files"). Policy
 * lives here (arguments, path limits, quota and size limits, hashing caps,
 * per-connection state); storage is reached only through
 * `deps.backend.files` (`../backend/files.ts`).
 *
 * @module
 */
import type { FilesBackend } from "../backend/files.ts";
import type { Feature } from "../feature.ts";
import type { Logger } from "../log.ts";
import { handleGet } from "./downloads.ts";
import { parseFileConfig } from "./file_config.ts";
import type { FileDeps } from "./file_deps.ts";
import { FileOps } from "./file_ops.ts";
import { FileSessions } from "./file_session.ts";
import { HashJobs } from "./hash_jobs.ts";
import { handleShare } from "./shares.ts";
import { handleOffset, handlePut } from "./uploads.ts";

/** What the files feature needs. */
export interface FileFeatureDeps {
  /** Storage, uploads and shares. */
  backend: { files: FilesBackend };
  /** The raw `files` config section (validated here). */
  config: unknown;
  log: Logger;
}

/** Creates the files feature. */
export function createFileFeature(feature: FileFeatureDeps): Promise<Feature> {
  const config = parseFileConfig(feature.config);
  const deps: FileDeps = {
    backend: feature.backend.files,
    config,
    sessions: new FileSessions(config.maxTransfersPerConnection),
    hashJobs: new HashJobs({
      perUser: config.hashJobsPerUser,
      total: config.hashJobs,
      queuePerUser: config.hashQueuePerUser,
    }),
    log: feature.log,
  };
  const ops = new FileOps(deps);
  const { sessions } = deps;
  return Promise.resolve({
    name: "files",
    register(reg) {
      reg.register("file.offset", (ctx, args) => handleOffset(deps, ctx, args));
      reg.register(
        "file.put",
        (ctx, args, s) => sessions.transfer(ctx, () => handlePut(deps, ctx, args, s)),
      );
      reg.register(
        "file.get",
        (ctx, args, s) => sessions.transfer(ctx, () => handleGet(deps, ctx, args, s)),
      );
      reg.register("file.stat", (ctx, args) => ops.stat(ctx, args));
      reg.register("file.ls", (ctx, args, s) => ops.ls(ctx, args, s));
      reg.register("file.mkdir", (ctx, args) => ops.mkdir(ctx, args));
      reg.register("file.rmdir", (ctx, args) => ops.rmdir(ctx, args));
      reg.register("file.rm", (ctx, args) => ops.rm(ctx, args));
      reg.register("file.mv", (ctx, args) => ops.mv(ctx, args));
      reg.register("file.cd", (ctx, args) => ops.cd(ctx, args));
      reg.register("file.pwd", (ctx) => ops.pwd(ctx));
      reg.register("file.usage", (ctx) => ops.usage(ctx));
      reg.register("file.share", (ctx, args) => handleShare(deps, ctx, args));
    },
  });
}
