/**
 * The files backend on NATS JetStream (`openNatsFiles`): bytes as chunk sets
 * in the stream `PARLEY_FS_CHUNKS` (one 512 KiB chunk per subject
 * `parley.up.<gen>.<index>`, one message per subject); the path index (the
 * atomic visibility point of an upload), upload records and shares in the KV
 * bucket `parley_fs` (see `files_ctx.ts` for the keys); usage as a log of
 * deltas in `PARLEY_FS_USAGE` (`files_usage.ts`, compacted by the sweep). Any
 * node resumes any upload and reads any file; quotas hold across nodes (each
 * owner pays for every file in full). One stored copy per content: paths with
 * the same SHA-256 share a chunk set (`files_content.ts`). Contended keys are
 * written with a CAS that holds at R3 on nats-server 2.9.10 (`files_cas.ts`).
 * The node holding the sweep lease collects garbage periodically
 * (`files_sweeper.ts`, `files_gc.ts`).
 *
 * @module
 */
import { jetstream, jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { FilesBackend, FileStore } from "../backend/files.ts";
import { CHUNK_BYTES, CHUNK_STREAM, FS_BUCKET, type NatsFilesCtx } from "./files_ctx.ts";
import { readUsage, USAGE_STREAM } from "./files_usage.ts";
import { NATS_MAX_PATH_BYTES, NatsIndex } from "./files_index.ts";
import { openReader } from "./files_reader.ts";
import { natsShares } from "./files_shares.ts";
import { beginUpload, uploadOffset } from "./files_upload.ts";
import { sweepFiles, type SweepReport } from "./files_gc.ts";
import { RequestError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { startSweeper } from "./files_sweeper.ts";

/** Options of {@linkcode openNatsFiles}. */
export interface NatsFilesOptions {
  /** This node's name. */
  node: string;
  /** Replicas of the chunk stream and the bucket (1 or 3). */
  replicas: number;
  /** Chunk size (default 512 KiB; chunk + headers must fit `max_payload`). */
  chunkBytes?: number;
  /** How long an upload's lease outlives its last write (default 30 s): a dead node's upload resumes after it. */
  leaseMs?: number;
  /** Interrupted uploads older than this are dropped by a sweep (default 24 h). */
  partialTtlHours?: number;
  /** Sweep every this many ms on the node holding the sweep lease (default 10 min; 0: never). */
  sweepEveryMs?: number;
  /** Where sweep failures go. */
  log?: Logger;
}

/** An open NATS files backend. */
export interface NatsFiles extends FilesBackend {
  /** One GC sweep (see `files_gc.ts`); `graceMs` defaults to 10 minutes. */
  sweep(o?: { graceMs?: number; now?: number }): Promise<SweepReport>;
  /** Stops the periodic sweep; leaves the connection open (the caller owns it). */
  close(): Promise<void>;
}

/** Creates (or binds to) the stream and bucket and returns the backend. */
export async function openNatsFiles(
  nc: NatsConnection,
  options: NatsFilesOptions,
): Promise<NatsFiles> {
  // Timeouts above a raft election (4–9 s on 2.9, CLUSTER.md §6.4).
  const jsm = await jetstreamManager(nc, { timeout: 20_000 });
  const js = jetstream(nc, { timeout: 20_000 });
  try {
    await jsm.streams.info(CHUNK_STREAM);
  } catch {
    await jsm.streams.add({
      name: CHUNK_STREAM,
      subjects: ["parley.up.>"],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      num_replicas: options.replicas,
      max_msgs_per_subject: 1,
      allow_direct: true,
      duplicate_window: 120_000_000_000,
    });
  }
  try {
    await jsm.streams.info(USAGE_STREAM);
  } catch {
    await jsm.streams.add({
      name: USAGE_STREAM,
      subjects: ["parley.usage.>"],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      num_replicas: options.replicas,
      allow_direct: true,
    });
  }
  // No direct gets on the index: a replica may lag, and a CAS or a stat must see the last write.
  const kv = await new Kvm(js).create(FS_BUCKET, {
    replicas: options.replicas,
    history: 1,
    allow_direct: false,
  });
  const ctx: NatsFilesCtx = {
    js,
    jsm,
    kv,
    node: options.node,
    chunkBytes: options.chunkBytes ?? CHUNK_BYTES,
    leaseMs: options.leaseMs ?? 30_000,
  };
  const index = new NatsIndex(ctx);
  const store: FileStore = {
    maxPathBytes: () => NATS_MAX_PATH_BYTES,
    stat: (user, parts) => index.stat(user, parts),
    list: (user, parts) => index.list(user, parts),
    async open(user, parts) {
      const e = parts.length ? await index.get(user, parts) : undefined;
      if (!e) {
        if (parts.length === 0) throw new RequestError("bad_request", "not a file");
        await index.parentDir(user, parts);
        throw new RequestError("not_found", "no such file");
      }
      if (e.value.t !== "f") throw new RequestError("bad_request", "not a file");
      return openReader(ctx, parts.at(-1)!, e.value);
    },
    mkdir: (user, parts, o) => index.mkdir(user, parts, o),
    rmdir: (user, parts) => index.rmdir(user, parts),
    remove: (user, parts) => index.remove(user, parts),
    rename: (user, from, to, o) => index.rename(user, from, to, o),
    usage: (user) => readUsage(ctx, user),
    uploadOffset: (target, limits) => uploadOffset(ctx, index, target, limits),
    beginUpload: (target, o) => beginUpload(ctx, index, target, o),
  };
  const ttlMs = (options.partialTtlHours ?? 24) * 3_600_000;
  const sweep = (o: { graceMs?: number; now?: number } = {}) =>
    sweepFiles(ctx, {
      graceMs: o.graceMs ?? 600_000,
      partialTtlMs: ttlMs,
      ...(o.now ? { now: o.now } : {}),
    });
  const everyMs = options.sweepEveryMs ?? 600_000;
  const sweeper = everyMs > 0
    ? startSweeper(ctx, { everyMs, sweep: () => sweep(), log: options.log })
    : undefined;
  return {
    store,
    shares: natsShares(ctx, index),
    sweep,
    close: async () => await sweeper?.close(),
  };
}
