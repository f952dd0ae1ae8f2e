/**
 * The `files` section of `<data>/config.json`, validated with zod.
 *
 * @module
 */
import { parseConfigSection } from "../config.ts";
import { z } from "zod";

const GiB = 1024 ** 3;

/** Validated file feature settings. */
export interface FileConfig {
  /** Bytes each user may store (files in the home plus uploads in progress). */
  quotaBytes: number;
  /** Largest single file in bytes. */
  maxFileBytes: number;
  /** Interrupted uploads older than this many hours are deleted. */
  partialTtlHours: number;
  /** Most interrupted uploads kept per user; the oldest go first. */
  maxPartialsPerUser: number;
  /** Most transfers one connection may run at once. */
  maxTransfersPerConnection: number;
  /** Most files and directories one user's home may hold (empty ones cost no bytes). */
  maxEntriesPerUser: number;
  /** Most live share records one user may have. */
  maxSharesPerUser: number;
  /** Whole-file checksums one user may compute at once. */
  hashJobsPerUser: number;
  /** Whole-file checksums the server computes at once (all users). */
  hashJobs: number;
  /** Checksum requests of one user that may wait for a slot; more get `busy`. */
  hashQueuePerUser: number;
}

/** The defaults (docs/files.md "Configuration"). */
export const DEFAULT_FILE_CONFIG: FileConfig = {
  quotaBytes: 10 * GiB,
  maxFileBytes: 16 * GiB,
  partialTtlHours: 168,
  maxPartialsPerUser: 16,
  maxTransfersPerConnection: 16,
  maxEntriesPerUser: 1_000_000,
  maxSharesPerUser: 1000,
  hashJobsPerUser: 2,
  hashJobs: 4,
  hashQueuePerUser: 16,
};

const _bytes = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

const _schema = z.object({
  quotaBytes: _bytes.optional(),
  maxFileBytes: _bytes.optional(),
  partialTtlHours: z.number().positive().max(24 * 365).optional(),
  maxPartialsPerUser: z.number().int().min(1).max(10_000).optional(),
  maxTransfersPerConnection: z.number().int().min(1).max(256).optional(),
  maxEntriesPerUser: z.number().int().min(1).max(1_000_000_000).optional(),
  maxSharesPerUser: z.number().int().min(1).max(1_000_000).optional(),
  hashJobsPerUser: z.number().int().min(1).max(64).optional(),
  hashJobs: z.number().int().min(1).max(256).optional(),
  hashQueuePerUser: z.number().int().min(0).max(1024).optional(),
}).strict();

/** Parses the raw section; throws a `TypeError` naming the bad key. */
export function parseFileConfig(raw: unknown): FileConfig {
  const data = parseConfigSection(_schema, raw, "files");
  const out: FileConfig = { ...DEFAULT_FILE_CONFIG };
  for (const [k, v] of Object.entries(data)) {
    if (v !== undefined) (out as unknown as Record<string, number>)[k] = v;
  }
  return out;
}
