/**
 * Fixtures for the file tests: deterministic test files of any size
 * (written in 1 MiB blocks, so memory stays small) and SHA-256 of files.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { ParleyClient } from "../../client/client.ts";

/** SHA-256 (hex) of a local file. */
export async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  using f = await Deno.open(path);
  const buf = new Uint8Array(1 << 20);
  for (let n = await f.read(buf); n !== null; n = await f.read(buf)) h.update(buf.subarray(0, n));
  return h.digest("hex");
}

/** Writes `size` pseudo-random bytes (depending on `seed`) to `path`. */
export async function makeFile(path: string, size: number, seed = 1): Promise<void> {
  using f = await Deno.open(path, { write: true, create: true, truncate: true });
  const block = new Uint8Array(1 << 20);
  let x = (seed * 2654435761) >>> 0;
  for (let i = 0; i < block.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    block[i] = x >>> 24;
  }
  let left = size;
  let round = 0;
  while (left > 0) {
    const n = Math.min(left, block.length);
    new DataView(block.buffer).setUint32(0, round++); // every block differs
    let off = 0;
    while (off < n) off += await f.write(block.subarray(off, n));
    left -= n;
  }
}

/** Whether a path exists (without following a final symlink): the client's own check. */
export { exists } from "../../client/files/transfer_common.ts";

/** A temp directory removed on dispose. */
export async function tempDir(
  prefix = "parley-files-",
): Promise<AsyncDisposable & { path: string }> {
  const path = await Deno.makeTempDir({ prefix });
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true });
    },
  };
}

/** Options for {@linkcode putBytes}. */
export interface PutOptions {
  /** Replace an existing file. */
  overwrite?: boolean;
  /** Create missing parent directories. */
  parents?: boolean;
}

/**
 * Uploads `data` to `path` through `file.put`, in 256 KiB writes, and
 * returns the server's reply. A refusal rejects with the server's error; a
 * write cut short by it is not reported twice.
 */
export async function putBytes(
  c: ParleyClient,
  path: string,
  data: Uint8Array,
  options: PutOptions = {},
): Promise<unknown> {
  const { stream, result } = c.open("file.put", {
    path,
    size: data.byteLength,
    sha256: createHash("sha256").update(data).digest("hex"),
    overwrite: options.overwrite ?? false,
    parents: options.parents ?? false,
  });
  result.catch(() => {}); // awaited below, after the writes
  try {
    for (let off = 0; off < data.byteLength; off += 256 * 1024) {
      await stream.write(data.subarray(off, Math.min(off + 256 * 1024, data.byteLength)));
    }
    stream.end();
  } catch {
    // refused; the result says why
  }
  return await result;
}
