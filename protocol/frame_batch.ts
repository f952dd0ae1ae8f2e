/**
 * Batch frames (PROTOCOL.md §5.5): several body-less frames carried as the
 * body of one `batch` frame, under one MAC. Pure functions over bytes.
 *
 * @example
 * ```ts
 * import { encodeBatchBody, splitBatch } from "./frame_batch.ts";
 * const te = new TextEncoder();
 * const body = encodeBatchBody([te.encode('{"t":"ping","id":1}'), te.encode('{"t":"ping","id":2}')]);
 * if (splitBatch(body).length !== 2) throw new Error("round trip failed");
 * ```
 *
 * @module
 */
import { ProtocolError } from "./errors.ts";
import { parseHeader, type RawHeader } from "./frame_codec.ts";
import { MAX_HEADER } from "./limits.ts";

/**
 * Bytes as text, one character per byte ("latin1" is windows-1252 to the
 * Encoding Standard: bytes below 0x80 are those characters, every other
 * byte becomes a character at or above 0x80).
 */
const _charPerByte = new TextDecoder("latin1");
const _NON_ASCII = /[\u0080-\uffff]/;

/** One frame inside a batch: its header, parsed and checked as any header is. */
export interface InnerFrame {
  /** Parsed header. */
  header: RawHeader;
  /** Header bytes exactly as they are in the batch. */
  headerBytes: Uint8Array;
}

/**
 * The body of a `batch` frame (PROTOCOL.md §5.5) for the given encoded
 * headers: each as `u32 H | header`, in order, with no body and no tag.
 */
export function encodeBatchBody(headers: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const h of headers) size += 4 + h.byteLength;
  const out = new Uint8Array(size);
  let off = 0;
  for (const h of headers) {
    const n = h.byteLength;
    out[off] = n >>> 24;
    out[off + 1] = (n >>> 16) & 0xff;
    out[off + 2] = (n >>> 8) & 0xff;
    out[off + 3] = n & 0xff;
    out.set(h, off + 4);
    off += 4 + n;
  }
  return out;
}

/**
 * Splits a `batch` frame's body into its frames, checking each as §2 checks
 * a frame: `H` from 1 to 64 KiB, the header bytes present, valid UTF-8 JSON
 * with a string `t`; an inner frame may carry no body (`len` absent or 0), a
 * batch holds at least one frame and nothing after its last. Throws
 * {@linkcode ProtocolError}; the frame types are checked by the caller.
 */
export function splitBatch(body: Uint8Array, maxHeader = MAX_HEADER): InnerFrame[] {
  if (body.byteLength === 0) throw new ProtocolError("bad_header", "a batch holds no frame");
  // One decoding call for the whole batch, a character per byte: a header
  // that is all ASCII is that slice of it (UTF-8 and this agree there); any
  // other is decoded on its own, strictly, as a lone frame's header is.
  const chars = _charPerByte.decode(body);
  const out: InnerFrame[] = [];
  let off = 0;
  while (off < body.byteLength) {
    if (body.byteLength - off < 4) {
      throw new ProtocolError("bad_frame", "a batch ends inside a frame's length");
    }
    const n = ((body[off]! << 24) >>> 0) + (body[off + 1]! << 16) + (body[off + 2]! << 8) +
      body[off + 3]!;
    if (n === 0) throw new ProtocolError("bad_frame", "header length is zero");
    if (n > maxHeader) {
      throw new ProtocolError(
        "frame_too_large",
        `header length ${n} exceeds the limit of ${maxHeader}`,
      );
    }
    if (body.byteLength - off - 4 < n) {
      throw new ProtocolError("bad_frame", "a batch ends inside a frame's header");
    }
    const headerBytes = body.subarray(off + 4, off + 4 + n);
    const text = chars.slice(off + 4, off + 4 + n);
    const header = parseHeader(
      headerBytes,
      Number.MAX_SAFE_INTEGER,
      _NON_ASCII.test(text) ? undefined : text,
    );
    if (header.len !== undefined && header.len > 0) {
      throw new ProtocolError("bad_header", "a frame inside a batch carries no body");
    }
    off += 4 + n;
    out.push({ header, headerBytes });
  }
  return out;
}
