/**
 * One multiplexed stream: a duplex byte channel with its own flow-control
 * credit. Created by {@linkcode Session.open} (locally) or handed to a request
 * handler (remotely opened).
 *
 * @module
 */
import { ProtocolError, RemoteError } from "./errors.ts";
import type { Hash } from "node:crypto";
import type { Json } from "./messages.ts";

/** A stream's running SHA-256 through a received chunk, and its state before the chunk. */
export interface RunningDigest {
  /** SHA-256 of the stream's data through the end of the chunk. */
  digest: Uint8Array;
  /** Copy of the hash state before the chunk, when kept. */
  before: Hash | undefined;
}

/** What a stream needs from its session. Implemented by `Session`. */
export interface StreamHost {
  /** The application consumed `n` received bytes of `stream`. */
  consumed(stream: MuxStream, n: number): void;
  /** `stream` has data or a fin to send. */
  wake(stream: MuxStream): void;
  /** Send a reset for `stream`. */
  reset(stream: MuxStream, code: string, msg: string): void;
}

interface _Pending {
  data: Uint8Array;
  off: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

/** A duplex stream inside a session. */
export class MuxStream {
  /** Stream id (odd: opened by the client, even: by the server). */
  readonly id: number;
  /** Operation named by the request that opened the stream. */
  readonly op: string;
  /** Arguments of that request. */
  readonly args: Json;

  /** @internal credit the peer still has for sending to us. */
  recvWindow: number;
  /** @internal received bytes consumed but not yet returned as credit. */
  unacked = 0;
  /** @internal credit we have for sending. */
  sendCredit: number;
  /** @internal set while the stream sits in the writer's round-robin. */
  scheduled = false;

  #host: StreamHost;
  #chunks: Uint8Array[] = [];
  /** The stream's running SHA-256 through the end of each chunk, when the session keeps it. */
  #digests: (RunningDigest | undefined)[] = [];
  #readDigest: RunningDigest | undefined;
  #lastChunk: Uint8Array | undefined;
  #sentDigest: Uint8Array | undefined;
  /** The session hashes this stream's data (`digest` feature, PROTOCOL.md §4.7). */
  #hashedIn = false;
  #hashedOut = false;
  #buffered = 0;
  #recvDone = false;
  #discard = false;
  #error: Error | undefined;
  #reader: { resolve: () => void } | undefined;
  #sendQueue: _Pending[] = [];
  #ended = false;
  #finSent = false;
  #readable: ReadableStream<Uint8Array> | undefined;
  #writable: WritableStream<Uint8Array> | undefined;
  #failed = Promise.withResolvers<Error>();
  #resetByPeer: { code: string; msg: string } | undefined;

  constructor(
    host: StreamHost,
    init: { id: number; op: string; args: Json; recvWindow: number; sendCredit: number },
  ) {
    this.#host = host;
    this.id = init.id;
    this.op = init.op;
    this.args = init.args;
    this.recvWindow = init.recvWindow;
    this.sendCredit = init.sendCredit;
  }

  /** Bytes received and not yet read. */
  get buffered(): number {
    return this.#buffered;
  }

  /** True once both directions are finished or the stream was reset. */
  get done(): boolean {
    return this.#error !== undefined ||
      (this.#recvDone && this.#chunks.length === 0 && this.#finSent);
  }

  /** True when our write side has been ended (or the stream failed). */
  get writeEnded(): boolean {
    return this.#ended || this.#error !== undefined;
  }

  /** True when the peer has finished sending (fin received) or the stream failed. */
  get readEnded(): boolean {
    return this.#recvDone || this.#error !== undefined;
  }

  /**
   * Resolves with the error once the stream fails (reset by either side, or
   * the session closed), even after the peer finished sending; never rejects.
   */
  get failed(): Promise<Error> {
    return this.#failed.promise;
  }

  /** The peer's `rst` (code and message) when the peer reset this stream. */
  get resetByPeer(): { code: string; msg: string } | undefined {
    return this.#resetByPeer;
  }

  /**
   * Whether the session hashes every byte this stream receives (the `digest`
   * feature, PROTOCOL.md §4.7, from the stream's first byte): then
   * {@linkcode readSha256} is the SHA-256 of all bytes read so far, and a
   * receiver need not hash them again.
   */
  get hashesReads(): boolean {
    return this.#hashedIn;
  }

  /** Whether the session hashes every byte this stream sends ({@linkcode sentSha256}). */
  get hashesWrites(): boolean {
    return this.#hashedOut;
  }

  /**
   * SHA-256 of every byte {@linkcode read} has returned so far, when
   * {@linkcode hashesReads}; undefined before the first byte or otherwise.
   */
  get readSha256(): Uint8Array | undefined {
    return this.#readDigest?.digest;
  }

  /**
   * SHA-256 of every byte read before the last chunk plus the first `n`
   * bytes of that chunk (hashing just those `n` bytes again), when
   * {@linkcode hashesReads}; undefined otherwise. For data whose meaning
   * changes inside a chunk, such as a file followed by its checksum.
   */
  readSha256At(n: number): Uint8Array | undefined {
    const d = this.#readDigest;
    const chunk = this.#lastChunk;
    if (d === undefined || chunk === undefined) return undefined;
    if (n === chunk.byteLength) return d.digest;
    if (d.before === undefined) return undefined;
    return new Uint8Array(d.before.copy().update(chunk.subarray(0, n)).digest());
  }

  /**
   * A copy of the running SHA-256 state through every byte {@linkcode read}
   * has returned so far, when {@linkcode hashesReads} and at least one chunk
   * was read; undefined otherwise. For a reader that goes on hashing bytes
   * that come after this stream's (a transfer resumed on a new stream).
   */
  readHashState(): Hash | undefined {
    const d = this.#readDigest;
    const chunk = this.#lastChunk;
    if (d?.before === undefined || chunk === undefined) return undefined;
    return d.before.copy().update(chunk);
  }

  /**
   * SHA-256 of every byte the writer has taken from {@linkcode write} so far
   * (all of them once the writes resolved), when {@linkcode hashesWrites};
   * undefined before the first byte or otherwise.
   */
  get sentSha256(): Uint8Array | undefined {
    return this.#sentDigest;
  }

  /** @internal the session hashes what this stream receives and sends. */
  hashedBySession(reads: boolean, writes: boolean): void {
    this.#hashedIn = reads;
    this.#hashedOut = writes;
  }

  /** @internal the running digest through the data the writer just took. */
  noteSent(digest: Uint8Array): void {
    this.#sentDigest = digest;
  }

  /** Reads the next chunk; null at the peer's end of data. Rejects on reset. */
  async read(): Promise<Uint8Array | null> {
    while (true) {
      const chunk = this.#chunks.shift();
      if (chunk) {
        this.#readDigest = this.#digests.shift();
        this.#lastChunk = chunk;
        this.#buffered -= chunk.byteLength;
        this.#host.consumed(this, chunk.byteLength);
        return chunk;
      }
      if (this.#error) throw this.#error;
      if (this.#recvDone) return null;
      await new Promise<void>((resolve) => (this.#reader = { resolve }));
    }
  }

  /**
   * Queues `data` for sending. Resolves once the writer has taken all of it,
   * so awaiting each write bounds what is buffered for this stream.
   */
  write(data: Uint8Array): Promise<void> {
    if (this.#error) return Promise.reject(this.#error);
    if (this.#ended) return Promise.reject(new TypeError("write after end"));
    if (data.byteLength === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#sendQueue.push({ data, off: 0, resolve, reject });
      this.#host.wake(this);
    });
  }

  /** Ends our write side (sends fin after queued data). Idempotent. */
  end(): void {
    if (this.#ended || this.#error) return;
    this.#ended = true;
    this.#host.wake(this);
  }

  /** @internal our side ended in the opening frame (its `fin` flag): nothing more to send. */
  endedByOpen(): void {
    this.#ended = true;
    this.#finSent = true;
  }

  /** Aborts both directions and tells the peer. Idempotent. */
  reset(code = "cancel", msg = ""): void {
    if (this.#error || this.done) return;
    this.#host.reset(this, code, msg);
    this.fail(new ProtocolError("stream_reset", msg || `stream reset (${code})`, { fatal: false }));
  }

  /** A WHATWG ReadableStream view of the receive side. */
  get readable(): ReadableStream<Uint8Array> {
    this.#readable ??= new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        const chunk = await this.read();
        if (chunk === null) controller.close();
        else controller.enqueue(chunk);
      },
      cancel: () => this.reset("cancel", "reader cancelled"),
    }, { highWaterMark: 0 });
    return this.#readable;
  }

  /** A WHATWG WritableStream view of the send side; close() ends it. */
  get writable(): WritableStream<Uint8Array> {
    this.#writable ??= new WritableStream<Uint8Array>({
      write: (chunk) => this.write(chunk),
      close: () => this.end(),
      abort: () => this.reset("cancel", "writer aborted"),
    }, { highWaterMark: 1 });
    return this.#writable;
  }

  /**
   * @internal nobody will read this stream any more: drops what is buffered
   * and, from now on, what arrives, returning its credit as if it was read.
   */
  discardIncoming(): void {
    if (this.#discard || this.#error) return;
    this.#discard = true;
    const n = this.#buffered;
    this.#chunks = [];
    this.#digests = [];
    this.#buffered = 0;
    this.#notify();
    if (n > 0) this.#host.consumed(this, n);
  }

  /**
   * @internal data arrived from the peer; `digest`: the stream's running
   * SHA-256 through `body` when the session keeps it. Data that does not come
   * with one (a body in the opening request) means the session's hash does
   * not cover all the stream's bytes.
   */
  receive(body: Uint8Array, fin: boolean, digest?: RunningDigest): void {
    if (this.#error) return;
    if (digest === undefined && body.byteLength > 0) this.#hashedIn = false;
    if (this.#discard) {
      if (fin) this.#recvDone = true;
      if (body.byteLength > 0) this.#host.consumed(this, body.byteLength);
      return;
    }
    if (body.byteLength > 0) {
      this.#chunks.push(body);
      this.#digests.push(this.#hashedIn ? digest : undefined);
      this.#buffered += body.byteLength;
    }
    if (fin) this.#recvDone = true;
    this.#notify();
  }

  /** @internal the stream failed (reset by the peer, or the session closed). */
  fail(error: Error): void {
    if (this.#error) return;
    this.#error = error;
    this.#failed.resolve(error);
    this.#buffered = 0;
    this.#chunks = [];
    this.#digests = [];
    for (const p of this.#sendQueue) p.reject(error);
    this.#sendQueue = [];
    this.#notify();
  }

  /** @internal the peer reset the stream. */
  remoteReset(code: string, msg: string): void {
    if (!this.#error) this.#resetByPeer = { code, msg };
    this.fail(new RemoteError(code, msg || `stream reset by peer (${code})`));
  }

  /** @internal whether the writer has something to send now. */
  get sendable(): boolean {
    if (this.#error || this.#finSent) return false;
    if (this.#sendQueue.length > 0) return this.sendCredit > 0;
    return this.#ended;
  }

  /**
   * @internal takes up to `max` bytes (already limited by credit) for one
   * data frame; `fin` is set when this frame ends the stream.
   */
  take(max: number): { body: Uint8Array; fin: boolean } | undefined {
    if (this.#error || this.#finSent) return undefined;
    const head = this.#sendQueue[0];
    if (head === undefined) {
      if (!this.#ended) return undefined;
      this.#finSent = true;
      return { body: new Uint8Array(0), fin: true };
    }
    const n = Math.min(max, head.data.byteLength - head.off);
    if (n <= 0) return undefined;
    const body = head.data.subarray(head.off, head.off + n);
    head.off += n;
    this.sendCredit -= n;
    if (head.off === head.data.byteLength) {
      this.#sendQueue.shift();
      head.resolve();
    }
    const fin = this.#ended && this.#sendQueue.length === 0;
    if (fin) this.#finSent = true;
    return { body, fin };
  }

  #notify(): void {
    const r = this.#reader;
    this.#reader = undefined;
    r?.resolve();
  }
}
