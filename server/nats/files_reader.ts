/**
 * Reading a file of the NATS files backend: chunk `k` of a chunk set is the
 * one message on `parley.up.<gen>.<k>`, fetched with a direct get only when
 * the consumer of the `ReadableStream` pulls (backpressure: one chunk read
 * ahead at most), starting at the chunk that holds the offset.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { FileEntry, FileReader } from "../backend/files.ts";
import { RequestError } from "../errors.ts";
import {
  CHUNK_STREAM,
  chunkSubject,
  entryGen,
  type IndexEntry,
  type NatsFilesCtx,
} from "./files_ctx.ts";

/**
 * Fetches chunk `index` of `gen` (`internal` when it is missing): a direct get
 * (raw bytes, answered by any replica), and from the stream leader when that
 * finds nothing or not `length` bytes (a replica still applying a chunk just
 * written, or the full rewrite of a resumed upload's short last chunk).
 */
export async function readChunk(
  ctx: NatsFilesCtx,
  gen: string,
  index: number,
  length?: number,
): Promise<Uint8Array> {
  const last_by_subj = chunkSubject(gen, index);
  try {
    const d = await ctx.jsm.direct.getMessage(CHUNK_STREAM, { last_by_subj });
    if (d && (length === undefined || d.data.byteLength === length)) return d.data;
  } catch {
    // Direct gets unavailable (a stream made without allow_direct): ask the leader.
  }
  try {
    const m = await ctx.jsm.streams.getMessage(CHUNK_STREAM, { last_by_subj });
    if (m) return m.data;
  } catch (e) {
    if (!/no message found|10037/i.test(String((e as Error).message))) throw e;
  }
  throw new RequestError("internal", `chunk ${index} of ${gen} is missing`);
}

/**
 * Bytes `[offset, end)` of a chunk set of `size` bytes, pulled a chunk at a
 * time with the next chunk fetched while the consumer takes this one (at
 * most one chunk read ahead).
 */
export function readRange(
  ctx: NatsFilesCtx,
  gen: string,
  size: number,
  offset: number,
  end: number,
): ReadableStream<Uint8Array> {
  let pos = Math.max(0, Math.min(offset, size));
  const stop = Math.max(pos, Math.min(end, size));
  type Got = { data: Uint8Array } | { error: unknown };
  let ahead: { k: number; p: Promise<Got> } | undefined;
  const fetch = (k: number) => ({
    k,
    p: readChunk(ctx, gen, k, Math.min(ctx.chunkBytes, size - k * ctx.chunkBytes)).then(
      (data): Got => ({ data }),
      (error: unknown): Got => ({ error }),
    ),
  });
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (pos >= stop) {
        controller.close();
        return;
      }
      const k = Math.floor(pos / ctx.chunkBytes);
      const got = await (ahead?.k === k ? ahead : fetch(k)).p;
      ahead = (k + 1) * ctx.chunkBytes < stop ? fetch(k + 1) : undefined;
      if ("error" in got) throw got.error;
      const from = pos - k * ctx.chunkBytes;
      const to = Math.min(got.data.byteLength, stop - k * ctx.chunkBytes);
      if (to <= from) throw new RequestError("internal", "file shorter than its entry");
      controller.enqueue(got.data.subarray(from, to));
      pos += to - from;
    },
    cancel() {
      ahead = undefined;
    },
  }, { highWaterMark: 0 });
}

/** A reader of one version of a file (the chunk set its index entry names). */
export function openReader(ctx: NatsFilesCtx, name: string, e: IndexEntry): FileReader {
  const entry: FileEntry = { name, type: "file", size: e.size, mtime: e.mtime, version: e.v };
  let known = e.sha256;
  const reader: FileReader = {
    entry,
    get knownSha256() {
      return known;
    },
    read(offset = 0, end = e.size) {
      return readRange(ctx, entryGen(e), e.size, offset, end);
    },
    async sha256() {
      const h = createHash("sha256");
      for await (const c of readRange(ctx, entryGen(e), e.size, 0, e.size)) h.update(c);
      return h.digest("hex");
    },
    remember(sha256: string) {
      known = sha256;
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
  return reader;
}
