/**
 * Frame codec: `u32 BE header length | UTF-8 JSON header | body [| MAC]`.
 *
 * The decoder is a push-parser: feed it bytes with {@linkcode FrameDecoder.push}
 * and pull complete frames with {@linkcode FrameDecoder.next}. It does no I/O.
 * Every limit is checked before the memory for the part is allocated.
 *
 * @example
 * ```ts
 * import { encodeFrame, FrameDecoder } from "./frame_codec.ts";
 * const bytes = encodeFrame({ t: "ping", id: 1 });
 * const dec = new FrameDecoder();
 * dec.push(bytes);
 * const frame = dec.next();
 * if (frame?.header.t !== "ping") throw new Error("round trip failed");
 * ```
 *
 * @module
 */
import { ProtocolError } from "./errors.ts";
import { DEFAULT_MAX_BODY, MAX_HEADER } from "./limits.ts";

/** A header as it appears on the wire: a JSON object with a string `t`. */
export type RawHeader = Record<string, unknown> & { t: string; len?: number };

/** A header to encode: any JSON object with a string `t`. */
export type OutHeader = { t: string; [field: string]: unknown };

/** One decoded frame. */
export interface DecodedFrame {
  /** Parsed header. */
  header: RawHeader;
  /** Header bytes exactly as received (needed for the MAC). */
  headerBytes: Uint8Array;
  /** Body bytes (empty when the header has no `len`). */
  body: Uint8Array;
  /** MAC trailer when the decoder expects one, otherwise undefined. */
  tag: Uint8Array | undefined;
}

/** Options for {@linkcode FrameDecoder}. */
export interface FrameDecoderOptions {
  /** Largest header in bytes. Default 64 KiB. */
  maxHeader?: number;
  /** Largest body in bytes. Default 1 MiB. */
  maxBody?: number;
  /** Bytes of MAC trailer after each frame. Default 0. */
  tagLength?: number;
}

const _encoder = new TextEncoder();
const _utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const _EMPTY = new Uint8Array(0);

/**
 * Encodes a frame without a MAC trailer. The body length is written into the
 * header's `len` field (omitted when the body is empty).
 */
export function encodeFrame(header: OutHeader, body?: Uint8Array): Uint8Array {
  const headerBytes = encodeHeader(header, body?.byteLength ?? 0);
  const bodyLen = body?.byteLength ?? 0;
  const out = new Uint8Array(4 + headerBytes.byteLength + bodyLen);
  new DataView(out.buffer).setUint32(0, headerBytes.byteLength);
  out.set(headerBytes, 4);
  if (body && bodyLen > 0) out.set(body, 4 + headerBytes.byteLength);
  return out;
}

/** Serialises a header, setting `len` to the body length when non-zero. */
export function encodeHeader(header: OutHeader, bodyLength: number): Uint8Array {
  const obj = bodyLength > 0 ? { ...header, len: bodyLength } : header;
  const bytes = _encoder.encode(JSON.stringify(obj));
  if (bytes.byteLength > MAX_HEADER) {
    throw new ProtocolError(
      "frame_too_large",
      `header of ${bytes.byteLength} bytes exceeds 64 KiB`,
    );
  }
  return bytes;
}

/** Push-parser for frames. */
export class FrameDecoder {
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #maxHeader: number;
  #maxBody: number;
  #tagLength: number;
  #pending: { header: RawHeader; headerBytes: Uint8Array } | undefined;

  constructor(options: FrameDecoderOptions = {}) {
    this.#maxHeader = options.maxHeader ?? MAX_HEADER;
    this.#maxBody = options.maxBody ?? DEFAULT_MAX_BODY;
    this.#tagLength = options.tagLength ?? 0;
  }

  /** Bytes received but not yet returned as frames. */
  get buffered(): number {
    return this.#buffered;
  }

  /** Sets the body limit (after negotiation). */
  set maxBody(n: number) {
    this.#maxBody = n;
  }

  /** Sets the MAC trailer length; applies to the next frame not yet started. */
  set tagLength(n: number) {
    this.#tagLength = n;
  }

  /**
   * Bytes still missing from the frame whose header has been read (its body
   * and tag), or 0 when no frame is under way.
   */
  get missing(): number {
    if (this.#pending === undefined) return 0;
    return Math.max(0, (this.#pending.header.len ?? 0) + this.#tagLength - this.#buffered);
  }

  /**
   * Copies the bytes held to the start of `into` and lets go of them; the
   * caller pushes `into` back once it has read the rest into it (a frame
   * read in place: its body then comes out as a view of `into`, not a copy
   * of many reads). Returns how many bytes were copied.
   */
  drainInto(into: Uint8Array): number {
    let off = 0;
    for (const c of this.#chunks) {
      into.set(c, off);
      off += c.byteLength;
    }
    this.#chunks = [];
    this.#buffered = 0;
    return off;
  }

  /** Adds received bytes. The decoder keeps a reference: don't reuse `chunk`. */
  push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.byteLength;
  }

  /**
   * Returns the next complete frame, or undefined when more bytes are needed.
   * Throws {@linkcode ProtocolError} on a malformed frame; the stream is then
   * unusable.
   */
  next(): DecodedFrame | undefined {
    if (this.#pending === undefined) {
      if (this.#buffered < 4) return undefined;
      const headerLength = this.#peekU32();
      if (headerLength === 0) throw new ProtocolError("bad_frame", "header length is zero");
      if (headerLength > this.#maxHeader) {
        throw new ProtocolError(
          "frame_too_large",
          `header length ${headerLength} exceeds the limit of ${this.#maxHeader}`,
        );
      }
      if (this.#buffered < 4 + headerLength) return undefined;
      this.#take(4);
      const headerBytes = this.#take(headerLength);
      this.#pending = { header: parseHeader(headerBytes, this.#maxBody), headerBytes };
    }
    const { header, headerBytes } = this.#pending;
    const bodyLength = header.len ?? 0;
    if (this.#buffered < bodyLength + this.#tagLength) return undefined;
    this.#pending = undefined;
    const body = bodyLength > 0 ? this.#take(bodyLength) : _EMPTY;
    const tag = this.#tagLength > 0 ? this.#take(this.#tagLength) : undefined;
    return { header, headerBytes, body, tag };
  }

  #peekU32(): number {
    const first = this.#chunks[0]!;
    if (first.byteLength >= 4) {
      return ((first[0]! << 24) >>> 0) + (first[1]! << 16) + (first[2]! << 8) + first[3]!;
    }
    let value = 0;
    let got = 0;
    for (const c of this.#chunks) {
      for (let i = 0; i < c.byteLength && got < 4; i++, got++) value = value * 256 + c[i]!;
      if (got === 4) break;
    }
    return value;
  }

  #take(n: number): Uint8Array {
    this.#buffered -= n;
    const first = this.#chunks[0]!;
    if (first.byteLength === n) {
      this.#chunks.shift();
      return first;
    }
    if (first.byteLength > n) {
      this.#chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      const c = this.#chunks[0]!;
      const want = n - off;
      if (c.byteLength <= want) {
        out.set(c, off);
        off += c.byteLength;
        this.#chunks.shift();
      } else {
        out.set(c.subarray(0, want), off);
        this.#chunks[0] = c.subarray(want);
        off += want;
      }
    }
    return out;
  }
}

/**
 * Parses and checks a header: UTF-8, a JSON object, a string `t`, a sane
 * `len`. `ascii`, when given, is `bytes` as text, which the caller knows to
 * be all ASCII (so valid UTF-8): it spares decoding them again.
 */
export function parseHeader(bytes: Uint8Array, maxBody: number, ascii?: string): RawHeader {
  let text: string;
  if (ascii !== undefined) {
    text = ascii;
  } else {
    try {
      text = _utf8.decode(bytes);
    } catch (cause) {
      throw new ProtocolError("bad_utf8", "header is not valid UTF-8", { cause });
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new ProtocolError("bad_json", "header is not valid JSON", { cause });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ProtocolError("bad_header", "header must be a JSON object");
  }
  // Repeated keys collapse when parsed, so equal counts mean none repeats;
  // only a mismatch pays for finding which key it was.
  const dup = _textKeys(text) === _parsedKeys(value) ? undefined : duplicateKey(text);
  if (dup !== undefined) {
    throw new ProtocolError(
      "bad_header",
      `header repeats the key ${JSON.stringify(dup).slice(0, 80)} in one object`,
    );
  }
  const header = value as Record<string, unknown>;
  if (typeof header.t !== "string" || header.t.length === 0) {
    throw new ProtocolError("bad_header", "header field t must be a non-empty string");
  }
  const len = header.len;
  if (len !== undefined) {
    if (typeof len !== "number" || !Number.isSafeInteger(len) || len < 0) {
      throw new ProtocolError("bad_header", "header field len must be a non-negative integer");
    }
    if (len > maxBody) {
      throw new ProtocolError(
        "frame_too_large",
        `body length ${len} exceeds the limit of ${maxBody}`,
      );
    }
  }
  return header as RawHeader;
}

/** Object keys in `text`, valid JSON (parsed already): strings that follow `{` or `,` in an object. */
function _textKeys(text: string): number {
  // inObject[d]: whether the container open at depth d is an object.
  const inObject = _depthStack(text.length);
  let depth = 0;
  let expectKey = false;
  let keys = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) { // "
      for (i++; text.charCodeAt(i) !== 0x22; i++) {
        if (text.charCodeAt(i) === 0x5c) i++; // backslash: skip the escaped character
      }
      if (expectKey) {
        keys++;
        expectKey = false;
      }
    } else if (c === 0x7b) { // {
      inObject[++depth] = 1;
      expectKey = true;
    } else if (c === 0x5b) { // [
      inObject[++depth] = 0;
      expectKey = false;
    } else if (c === 0x7d || c === 0x5d) { // } ]
      depth--;
      expectKey = false;
    } else if (c === 0x2c) { // ,
      expectKey = inObject[depth] === 1;
    }
  }
  return keys;
}

let _depths = new Uint8Array(256);

/** A scratch stack deep enough for any nesting in `n` characters. */
function _depthStack(n: number): Uint8Array {
  if (_depths.byteLength <= n) _depths = new Uint8Array(n + 1);
  return _depths;
}

/** A scratch stack for {@linkcode _parsedKeys}, left empty between calls. */
const _open: unknown[] = [];

/**
 * Own keys of every object in a parsed JSON value, without recursion
 * (nesting may be deep). `Object.values` and indexed loops, not `for…in`:
 * the latter costs several times more on the objects JSON.parse makes.
 */
function _parsedKeys(value: unknown): number {
  let n = 0;
  const open = _open;
  if (typeof value === "object" && value !== null) open.push(value);
  while (open.length > 0) {
    const v = open.pop()!;
    const items = Array.isArray(v) ? v : Object.values(v as object);
    if (items !== v) n += items.length;
    for (let i = 0; i < items.length; i++) {
      const x = items[i];
      if (typeof x === "object" && x !== null) open.push(x);
    }
  }
  return n;
}

/**
 * The first key that appears twice in one object of `text`, or undefined.
 * `text` must be valid JSON (it was parsed already). Keys are compared after
 * unescaping, so `"a"` and `"\u0061"` are the same key (PROTOCOL.md §2).
 */
export function duplicateKey(text: string): string | undefined {
  // One entry per open object or array: the keys seen so far (null for an
  // array) and whether the next string is a key.
  const keys: (Set<string> | null)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) { // "
      const start = i + 1;
      let escaped = false;
      for (i = start; text.charCodeAt(i) !== 0x22; i++) {
        if (text.charCodeAt(i) === 0x5c) { // backslash
          escaped = true;
          i++;
        }
      }
      if (expectKey) {
        const raw = text.slice(start, i);
        const key = escaped ? JSON.parse(`"${raw}"`) as string : raw;
        const seen = keys[keys.length - 1]!;
        if (seen.has(key)) return key;
        seen.add(key);
        expectKey = false;
      }
    } else if (c === 0x7b) { // {
      keys.push(new Set());
      expectKey = true;
    } else if (c === 0x5b) { // [
      keys.push(null);
      expectKey = false;
    } else if (c === 0x7d || c === 0x5d) { // } ]
      keys.pop();
      expectKey = false;
    } else if (c === 0x2c) { // ,
      expectKey = keys[keys.length - 1] != null;
    }
  }
  return undefined;
}
