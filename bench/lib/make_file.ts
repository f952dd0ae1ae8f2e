/**
 * Test files for transfer benchmarks: incompressible-looking bytes written
 * quickly (a random 64 KiB block repeated, with one byte varied per MiB).
 *
 * @module
 */

/** One mebibyte. */
export const MiB = 1024 * 1024;

/** Writes `size` bytes of test data to `path`. */
export async function makeFile(path: string, size: number): Promise<void> {
  using f = await Deno.open(path, { write: true, create: true, truncate: true });
  const block = crypto.getRandomValues(new Uint8Array(65536));
  const big = new Uint8Array(MiB);
  for (let i = 0; i < 16; i++) big.set(block, i * 65536);
  for (let left = size; left > 0; left -= MiB) {
    big[0] = left & 0xff;
    big[1] = (left >>> 8) & 0xff;
    const part = big.subarray(0, Math.min(MiB, left));
    let off = 0;
    while (off < part.byteLength) off += await f.write(part.subarray(off));
  }
}

/** Removes a file, ignoring one that is already gone. */
export async function removeQuietly(path: string): Promise<void> {
  await Deno.remove(path).catch(() => {});
}
