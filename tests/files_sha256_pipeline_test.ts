import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { createHash } from "node:crypto";
import { hexToBytes, Sha256Pipeline } from "../protocol/sha256_worker.ts";

function bytesOf(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 131 + (i >> 8)) & 0xff;
  return b;
}

Deno.test("the worker SHA-256 matches node:crypto for any chunking", async () => {
  const data = bytesOf(3 * 1024 * 1024 + 17);
  const want = createHash("sha256").update(data).digest("hex");
  for (const step of [1 << 20, 65_537, 4096]) {
    await using h = new Sha256Pipeline({ maxInFlightBytes: 256 * 1024 });
    for (let off = 0; off < data.length; off += step) await h.update(data.subarray(off, off + step));
    assertEquals(await h.digest(), want, `chunks of ${step}`);
  }
  await using empty = new Sha256Pipeline();
  assertEquals(await empty.digest(), createHash("sha256").digest("hex"));
});

Deno.test("the worker SHA-256 copies its input, so callers may reuse buffers", async () => {
  const buf = new Uint8Array(1000);
  const ref = createHash("sha256");
  await using h = new Sha256Pipeline();
  for (let i = 0; i < 20; i++) {
    buf.fill(i);
    ref.update(buf);
    await h.update(buf);
  }
  assertEquals(await h.digest(), ref.digest("hex"));
});

Deno.test("the worker SHA-256 keeps at most the configured bytes in flight", async () => {
  await using h = new Sha256Pipeline({ maxInFlightBytes: 1 << 20 });
  const chunk = bytesOf(256 * 1024);
  for (let i = 0; i < 40; i++) {
    await h.update(chunk);
    assert(h.inFlight <= 1 << 20, `${h.inFlight} bytes in flight`);
  }
  await h.digest();
});

Deno.test("a closed or finished worker SHA-256 refuses more work; close is idempotent", async () => {
  const h = new Sha256Pipeline();
  await h.update(bytesOf(10));
  await h.digest();
  assertThrows(() => h.digest(), Error, "finished");
  await assertRejects(() => h.update(bytesOf(1)), Error, "finished");
  h.close();
  h.close();
  const g = new Sha256Pipeline();
  g.close();
  await assertRejects(() => g.update(bytesOf(1)), Error, "closed");
  assertThrows(() => g.digest(), Error, "closed");
  await g[Symbol.asyncDispose]();
});

Deno.test("hexToBytes turns a hex digest into its bytes", () => {
  const d = createHash("sha256").update("x").digest();
  assertEquals(hexToBytes(d.toString("hex")), new Uint8Array(d));
});
