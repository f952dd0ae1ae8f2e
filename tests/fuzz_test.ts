/**
 * Generative fuzzing of the frame decoder, the header validators and a live
 * session's dispatch. Inputs are random and mutated frames from a seeded
 * generator; the only allowed outcomes are a frame (or a closed session) and
 * a {@linkcode ProtocolError} — never another exception, never a hang.
 *
 * CI runs a fixed seed. A longer run on demand:
 * `PARLEY_FUZZ_ITERATIONS=200000 PARLEY_FUZZ_SEED=42 deno task test tests/fuzz_test.ts`
 * (a failure prints the seed and iteration to reproduce it).
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { encodeFrame, FrameDecoder, type OutHeader } from "../protocol/frame_codec.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { validateHandshake, validateHeader } from "../protocol/messages.ts";
import { FrameReader, type Transport } from "../protocol/transport.ts";
import { Session } from "../protocol/session.ts";
import { MAX_HEADER, NONCE_LENGTH } from "../protocol/limits.ts";

const ITERATIONS = Number(Deno.env.get("PARLEY_FUZZ_ITERATIONS") ?? 3000);
const SEED = Number(Deno.env.get("PARLEY_FUZZ_SEED") ?? 0x5eed);

/** A small seeded generator (xorshift32); all state lives in the instance. */
class Prng {
  #s: number;
  constructor(seed: number) {
    this.#s = (seed >>> 0) || 0x9e3779b9;
  }
  /** Uniform 32-bit unsigned integer. */
  u32(): number {
    let x = this.#s;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#s = x >>> 0;
    return this.#s;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return n <= 0 ? 0 : this.u32() % n;
  }
  chance(p: number): boolean {
    return this.u32() / 2 ** 32 < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

const TYPES = [
  "req",
  "res",
  "ev",
  "data",
  "win",
  "rst",
  "ping",
  "pong",
  "error",
  "hello",
  "challenge",
  "auth",
  "welcome",
  "bogus",
  "",
] as const;
const FIELDS = [
  "id",
  "op",
  "args",
  "s",
  "fin",
  "ok",
  "data",
  "code",
  "msg",
  "ev",
  "n",
  "v",
  "user",
  "nonce",
  "proof",
  "maxBody",
  "win",
  "maxStreams",
  "mac",
] as const;

/** A random JSON value of bounded depth, biased towards the edge cases validators check. */
function value(r: Prng, depth = 0): unknown {
  switch (r.int(depth > 2 ? 9 : 11)) {
    case 0:
      return r.int(10);
    case 1:
      return r.pick([-1, 0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 53, 1.5, -0, 1e300, 65_537]);
    case 2:
      return r.pick(["", "diag.echo", "x".repeat(65), "ab".repeat(32), "AB".repeat(32), "\u0000"]);
    case 3:
      return r.chance(0.5);
    case 4:
      return null;
    case 5:
      return "0123456789abcdef".repeat(r.int(5));
    case 6:
      return String.fromCharCode(...Array.from({ length: r.int(8) }, () => r.int(0xd800)));
    case 7:
      return r.int(1 << 20);
    case 8:
      return undefined;
    case 9:
      return Array.from({ length: r.int(4) }, () => value(r, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = r.int(4); i > 0; i--) o[r.pick([...FIELDS, "s", "c"])] = value(r, depth + 1);
      return o;
    }
  }
}

/** A plausible header: a known type with mostly right, sometimes wrong fields. */
function header(r: Prng): OutHeader {
  const h: OutHeader = { t: r.pick(TYPES) };
  const good: Record<string, () => unknown> = {
    id: () => r.int(100),
    op: () => r.pick(["diag.echo", "diag.sink", "diag.stream", "no.such"]),
    args: () => ({ a: r.int(9) }),
    s: () => r.int(12),
    fin: () => r.chance(0.5),
    ok: () => r.chance(0.5),
    data: () => ({ x: r.int(9) }),
    code: () => "bad_request",
    msg: () => "m",
    ev: () => "chat.msg",
    n: () => 1 + r.int(1 << 20),
    v: () => 1,
    user: () => "ada",
    nonce: () => "ab".repeat(NONCE_LENGTH),
    proof: () => "cd".repeat(32),
    maxBody: () => 1 << 20,
    win: () => ({ s: 1 << 20, c: 1 << 22 }),
    maxStreams: () => 8,
    mac: () => true,
  };
  for (const f of FIELDS) {
    if (r.chance(0.35)) h[f] = r.chance(0.8) ? good[f]!() : value(r);
  }
  return h;
}

/** A mutated copy of `bytes`: flips, overwrites, inserts, deletes, truncations, length edits. */
function mutate(r: Prng, bytes: Uint8Array): Uint8Array {
  let b = bytes.slice();
  for (let k = 1 + r.int(4); k > 0; k--) {
    switch (r.int(7)) {
      case 0:
        if (b.length) b[r.int(b.length)]! ^= 1 << r.int(8);
        break;
      case 1:
        if (b.length) b[r.int(b.length)] = r.int(256);
        break;
      case 2: {
        const at = r.int(b.length + 1);
        b = new Uint8Array([...b.subarray(0, at), ...r.bytes(1 + r.int(8)), ...b.subarray(at)]);
        break;
      }
      case 3: {
        const at = r.int(b.length + 1);
        b = new Uint8Array([...b.subarray(0, at), ...b.subarray(at + 1 + r.int(8))]);
        break;
      }
      case 4:
        b = b.subarray(0, r.int(b.length + 1));
        break;
      case 5:
        if (b.length >= 4) {
          new DataView(b.buffer, b.byteOffset).setUint32(
            0,
            r.pick([0, 1, MAX_HEADER, MAX_HEADER + 1, 2 ** 32 - 1, r.u32(), b.length - 4]),
          );
        }
        break;
      default:
        b = new Uint8Array([...b, ...b]);
    }
  }
  return b;
}

/** One fuzz input: a sequence of frames, some mutated, some pure noise. */
function input(r: Prng): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let n = 1 + r.int(4); n > 0; n--) {
    const h = header(r);
    const body = r.chance(0.3) ? r.bytes(r.int(64)) : undefined;
    let bytes: Uint8Array;
    try {
      bytes = encodeFrame(h, body);
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      continue;
    }
    const kind = r.int(10);
    parts.push(kind < 4 ? bytes : kind < 9 ? mutate(r, bytes) : r.bytes(r.int(40)));
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Feeds `bytes` in random chunks; returns the frames, or the ProtocolError that ended them. */
function decodeAll(r: Prng, bytes: Uint8Array, tagLength: number, maxBody?: number) {
  const dec = new FrameDecoder({ maxBody: maxBody ?? r.pick([0, 16, 1 << 20]), tagLength });
  const frames = [];
  let off = 0;
  let steps = 0;
  try {
    while (off < bytes.length) {
      const n = 1 + r.int(Math.min(bytes.length - off, 1 + r.int(64)));
      dec.push(bytes.slice(off, off + n));
      off += n;
      for (let f = dec.next(); f; f = dec.next()) {
        frames.push(f);
        // Every frame consumes at least 5 bytes, so this bounds the loop.
        assert(++steps <= bytes.length, "decoder returned more frames than the input can hold");
      }
    }
    return { frames, error: undefined };
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw e;
    return { frames, error: e };
  }
}

function _only(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw e;
  }
}

function _fail(i: number, e: unknown): never {
  throw new Error(
    `fuzz failure at seed ${SEED}, iteration ${i} (rerun with PARLEY_FUZZ_SEED=${SEED}): ${
      (e as Error)?.stack ?? e
    }`,
  );
}

Deno.test("fuzzed frames decode to frames or a ProtocolError, never a crash", () => {
  const r = new Prng(SEED);
  for (let i = 0; i < ITERATIONS; i++) {
    try {
      const bytes = input(r);
      const { frames } = decodeAll(r, bytes, r.chance(0.3) ? 32 : 0);
      for (const f of frames) {
        // Validators may mutate their input (defaults), so each gets a copy.
        _only(() => validateHeader(structuredClone(f.header)));
        _only(() => validateHandshake(structuredClone(f.header), NONCE_LENGTH));
      }
    } catch (e) {
      _fail(i, e);
    }
  }
});

Deno.test("random headers through every validator give a header or a ProtocolError", () => {
  const r = new Prng(SEED ^ 0xa5a5);
  let accepted = 0;
  for (let i = 0; i < ITERATIONS * 3; i++) {
    const h = header(r) as never;
    try {
      validateHeader(structuredClone(h));
      accepted++;
    } catch (e) {
      if (!(e instanceof ProtocolError)) _fail(i, e);
    }
    try {
      validateHandshake(structuredClone(h), NONCE_LENGTH);
    } catch (e) {
      if (!(e instanceof ProtocolError)) _fail(i, e);
    }
  }
  assert(accepted > 0, "the generator should also produce valid headers");
});

Deno.test("valid frames round-trip through the decoder whatever the chunking", () => {
  const r = new Prng(SEED ^ 0x1234);
  for (let i = 0; i < ITERATIONS; i++) {
    const h: OutHeader = { t: "req", id: r.int(1000), op: "diag.echo", args: { v: value(r) ?? 0 } };
    const body = r.bytes(r.int(100));
    const wire = encodeFrame(h, body);
    const { frames, error } = decodeAll(r, wire, 0, 1 << 20);
    if (error) _fail(i, error);
    assertEquals(frames.length, 1);
    const { len: _len, ...rest } = frames[0]!.header;
    assertEquals(rest, JSON.parse(JSON.stringify(h)));
    assertEquals(frames[0]!.body, body);
  }
});

/** An in-memory transport: the test writes bytes in, the session's writes are discarded. */
class MemoryTransport implements Transport {
  #chunks: Uint8Array[] = [];
  #ended = false;
  #wake: (() => void) | undefined;
  closed = false;
  feed(b: Uint8Array): void {
    this.#chunks.push(b);
    this.#wake?.();
  }
  end(): void {
    this.#ended = true;
    this.#wake?.();
  }
  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#ended || this.closed) return null;
      await new Promise<void>((r) => (this.#wake = r));
      this.#wake = undefined;
    }
    const c = this.#chunks.shift()!;
    const n = Math.min(c.length, p.length);
    p.set(c.subarray(0, n));
    if (n < c.length) this.#chunks.unshift(c.subarray(n));
    return n;
  }
  write(p: Uint8Array): Promise<number> {
    return this.closed ? Promise.reject(new Error("closed")) : Promise.resolve(p.length);
  }
  close(): void {
    this.closed = true;
    this.#wake?.();
  }
}

Deno.test("a session fed fuzzed frames stays up or closes with a protocol error", async () => {
  const r = new Prng(SEED ^ 0x7777);
  const rounds = Math.max(20, Math.floor(ITERATIONS / 20));
  for (let i = 0; i < rounds; i++) {
    const transport = new MemoryTransport();
    const session = new Session({
      role: "server",
      transport,
      reader: new FrameReader(transport, { maxBody: 1 << 20 }),
      sendMac: undefined,
      recvMac: undefined,
      maxBody: 1 << 20,
      localWindow: { s: 256 * 1024, c: 1024 * 1024 },
      peerWindow: { s: 256 * 1024, c: 1024 * 1024 },
      maxStreams: 4,
      onRequest: async (req) => {
        if (req.stream) { for (let b = await req.stream.read(); b; b = await req.stream.read()); }
        return req.args;
      },
    });
    for (let k = 0; k < 10; k++) transport.feed(r.chance(0.5) ? input(r) : encodeFrame(header(r)));
    transport.end();
    const why = await session.closed;
    if (why !== undefined && !(why instanceof ProtocolError) && why.name !== "RemoteError") {
      _fail(i, why);
    }
    await session.close();
  }
});
