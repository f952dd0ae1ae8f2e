/**
 * The files feature: per-user homes under `<data>/files/home/<user>/`, with
 * atomic, resumable, SHA-256-checked uploads and downloads over
 * flow-controlled streams, quota and size limits, and shared files
 * (docs/files.md, PROTOCOL.md "Operations: files").
 *
 * @module
 */
import type { Json } from "../../protocol/messages.ts";
import type { MuxStream } from "../../protocol/mux_stream.ts";
import type { ClientContext } from "../context.ts";
import { RequestError } from "../errors.ts";
import type { Feature, FeatureDeps } from "../feature.ts";
import { handleGet } from "./downloads.ts";
import { parseFileConfig } from "./file_config.ts";
import { FileOps } from "./file_ops.ts";
import { FileStore } from "./file_store.ts";
import { Shares } from "./shares.ts";
import { Uploads } from "./uploads.ts";

const _ACTIVE = "files.transfers";
const _SWEEP_MS = 3600_000;

/** Creates the files feature. */
export async function createFileFeature(deps: FeatureDeps): Promise<Feature> {
  const config = parseFileConfig(deps.config);
  const store = new FileStore(deps.dataDir, {
    perUser: config.hashJobsPerUser,
    total: config.hashJobs,
    queuePerUser: config.hashQueuePerUser,
  });
  await store.init();
  const shares = new Shares(store, config.maxSharesPerUser);
  await shares.init();
  const uploads = new Uploads(store, config, deps.log);
  const ops = new FileOps(store, shares, config);
  await uploads.init();
  await uploads.sweep();
  const timer = setInterval(() => {
    uploads.sweep().catch((e) => deps.log.warn("file sweep failed", { error: String(e) }));
  }, _SWEEP_MS);
  Deno.unrefTimer(timer);

  // Caps concurrent transfers per connection; each holds an open file.
  const transfer = (
    fn: (ctx: ClientContext, args: Json, stream: MuxStream | undefined) => Promise<unknown>,
  ) =>
  async (ctx: ClientContext, args: Json, stream: MuxStream | undefined) => {
    const n = (ctx.state.get(_ACTIVE) as number | undefined) ?? 0;
    if (n >= config.maxTransfersPerConnection) {
      throw new RequestError(
        "busy",
        `at most ${config.maxTransfersPerConnection} transfers at once per connection`,
      );
    }
    ctx.state.set(_ACTIVE, n + 1);
    try {
      return await fn(ctx, args, stream);
    } finally {
      ctx.state.set(_ACTIVE, ((ctx.state.get(_ACTIVE) as number | undefined) ?? 1) - 1);
    }
  };

  return {
    name: "files",
    register(reg) {
      reg.register("file.offset", (ctx, args) => uploads.offset(ctx, args));
      reg.register("file.put", transfer((ctx, args, s) => uploads.put(ctx, args, s)));
      reg.register("file.get", transfer((ctx, args, s) => handleGet(store, shares, ctx, args, s)));
      reg.register("file.stat", (ctx, args) => ops.stat(ctx, args));
      reg.register("file.ls", (ctx, args, s) => ops.ls(ctx, args, s));
      reg.register("file.mkdir", (ctx, args) => ops.mkdir(ctx, args));
      reg.register("file.rmdir", (ctx, args) => ops.rmdir(ctx, args));
      reg.register("file.rm", (ctx, args) => ops.rm(ctx, args));
      reg.register("file.mv", (ctx, args) => ops.mv(ctx, args));
      reg.register("file.cd", (ctx, args) => ops.cd(ctx, args));
      reg.register("file.pwd", (ctx) => ops.pwd(ctx));
      reg.register("file.usage", (ctx) => ops.usage(ctx));
      reg.register("file.share", (ctx, args) => shares.share(ctx, args));
    },
    close() {
      clearInterval(timer);
    },
  };
}
