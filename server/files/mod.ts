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
import {
  FILE_CD,
  FILE_GET,
  FILE_LS,
  FILE_MKDIR,
  FILE_MV,
  FILE_OFFSET,
  FILE_PUT,
  FILE_PWD,
  FILE_RM,
  FILE_RMDIR,
  FILE_SHARE,
  FILE_STAT,
  FILE_USAGE,
} from "../../protocol/ops/files.ts";
import { FILE_ARGS } from "../../protocol/ops/files_args.ts";
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
      reg.registerParsed(
        FILE_OFFSET,
        FILE_ARGS[FILE_OFFSET],
        (ctx, a) => handleOffset(deps, ctx, a),
      );
      reg.registerParsed(
        FILE_PUT,
        FILE_ARGS[FILE_PUT],
        (ctx, a, s) => sessions.transfer(ctx, () => handlePut(deps, ctx, a, s)),
      );
      reg.registerParsed(
        FILE_GET,
        FILE_ARGS[FILE_GET],
        (ctx, a, s) => sessions.transfer(ctx, () => handleGet(deps, ctx, a, s)),
      );
      reg.registerParsed(FILE_STAT, FILE_ARGS[FILE_STAT], (ctx, a) => ops.stat(ctx, a));
      reg.registerParsed(FILE_LS, FILE_ARGS[FILE_LS], (ctx, a, s) => ops.ls(ctx, a, s));
      reg.registerParsed(FILE_MKDIR, FILE_ARGS[FILE_MKDIR], (ctx, a) => ops.mkdir(ctx, a));
      reg.registerParsed(FILE_RMDIR, FILE_ARGS[FILE_RMDIR], (ctx, a) => ops.rmdir(ctx, a));
      reg.registerParsed(FILE_RM, FILE_ARGS[FILE_RM], (ctx, a) => ops.rm(ctx, a));
      reg.registerParsed(FILE_MV, FILE_ARGS[FILE_MV], (ctx, a) => ops.mv(ctx, a));
      reg.registerParsed(FILE_CD, FILE_ARGS[FILE_CD], (ctx, a) => ops.cd(ctx, a));
      reg.register(FILE_PWD, (ctx) => ops.pwd(ctx));
      reg.register(FILE_USAGE, (ctx) => ops.usage(ctx));
      reg.registerParsed(
        FILE_SHARE,
        FILE_ARGS[FILE_SHARE],
        (ctx, a) => handleShare(deps, ctx, a),
      );
    },
  });
}
