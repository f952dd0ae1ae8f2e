/**
 * Reading a file of the NATS files backend: chunk `k` of a chunk set is the
 * one message on `parley.up.<gen>.<k>`, fetched with a direct stream get only
 * when the consumer of the `ReadableStream` pulls (backpressure: one chunk in
 * memory at most), starting at the chunk that holds the offset.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { FileEntry, FileReader } from "../backend/files.ts";
import { RequestError } from "../errors.ts";
import { CHUNK_STREAM, chunkSubject, type IndexEntry, type NatsFilesCtx } from "./files_ctx.ts";

/** Fetches chunk `index` of `gen` (`internal` when it is missing). */
export async function readChunk(
  ctx: NatsFilesCtx,
  gen: string,
  index: number,
): Promise<Uint8Array> {
  try {
    const m = await ctx.jsm.streams.getMessage(CHUNK_STREAM, {
      last_by_subj: chunkSubject(gen, index),
    });
    if (m) return m.data;
  } catch (e) {
    if (!/no message found|10037/i.test(String((e as Error).message))) throw e;
  }
  throw new RequestError("internal", `chunk ${index} of ${gen} is missing`);
}

/** Bytes `[offset, end)` of a chunk set of `size` bytes, pulled a chunk at a time. */
export function readRange(
  ctx: NatsFilesCtx,
  gen: string,
  size: number,
  offset: number,
  end: number,
): ReadableStream<Uint8Array> {
  let pos = Math.max(0, Math.min(offset, size));
  const stop = Math.max(pos, Math.min(end, size));
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (pos >= stop) {
        controller.close();
        return;
      }
      const k = Math.floor(pos / ctx.chunkBytes);
      const data = await readChunk(ctx, gen, k);
      const from = pos - k * ctx.chunkBytes;
      const to = Math.min(data.byteLength, stop - k * ctx.chunkBytes);
      if (to <= from) throw new RequestError("internal", "file shorter than its entry");
      controller.enqueue(data.subarray(from, to));
      pos += to - from;
    },
  }, { highWaterMark: 0 });
}

/** A reader of one version of a file (the chunk set named in its index entry). */
export function openReader(ctx: NatsFilesCtx, name: string, e: IndexEntry): FileReader {
  const entry: FileEntry = { name, type: "file", size: e.size, mtime: e.mtime, version: e.v };
  let known = e.sha256;
  const reader: FileReader = {
    entry,
    get knownSha256() {
      return known;
    },
    read(offset = 0, end = e.size) {
      return readRange(ctx, e.v, e.size, offset, end);
    },
    async sha256() {
      const h = createHash("sha256");
      for await (const c of readRange(ctx, e.v, e.size, 0, e.size)) h.update(c);
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
