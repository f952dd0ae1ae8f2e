/**
 * The byte transport a session runs over. `Deno.Conn` (TCP, TLS, Unix socket)
 * satisfies it as is; tests may supply anything with the same shape.
 *
 * @module
 */
import { type DecodedFrame, FrameDecoder, type FrameDecoderOptions } from "./frame_codec.ts";
import { ProtocolError } from "./errors.ts";

/** A reliable, ordered byte stream. */
export interface Transport {
  /** Reads into `p`; resolves with the count, or null at end of stream. */
  read(p: Uint8Array): Promise<number | null>;
  /**
   * Writes some of `p`; resolves with the count written. The caller may reuse
   * `p` once the promise has resolved, so an implementation that keeps the
   * bytes for later must copy them.
   */
  write(p: Uint8Array): Promise<number>;
  /** Closes both directions. */
  close(): void;
}

/** Writes every byte of `p`. */
export async function writeAll(transport: Transport, p: Uint8Array): Promise<void> {
  let off = 0;
  while (off < p.byteLength) off += await transport.write(p.subarray(off));
}

const _MIN_READ = 1024;
const _MAX_READ = 1024 * 1024;
/** A frame missing at least this much is read in place (bulk data frames). */
const _IN_PLACE = 16 * 1024;

/**
 * Reads frames from a transport through a {@linkcode FrameDecoder}. The read
 * buffer starts small (idle connections stay cheap) and grows while reads
 * fill it (bulk transfers make few large reads).
 */
export class FrameReader {
  readonly decoder: FrameDecoder;
  #transport: Transport;
  #size = _MIN_READ;
  #spare: Uint8Array | undefined;

  constructor(transport: Transport, options: FrameDecoderOptions = {}) {
    this.#transport = transport;
    this.decoder = new FrameDecoder(options);
  }

  /** Returns the next frame, or null on a clean end of stream between frames. */
  async next(): Promise<DecodedFrame | null> {
    while (true) {
      const frame = this.decoder.next();
      if (frame) return frame;
      const missing = this.decoder.missing;
      if (missing >= _IN_PLACE) {
        // The rest of a large frame goes straight into one buffer of its size
        // (at most the body limit, as the decoder would have held anyway):
        // no read buffer per read, no copy of the pieces into a body later.
        const whole = new Uint8Array(this.decoder.buffered + missing);
        let off = this.decoder.drainInto(whole);
        while (off < whole.byteLength) {
          const n = await this.#transport.read(whole.subarray(off));
          if (n === null) {
            throw new ProtocolError("bad_frame", "connection closed in the middle of a frame");
          }
          off += n;
        }
        this.decoder.push(whole);
        continue;
      }
      const buf = this.#spare ?? new Uint8Array(this.#size);
      this.#spare = undefined;
      const n = await this.#transport.read(buf);
      if (n === null) {
        if (this.decoder.buffered > 0) {
          throw new ProtocolError("bad_frame", "connection closed in the middle of a frame");
        }
        return null;
      }
      if (n === buf.byteLength && this.#size < _MAX_READ) this.#size *= 2;
      else if (n < _MIN_READ && this.#size > _MIN_READ) this.#size = _MIN_READ;
      if (n < buf.byteLength / 4) {
        // Small read: copy out and keep the buffer for the next read.
        this.decoder.push(buf.slice(0, n));
        if (buf.byteLength === this.#size) this.#spare = buf;
      } else {
        this.decoder.push(buf.subarray(0, n));
      }
    }
  }
}
