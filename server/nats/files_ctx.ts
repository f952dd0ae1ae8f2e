/**
 * What the NATS files modules share: the chunk stream, the `parley_fs` KV
 * bucket, key encoding (path components as base64url tokens, CLUSTER.md
 * §6.12); usage lives in `files_usage.ts`.
 *
 * Keys of `parley_fs`:
 * - `h.<user>.<component>…` → {@linkcode IndexEntry} (the path index);
 * - `u.<user>.<uploadKey>` → {@linkcode UploadRecord} (an upload kept for resuming);
 * - `c.<sha256>` → the chunk set holding that content (`files_content.ts`);
 * - `s.<id>` → a share record; `gc.<gen>` → when a sweep first saw a chunk set unreferenced;
 * - `lease.gc` → the sweep lease (`files_sweeper.ts`).
 *
 * Contended keys are written with `files_cas.ts` (KV CAS is not atomic at R3 on 2.9.10).
 *
 * @module
 */
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { UploadTarget } from "../backend/files.ts";

/** Stream holding upload chunks, one subject per chunk, one message per subject. */
export const CHUNK_STREAM = "PARLEY_FS_CHUNKS";
/** KV bucket of the path index, usage, uploads and shares. */
export const FS_BUCKET = "parley_fs";
/** Chunk size: chunk + headers stay under the default `max_payload` of 1 MiB. */
export const CHUNK_BYTES = 512 * 1024;

/** An entry of the path index. */
export interface IndexEntry {
  t: "f" | "d";
  size: number;
  mtime: number;
  /**
   * Version: unique per write of a file (kept by a rename), a random id for a
   * directory. Entries written before content addressing name their chunk set here.
   */
  v: string;
  /** SHA-256 of a file. */
  sha256?: string;
  /** The chunk set holding a file's bytes, shared by every entry of the same content. */
  g?: string;
}

/** The chunk set a file entry reads. */
export function entryGen(e: IndexEntry): string {
  return e.g ?? e.v;
}

/** A user's numbers as stored. */
export interface Usage {
  files: number;
  partial: number;
  reserved: number;
  entries: number;
}

/** An upload kept for resuming, or running under a lease. */
export interface UploadRecord {
  parts: string[];
  size: number;
  /** Chunk set: chunks live on `parley.up.<gen>.<index>`. */
  gen: string;
  /** Bytes counted as `partial` usage for this upload (when no session runs). */
  partial: number;
  created: number;
  /** The running session and until when its lease holds (ms since the epoch). */
  lease?: { id: string; until: number };
}

/** Everything an open NATS files backend holds. */
export interface NatsFilesCtx {
  js: JetStreamClient;
  jsm: JetStreamManager;
  kv: KV;
  node: string;
  chunkBytes: number;
  /** How long an upload session's lease holds without a write (ms). */
  leaseMs: number;
}

/** base64url without padding: a valid KV key token for any string. */
export function tok(s: string): string {
  const b = new TextEncoder().encode(s);
  let bin = "";
  for (const x of b) bin += String.fromCharCode(x);
  return btoa(bin).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}

/** Inverse of {@linkcode tok}. */
export function untok(t: string): string {
  const bin = atob(t.replaceAll("-", "+").replaceAll("_", "/"));
  return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
}

/** Index key of `parts` under `user`'s home (`h.<user>` for the home). */
export function indexKey(user: string, parts: readonly string[]): string {
  return ["h", tok(user), ...parts.map(tok)].join(".");
}

/** Subject of chunk `index` of chunk set `gen`. */
export function chunkSubject(gen: string, index: number): string {
  return `parley.up.${gen}.${index}`;
}

/** A new chunk-set name: creation time (base 36) and 64 random bits, for GC grace. */
export function newGen(): string {
  const r = crypto.getRandomValues(new Uint8Array(8));
  return `${Date.now().toString(36)}-${
    Array.from(r, (x) => x.toString(16).padStart(2, "0")).join("")
  }`;
}

/** Reads a JSON value and its revision (undefined when missing or deleted). */
export async function getJson<T>(
  kv: KV,
  key: string,
): Promise<{ value: T; rev: number } | undefined> {
  const e = await kv.get(key);
  if (!e || e.operation !== "PUT" || e.length === 0) return undefined;
  return { value: e.json<T>(), rev: e.revision };
}

/** Whether `e` is a KV CAS conflict (wrong last sequence or key exists). */
export function isConflict(e: unknown): boolean {
  const m = String((e as Error)?.message ?? e);
  return /wrong last sequence|key exists|10071/i.test(m);
}

/** Purges every chunk of `gen`. */
export async function purgeGen(ctx: NatsFilesCtx, gen: string): Promise<void> {
  await ctx.jsm.streams.purge(CHUNK_STREAM, { filter: `parley.up.${gen}.>` });
}

/**
 * Bytes stored of `gen`: the contiguous chunks from index 0 (every chunk but
 * the last is full) and the last chunk's length.
 */
export async function storedBytes(ctx: NatsFilesCtx, gen: string): Promise<number> {
  const si = await ctx.jsm.streams.info(CHUNK_STREAM, { subjects_filter: `parley.up.${gen}.>` });
  const have = new Set(Object.keys(si.state.subjects ?? {}));
  let n = 0;
  while (n < 100_000_000 && have.has(chunkSubject(gen, n))) n++;
  if (n === 0) return 0;
  const last = await ctx.jsm.streams.getMessage(CHUNK_STREAM, {
    last_by_subj: chunkSubject(gen, n - 1),
  });
  return (n - 1) * ctx.chunkBytes + (last?.data.byteLength ?? 0);
}

/** The record key of an upload. */
export async function uploadKey(t: UploadTarget): Promise<string> {
  const raw = JSON.stringify([t.user, t.parts, t.size, t.id]);
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(raw)));
  return `u.${tok(t.user)}.${
    Array.from(d.subarray(0, 16), (x) => x.toString(16).padStart(2, "0")).join("")
  }`;
}

/** Whether a session of the upload `r` runs now (its lease holds). */
export function leased(r: UploadRecord): boolean {
  return !!r.lease && r.lease.until > Date.now();
}
