import { assertEquals } from "@std/assert";
import { createHmac } from "node:crypto";
import { HmacSha256 } from "../../protocol/hmac_sha256.ts";
import { FrameMac } from "../../protocol/auth.ts";

/** A seeded generator so failures reproduce. */
function _prng(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

function _bytes(rand: () => number, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, () => Math.floor(rand() * 256));
}

function _native(key: Uint8Array, parts: Uint8Array[]): Uint8Array {
  const h = createHmac("sha256", key);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

Deno.test("the keyed HMAC-SHA256 matches node:crypto for every length around block edges", () => {
  const rand = _prng(7);
  const key = _bytes(rand, 32);
  const mac = new HmacSha256(key);
  for (let n = 0; n <= 200; n++) {
    const msg = _bytes(rand, n);
    assertEquals(mac.digest([msg]), _native(key, [msg]), `length ${n}`);
  }
});

Deno.test("the keyed HMAC-SHA256 matches node:crypto for messages split into parts", () => {
  const rand = _prng(11);
  for (let i = 0; i < 300; i++) {
    const key = _bytes(rand, 1 + Math.floor(rand() * 64));
    const parts = Array.from(
      { length: 1 + Math.floor(rand() * 4) },
      () => _bytes(rand, Math.floor(rand() * 300)),
    );
    assertEquals(new HmacSha256(key).digest(parts), _native(key, parts), `case ${i}`);
  }
});

Deno.test("FrameMac tags agree with the definition for small and large frames alike", () => {
  const rand = _prng(5);
  const key = _bytes(rand, 32);
  const mac = new FrameMac(key);
  for (let seq = 0n; seq < 40n; seq++) {
    const header = _bytes(rand, 10 + Math.floor(rand() * 900));
    // Bodies from none to past the 64 KiB gathered in one hash call.
    const size = seq % 3n === 0n
      ? Math.floor(rand() * 3000)
      : seq % 7n === 1n
      ? 60_000 + Number(seq) * 300
      : 0;
    const body = _bytes(rand, size);
    const prefix = new Uint8Array(12);
    const view = new DataView(prefix.buffer);
    view.setBigUint64(0, seq);
    view.setUint32(8, header.byteLength);
    assertEquals(mac.next(header, body), _native(key, [prefix, header, body]), `frame ${seq}`);
  }
});
