/**
 * HMAC-SHA256 for short messages, in plain TypeScript with the key's inner
 * and outer pad states computed once. The runtime's `createHmac` costs tens
 * of microseconds of fixed overhead per call, which dominates small control
 * frames (a chat message fanned out to a hundred clients is a hundred MACs);
 * this keyed form does a 300-byte frame in a few microseconds. Long bodies
 * still go to `node:crypto`, which is faster per byte. Both give the same
 * bytes, so the choice is invisible on the wire.
 *
 * @example
 * ```ts
 * import { HmacSha256 } from "./hmac_sha256.ts";
 * const mac = new HmacSha256(new Uint8Array(32));
 * const tag = mac.digest([new TextEncoder().encode("hello")]);
 * if (tag.byteLength !== 32) throw new Error("bad tag");
 * ```
 *
 * @module
 */

const _K = new Int32Array([
  0x428a2f98,
  0x71374491,
  0xb5c0fbcf,
  0xe9b5dba5,
  0x3956c25b,
  0x59f111f1,
  0x923f82a4,
  0xab1c5ed5,
  0xd807aa98,
  0x12835b01,
  0x243185be,
  0x550c7dc3,
  0x72be5d74,
  0x80deb1fe,
  0x9bdc06a7,
  0xc19bf174,
  0xe49b69c1,
  0xefbe4786,
  0x0fc19dc6,
  0x240ca1cc,
  0x2de92c6f,
  0x4a7484aa,
  0x5cb0a9dc,
  0x76f988da,
  0x983e5152,
  0xa831c66d,
  0xb00327c8,
  0xbf597fc7,
  0xc6e00bf3,
  0xd5a79147,
  0x06ca6351,
  0x14292967,
  0x27b70a85,
  0x2e1b2138,
  0x4d2c6dfc,
  0x53380d13,
  0x650a7354,
  0x766a0abb,
  0x81c2c92e,
  0x92722c85,
  0xa2bfe8a1,
  0xa81a664b,
  0xc24b8b70,
  0xc76c51a3,
  0xd192e819,
  0xd6990624,
  0xf40e3585,
  0x106aa070,
  0x19a4c116,
  0x1e376c08,
  0x2748774c,
  0x34b0bcb5,
  0x391c0cb3,
  0x4ed8aa4a,
  0x5b9cca4f,
  0x682e6ff3,
  0x748f82ee,
  0x78a5636f,
  0x84c87814,
  0x8cc70208,
  0x90befffa,
  0xa4506ceb,
  0xbef9a3f7,
  0xc67178f2,
]);

const _IV = new Int32Array([
  0x6a09e667,
  0xbb67ae85,
  0x3c6ef372,
  0xa54ff53a,
  0x510e527f,
  0x9b05688c,
  0x1f83d9ab,
  0x5be0cd19,
]);

/** Runs the SHA-256 compression function over 64-byte blocks of `data`. */
function _compress(state: Int32Array, w: Int32Array, data: Uint8Array, off: number): void {
  for (let i = 0; i < 16; i++) {
    const j = off + i * 4;
    w[i] = (data[j]! << 24) | (data[j + 1]! << 16) | (data[j + 2]! << 8) | data[j + 3]!;
  }
  for (let i = 16; i < 64; i++) {
    const x = w[i - 15]!;
    const y = w[i - 2]!;
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    w[i] = (w[i - 16]! + s0 + w[i - 7]! + s1) | 0;
  }
  let a = state[0]!, b = state[1]!, c = state[2]!, d = state[3]!;
  let e = state[4]!, f = state[5]!, g = state[6]!, h = state[7]!;
  for (let i = 0; i < 64; i++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const ch = (e & f) ^ (~e & g);
    const t1 = (h + S1 + ch + _K[i]! + w[i]!) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const maj = (a & b) ^ (a & c) ^ (b & c);
    const t2 = (S0 + maj) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  state[0] = (state[0]! + a) | 0;
  state[1] = (state[1]! + b) | 0;
  state[2] = (state[2]! + c) | 0;
  state[3] = (state[3]! + d) | 0;
  state[4] = (state[4]! + e) | 0;
  state[5] = (state[5]! + f) | 0;
  state[6] = (state[6]! + g) | 0;
  state[7] = (state[7]! + h) | 0;
}

/*
 * Working memory shared by every instance: a digest runs synchronously from
 * start to end, so no two can interleave. An instance keeps only its two
 * keyed states (64 bytes): a server holds two per connection, and idle
 * connections should cost little.
 */
const _STATE = new Int32Array(8);
const _W = new Int32Array(64);
const _BLOCK = new Uint8Array(64);

/** HMAC-SHA256 with a fixed key; reusable, not safe to share across concurrent calls (there are none in JS). */
export class HmacSha256 {
  /**
   * The inner (0–7) and outer (8–15) states after the padded key block: a
   * plain array, lighter than a typed array's buffer for a state held per
   * connection.
   */
  #keyed: number[];

  constructor(key: Uint8Array) {
    if (key.byteLength > 64) throw new RangeError("keys longer than 64 bytes are not supported");
    const pad = new Uint8Array(64);
    pad.set(key);
    for (let i = 0; i < 64; i++) pad[i]! ^= 0x36;
    const inner = Int32Array.from(_IV);
    _compress(inner, _W, pad, 0);
    for (let i = 0; i < 64; i++) pad[i]! ^= 0x36 ^ 0x5c;
    const outer = Int32Array.from(_IV);
    _compress(outer, _W, pad, 0);
    this.#keyed = [...inner, ...outer];
  }

  /** HMAC of the concatenation of `parts`. */
  digest(parts: Uint8Array[]): Uint8Array {
    const state = _STATE;
    const keyed = this.#keyed;
    for (let i = 0; i < 8; i++) state[i] = keyed[i]!;
    return this.outer(_hashFrom(state, 64, parts));
  }

  /**
   * The HMAC's outer hash over `inner`, the inner hash
   * SHA-256((key ⊕ ipad) | message) computed elsewhere (natively, for a long message).
   */
  outer(inner: Uint8Array): Uint8Array {
    const state = _STATE;
    const keyed = this.#keyed;
    for (let i = 0; i < 8; i++) state[i] = keyed[i + 8]!;
    return _hashFrom(state, 64, [inner]);
  }
}

/** Continues SHA-256 from `state` (after `prefix` bytes already hashed) over `parts`. */
function _hashFrom(state: Int32Array, prefix: number, parts: Uint8Array[]): Uint8Array {
  const block = _BLOCK;
  const w = _W;
  let fill = 0;
  let total = prefix;
  for (const p of parts) {
    total += p.byteLength;
    let off = 0;
    if (fill > 0) {
      const take = Math.min(64 - fill, p.byteLength);
      block.set(p.subarray(0, take), fill);
      fill += take;
      off = take;
      if (fill < 64) continue;
      _compress(state, w, block, 0);
      fill = 0;
    }
    while (p.byteLength - off >= 64) {
      _compress(state, w, p, off);
      off += 64;
    }
    if (off < p.byteLength) {
      block.set(p.subarray(off), 0);
      fill = p.byteLength - off;
    }
  }
  block[fill++] = 0x80;
  if (fill > 56) {
    block.fill(0, fill);
    _compress(state, w, block, 0);
    fill = 0;
  }
  block.fill(0, fill, 56);
  const bits = total * 8;
  const hi = Math.floor(bits / 0x100000000);
  const lo = bits >>> 0;
  block[56] = hi >>> 24;
  block[57] = (hi >>> 16) & 0xff;
  block[58] = (hi >>> 8) & 0xff;
  block[59] = hi & 0xff;
  block[60] = lo >>> 24;
  block[61] = (lo >>> 16) & 0xff;
  block[62] = (lo >>> 8) & 0xff;
  block[63] = lo & 0xff;
  _compress(state, w, block, 0);
  const out = new Uint8Array(32);
  for (let i = 0; i < 8; i++) {
    const v = state[i]!;
    out[i * 4] = v >>> 24;
    out[i * 4 + 1] = (v >>> 16) & 0xff;
    out[i * 4 + 2] = (v >>> 8) & 0xff;
    out[i * 4 + 3] = v & 0xff;
  }
  return out;
}
