/**
 * SHA-256 off the main thread: {@linkcode Sha256Pipeline} feeds bytes to a
 * Web Worker that hashes them with `node:crypto`, so a transfer's checksum
 * runs next to the frame MAC and the I/O instead of after them. The queue is
 * bounded (`update` waits while too many bytes are in flight), so memory stays
 * small however fast the caller produces.
 *
 * The worker's code is inline (a `blob:` module), so it needs no file read
 * permission and nothing extra when the program is compiled into one
 * executable.
 *
 * @example
 * ```ts
 * import { Sha256Pipeline } from "./sha256_worker.ts";
 * await using hash = new Sha256Pipeline();
 * await hash.update(new TextEncoder().encode("abc"));
 * const hex = await hash.digest();
 * if (!hex.startsWith("ba7816bf")) throw new Error("wrong digest");
 * ```
 *
 * @module
 */

/** The worker: hashes each chunk it gets, acknowledges it, and answers `digest`. */
const _SOURCE = `import { createHash } from "node:crypto";
const hash = createHash("sha256");
self.onmessage = (e) => {
  const m = e.data;
  if (m instanceof Uint8Array) {
    hash.update(m);
    self.postMessage({ t: "ack", n: m.byteLength });
  } else if (m && m.t === "digest") {
    self.postMessage({ t: "digest", hex: hash.digest("hex") });
  }
};
`;

type _Reply = { t: "ack"; n: number } | { t: "digest"; hex: string };

/** Options for {@linkcode Sha256Pipeline}. */
export interface Sha256PipelineOptions {
  /** Most bytes queued for the worker before `update` waits. Default 8 MiB. */
  maxInFlightBytes?: number;
}

/** Incremental SHA-256 computed in a worker thread. */
export class Sha256Pipeline implements AsyncDisposable {
  #worker: Worker | undefined;
  #limit: number;
  #inFlight = 0;
  #waiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  #digest: PromiseWithResolvers<string> | undefined;
  #error: Error | undefined;
  #finished = false;

  constructor(options: Sha256PipelineOptions = {}) {
    this.#limit = options.maxInFlightBytes ?? 8 * 1024 * 1024;
    const url = URL.createObjectURL(new Blob([_SOURCE], { type: "text/javascript" }));
    try {
      this.#worker = new Worker(url, { type: "module", name: "sha256" });
    } finally {
      URL.revokeObjectURL(url);
    }
    this.#worker.onmessage = (e: MessageEvent<_Reply>) => this.#onReply(e.data);
    this.#worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#fail(new Error(`checksum worker failed: ${e.message}`));
    };
    this.#worker.onmessageerror = () => this.#fail(new Error("checksum worker sent garbage"));
  }

  /** Bytes handed to the worker and not yet hashed. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Adds a copy of `bytes` to the hash (the caller may reuse `bytes` at once).
   * Resolves when the queue has room again.
   */
  async update(bytes: Uint8Array): Promise<void> {
    this.#check();
    if (bytes.byteLength === 0) return;
    const copy = bytes.slice();
    this.#inFlight += copy.byteLength;
    this.#worker!.postMessage(copy, [copy.buffer]);
    while (this.#inFlight > this.#limit) {
      await new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
      this.#check();
    }
  }

  /** Finishes the hash: resolves with lower-case hex once every byte is hashed. */
  digest(): Promise<string> {
    this.#check();
    this.#finished = true;
    this.#digest = Promise.withResolvers<string>();
    this.#worker!.postMessage({ t: "digest" });
    return this.#digest.promise;
  }

  /** Stops the worker; pending calls reject. Idempotent. */
  close(): void {
    if (!this.#worker) return;
    this.#fail(new Error("checksum pipeline closed"));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await Promise.resolve();
  }

  #check(): void {
    if (this.#error) throw this.#error;
    if (this.#finished) throw new Error("checksum pipeline already finished");
  }

  #onReply(m: _Reply): void {
    if (m.t === "ack") {
      this.#inFlight -= m.n;
      if (this.#inFlight <= this.#limit) {
        const waiters = this.#waiters;
        this.#waiters = [];
        for (const w of waiters) w.resolve();
      }
      return;
    }
    const d = this.#digest;
    this.#digest = undefined;
    this.#terminate();
    d?.resolve(m.hex);
  }

  #fail(err: Error): void {
    this.#error ??= err;
    this.#terminate();
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.reject(this.#error);
    const d = this.#digest;
    this.#digest = undefined;
    d?.reject(this.#error);
  }

  #terminate(): void {
    this.#worker?.terminate();
    this.#worker = undefined;
  }
}

/** Hex to bytes (for a digest). */
export function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
