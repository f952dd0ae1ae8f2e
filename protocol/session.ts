/**
 * An authenticated, multiplexed session (PROTOCOL.md §6–§7): requests and
 * replies, events, and flow-controlled streams over one transport.
 *
 * The read loop never stops reading the socket, whatever the consumers do:
 * stream data is bounded by the credit we granted, so buffering it is safe,
 * and window updates keep arriving. The writer sends control frames ahead of
 * bulk data and round-robins streams in bounded chunks.
 *
 * @module
 */
import { type DecodedFrame, encodeHeader, type OutHeader } from "./frame_codec.ts";
import type { FrameMac } from "./auth.ts";
import { ProtocolError, RemoteError } from "./errors.ts";
import { type Header, type Json, type ReqHeader, validateHeader } from "./messages.ts";
import { MuxStream, type RunningDigest, type StreamHost } from "./mux_stream.ts";
import { type FrameReader, type Transport, writeAll } from "./transport.ts";
import { encodeBatchBody, splitBatch } from "./frame_batch.ts";
import { StreamDigests } from "./stream_digest.ts";
import { DEFAULT_CHUNK, MAX_WINDOW } from "./limits.ts";
import { truncateCodePoints } from "./text.ts";
import { setImmediate } from "node:timers";

/** A request received from the peer. */
export interface IncomingRequest {
  /** Request id (unique per direction). */
  id: number;
  /** Operation name, e.g. `chat.send`. */
  op: string;
  /** Operation arguments (a JSON object, not yet validated). */
  args: Json;
  /** The stream the request opened, if any. */
  stream: MuxStream | undefined;
}

/** Receive windows one side grants. */
export interface Windows {
  /** Initial credit per stream. */
  s: number;
  /** Initial credit for the whole connection. */
  c: number;
}

/**
 * A shared store of receive credit, e.g. one per user across all of that
 * user's connections. A session draws from it when it raises the credit it
 * grants its peer and gives it back when the session closes, so the bytes
 * all its sessions may have to buffer never exceed what the pool holds.
 */
export interface CreditPool {
  /** Takes up to `n` bytes; returns how many it could give (0 … `n`). */
  take(n: number): number;
  /** Takes `n` bytes even when that overdraws the pool (credit already granted). */
  charge(n: number): void;
  /** Gives back `n` bytes taken or charged before. */
  give(n: number): void;
  /**
   * The most credit one session should hold now (e.g. the pool split evenly
   * among its sessions). A session above it returns the excess to the pool
   * instead of granting it again. Default: no such bound.
   */
  fairShare?(): number;
}

/** Options for {@linkcode Session}. */
export interface SessionOptions {
  /** Which side we are; decides stream-id parity. */
  role: "client" | "server";
  /** Transport the handshake ran on. */
  transport: Transport;
  /** Reader positioned just after the handshake. */
  reader: FrameReader;
  /** MAC for frames we send; undefined when the MAC layer is off. */
  sendMac: FrameMac | undefined;
  /** MAC for frames we receive; undefined when the MAC layer is off. */
  recvMac: FrameMac | undefined;
  /** Largest body either side sends. */
  maxBody: number;
  /** Windows we grant the peer. */
  localWindow: Windows;
  /** Windows the peer grants us. */
  peerWindow: Windows;
  /** Cap on streams the peer may have open at once. */
  maxStreams: number;
  /** Close the session when this many control bytes wait to be sent. Default 8 MiB. */
  maxPendingBytes?: number;
  /**
   * The most connection credit to grant the peer. The session starts from
   * `localWindow.c` (what the handshake announced) and raises its grant up
   * to this once the peer uses its credit. Default `localWindow.c`.
   */
  maxConnectionWindow?: number;
  /**
   * Where connection credit comes from. The initial grant is charged to it;
   * raises are taken from it, and granted only as far as it has credit left.
   * Default: no pool (the session grants up to `maxConnectionWindow`).
   */
  creditPool?: CreditPool;
  /**
   * Most requests made with {@linkcode Session.call} that wait for a reply
   * at once; further calls wait in a local queue until a reply comes. A
   * server answers requests beyond its own cap with `busy`. Default 16.
   */
  maxOutgoingCalls?: number;
  /**
   * Both sides agreed to `batch` frames in the handshake (PROTOCOL.md §5.5):
   * we accept them, and send runs of control frames as one when frames carry
   * a MAC. Default false: a `batch` frame is then `unknown_type`.
   */
  batch?: boolean;
  /**
   * Both sides agreed to the `digest` feature (PROTOCOL.md §4.7): with the
   * MAC on, a `data` frame's tag covers its stream's running SHA-256 instead
   * of its body, and streams expose that hash ({@linkcode MuxStream.readSha256}).
   * Default false.
   */
  digest?: boolean;
  /** Handles requests from the peer; the resolved value is the reply's data. */
  onRequest?: (req: IncomingRequest) => Promise<unknown>;
  /** Receives events from the peer. */
  onEvent?: (ev: string, data: unknown) => void;
}

/** An event header serialised once, for {@linkcode Session.emitEncoded}. */
export interface EncodedEvent {
  /** The header bytes (`{"t":"ev","ev":…,"data":…}`). */
  readonly bytes: Uint8Array;
}

/** Serialises an event once; throws when it is larger than a header may be. */
export function encodeEvent(ev: string, data: unknown = null): EncodedEvent {
  return { bytes: encodeHeader({ t: "ev", ev, data }, 0) };
}

/** Lifecycle of a session. */
export type SessionState = "open" | "closing" | "closed";

const _EMPTY = new Uint8Array(0);
const _BATCH_BULK = 2 * DEFAULT_CHUNK;
const _SCRATCH_MIN = 64 * 1024;
const _SCRATCH_SIZE = _BATCH_BULK + _SCRATCH_MIN;

/**
 * Bulk batch buffers not in use, shared by every session of the process. A
 * writer takes one while it is busy and gives it back when it drains, so an
 * idle session holds none, and a transfer whose writer drains between
 * batches (a download paced by the disk) reuses warm memory instead of
 * touching a fresh megabyte for every batch. At most a few are kept.
 */
const _scratchPool: Uint8Array[] = [];
const _SCRATCH_POOL = 8;

function _takeScratch(size: number): Uint8Array {
  if (size <= _SCRATCH_SIZE && _scratchPool.length > 0) return _scratchPool.pop()!;
  return new Uint8Array(Math.max(size, _SCRATCH_SIZE));
}

function _giveScratch(buf: Uint8Array): void {
  if (buf.byteLength === _SCRATCH_SIZE && _scratchPool.length < _SCRATCH_POOL) {
    _scratchPool.push(buf);
  }
}

/**
 * `collection` without `key`, or undefined once it is empty: a session's
 * maps and sets exist only while they hold something.
 */
function _without<K, C extends { delete(key: K): boolean; readonly size: number }>(
  collection: C | undefined,
  key: K,
): C | undefined {
  collection?.delete(key);
  return collection?.size ? collection : undefined;
}

/** A multiplexed session. Use `await using` or call {@linkcode Session.close}. */
export class Session implements StreamHost {
  #o: SessionOptions;
  #state: SessionState = "open";
  #closeError: Error | undefined;
  #closed: Promise<Error | undefined>;
  #resolveClosed!: (e: Error | undefined) => void;
  #nextReqId = 1;
  #nextStreamId: number;
  #peerLastStreamId = 0;
  // The maps and sets below exist only while they hold something: an idle
  // connection then holds none of them (a server keeps thousands).
  #pendingReqs:
    | Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>
    | undefined;
  /** Ids of the peer's requests we have not answered yet (§5.1: unique while outstanding). */
  #peerReqs: Set<number> | undefined;
  #streams: Map<number, MuxStream> | undefined;
  #peerStreamCount = 0;
  #connRecvWindow: number;
  #connUnacked = 0;
  /** Credit this session holds: granted and unused, buffered unread, or consumed and not yet returned. */
  #connReserved: number;
  #connTarget: number;
  #callsOut = 0;
  #callQueue: (() => void)[] = [];
  #connSendCredit: number;
  #control: Uint8Array[] = [];
  #controlBytes = 0;
  #bulk: MuxStream[] = [];
  #writing = false;
  /** A pump is queued as a microtask (#wakeWriter). */
  #pumpDue = false;
  /** A pump is queued for the end of this turn of the event loop (#wakeWriter). */
  #turnDue = false;
  /** Set while a received batch is acted upon: the writer starts after it (#onBatch). */
  #holdWrites = false;
  #flushed: (() => void)[] = [];
  #scratch: Uint8Array | undefined;
  #pingId = 0;
  #pings: Map<number, { resolve: () => void; reject: (e: Error) => void }> | undefined;
  #lastActivity = Date.now();
  #writeSince: number | undefined;
  /** Whether data frames' MACs cover the stream's running SHA-256 (`digest` feature, §4.7), per direction. */
  #recvDigestsOn: boolean;
  #sendDigestsOn: boolean;
  /** Those running SHA-256 states by stream, made at the first data frame. */
  #recvDigests: StreamDigests | undefined;
  #sendDigests: StreamDigests | undefined;

  constructor(options: SessionOptions) {
    this.#o = options;
    this.#recvDigestsOn = options.digest === true && options.recvMac !== undefined;
    this.#sendDigestsOn = options.digest === true && options.sendMac !== undefined;
    this.#nextStreamId = options.role === "client" ? 1 : 2;
    this.#connRecvWindow = options.localWindow.c;
    this.#connReserved = options.localWindow.c;
    this.#connTarget = Math.max(options.localWindow.c, options.maxConnectionWindow ?? 0);
    options.creditPool?.charge(options.localWindow.c);
    this.#connSendCredit = options.peerWindow.c;
    this.#closed = new Promise((r) => (this.#resolveClosed = r));
    this.#readLoop();
  }

  /** Current lifecycle state. */
  get state(): SessionState {
    return this.#state;
  }

  /** Resolves when the session is closed, with the error that closed it, if any. */
  get closed(): Promise<Error | undefined> {
    return this.#closed;
  }

  /** Control bytes queued and not yet written. */
  get pendingBytes(): number {
    return this.#controlBytes;
  }

  /** Time (ms since epoch) the last frame arrived from the peer. */
  get lastActivity(): number {
    return this.#lastActivity;
  }

  /**
   * How long (ms) the current socket write has been waiting, 0 when none is:
   * a peer that stopped reading while data flows leaves it waiting.
   */
  writeWaitingMs(now = Date.now()): number {
    return this.#writeSince === undefined ? 0 : now - this.#writeSince;
  }

  /** Number of open streams. */
  get streamCount(): number {
    return this.#streams?.size ?? 0;
  }

  /** Connection credit the peer has granted us and we have not used yet. */
  get sendCredit(): number {
    return this.#connSendCredit;
  }

  /** Connection credit we hold for the peer (granted, buffered or awaiting return). */
  get recvReserved(): number {
    return this.#connReserved;
  }

  /**
   * Sends a request and resolves with the reply's data; rejects with
   * {@linkcode RemoteError}. At most `maxOutgoingCalls` wait for a reply at
   * once; the rest are sent, in order, as replies arrive.
   */
  async call(op: string, args: Json = {}): Promise<unknown> {
    const max = this.#o.maxOutgoingCalls ?? 16;
    if (this.#callsOut >= max || this.#callQueue.length > 0) {
      await new Promise<void>((r) => this.#callQueue.push(r));
    } else {
      this.#callsOut++;
    }
    try {
      return await this.#request(op, args, undefined, false);
    } finally {
      const next = this.#callQueue.shift();
      if (next) next(); // hands our slot on
      else this.#callsOut--;
    }
  }

  /**
   * Sends a request that opens a stream. `fin` closes our write side at once
   * (for requests that only receive data).
   */
  open(
    op: string,
    args: Json = {},
    options: { fin?: boolean } = {},
  ): { stream: MuxStream; result: Promise<unknown> } {
    const id = this.#nextStreamId;
    this.#nextStreamId += 2;
    const stream = new MuxStream(this, {
      id,
      op,
      args,
      recvWindow: this.#o.localWindow.s,
      sendCredit: this.#o.peerWindow.s,
    });
    stream.hashedBySession(this.#recvDigestsOn, this.#sendDigestsOn);
    (this.#streams ??= new Map()).set(id, stream);
    const fin = options.fin ?? false;
    if (fin) stream.endedByOpen();
    const result = this.#request(op, args, stream, fin);
    result.then(() => {}, (e) => {
      stream.fail(e);
      this.#reap(stream);
    });
    return { stream, result };
  }

  /** Sends a one-way event. */
  emit(ev: string, data: unknown = null): void {
    this.#sendControl({ t: "ev", ev, data });
  }

  /**
   * Sends an event encoded once with {@linkcode encodeEvent}: a broadcast to
   * many sessions serialises its JSON once instead of once per receiver.
   */
  emitEncoded(event: EncodedEvent): void {
    this.#queueControl(event.bytes);
  }

  /** Measures a round trip through the peer's read loop. */
  ping(): Promise<number> {
    const id = ++this.#pingId;
    const start = performance.now();
    return new Promise((resolve, reject) => {
      if (this.#state !== "open") {
        return reject(this.#closeError ?? new ProtocolError("closed", "session closed"));
      }
      (this.#pings ??= new Map()).set(id, {
        resolve: () => resolve(performance.now() - start),
        reject,
      });
      this.#sendControl({ t: "ping", id });
    });
  }

  /**
   * Closes the session: sends an `error` frame when `error` is a protocol
   * error, flushes queued frames (at most one second), closes the transport.
   * Idempotent. Never rejects.
   *
   * @neverRejects
   */
  async close(error?: Error): Promise<void> {
    if (this.#state !== "open") {
      await this.#closed;
      return;
    }
    this.#state = "closing";
    this.#closeError = error;
    if (error instanceof ProtocolError) {
      const msg = truncateCodePoints(error.message, 4096);
      this.#control.push(encodeHeader({ t: "error", code: error.code, msg }, 0));
      this.#wakeWriter();
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#flush(),
      new Promise<void>((r) => (timer = setTimeout(r, 1000))),
    ]);
    clearTimeout(timer);
    this.#shutdown(error);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // --- StreamHost -----------------------------------------------------------

  /** @internal */
  consumed(stream: MuxStream, n: number): void {
    if (this.#state !== "open") return;
    stream.unacked += n;
    if (stream.unacked >= this.#o.localWindow.s / 2 && !stream.readEnded) {
      stream.recvWindow += stream.unacked;
      this.#sendControl({ t: "win", s: stream.id, n: stream.unacked });
      stream.unacked = 0;
    }
    this.#connConsumed(n);
    this.#reap(stream);
  }

  /** @internal */
  wake(stream: MuxStream): void {
    if (!stream.scheduled) {
      stream.scheduled = true;
      this.#bulk.push(stream);
    }
    this.#wakeWriter();
  }

  /** @internal */
  reset(stream: MuxStream, code: string, msg: string): void {
    // The peer may still send data for it until it sees the rst: keep what verifies that.
    this.#recvDigests?.retire(stream.id);
    this.#sendDigests?.forget(stream.id);
    this.#connConsumed(stream.buffered);
    if (this.#streams?.get(stream.id) === stream) {
      this.#dropStream(stream.id);
    }
    this.#sendControl({ t: "rst", s: stream.id, code, msg: truncateCodePoints(msg, 1000) });
  }

  /**
   * Forgets stream `id`, which the map holds: the map goes when it empties,
   * and a stream the peer opened no longer counts against its limit.
   */
  #dropStream(id: number): void {
    this.#streams = _without(this.#streams, id);
    if (id % 2 !== this.#nextStreamId % 2) this.#peerStreamCount--;
  }

  // --- reading --------------------------------------------------------------

  /** Reads frames until the session closes; every failure closes it. @neverRejects */
  async #readLoop(): Promise<void> {
    try {
      while (this.#state !== "closed") {
        const frame = await this.#o.reader.next();
        if (frame === null) {
          this.#shutdown(new ProtocolError("closed", "connection closed by peer"));
          return;
        }
        const digest = this.#verify(frame);
        this.#lastActivity = Date.now();
        const h = validateHeader(frame.header);
        if (h.t === "batch") await this.#onBatch(frame.body);
        else if (h.t === "data") this.#onData(h.s, frame.body, h.fin === true, digest);
        else this.#dispatch(h, frame.body);
      }
    } catch (e) {
      if (this.#state === "closed") return;
      if (e instanceof ProtocolError) {
        await this.close(e);
      } else {
        const err = e instanceof Error ? e : new Error(String(e));
        this.#shutdown(
          new ProtocolError("closed", `connection lost: ${err.message}`, { cause: err }),
        );
      }
    }
  }

  /**
   * Checks a frame's tag (§4.6) before anything acts on it. Under the
   * `digest` feature a `data` frame's tag covers its stream's running SHA-256
   * instead of its body (§4.7): the body is hashed once, here, and the digest
   * returned for the stream's reader.
   */
  #verify(frame: DecodedFrame): RunningDigest | undefined {
    const mac = this.#o.recvMac;
    if (mac === undefined) return undefined;
    const h = frame.header;
    if (this.#recvDigestsOn && h.t === "data" && Number.isSafeInteger(h.s)) {
      // The state before the body too, while a reader waits for it (see MuxStream.readSha256At).
      const keep = this.#streams?.get(h.s as number)?.hashesReads === true;
      // Late data for streams gone here is still verified: keep as many states as streams may be open.
      const d = (this.#recvDigests ??= new StreamDigests(this.#o.maxStreams))
        .absorbKeeping(h.s as number, frame.body, h.fin === true, keep);
      mac.verify(frame.headerBytes, d.digest, frame.tag);
      return d;
    }
    mac.verify(frame.headerBytes, frame.body, frame.tag);
    return undefined;
  }

  /**
   * A `batch` frame (§5.5), its MAC already checked: each inner frame is
   * checked and acted upon in order, as if it had arrived on its own. Like
   * the read loop between frames, it lets pending microtasks run between
   * inner frames, so a request that completes at once (a refusal, a cached
   * answer) is done before the next one is admitted; the writer waits for
   * the end of the batch, so what it answers at once goes out together.
   */
  async #onBatch(body: Uint8Array): Promise<void> {
    if (!this.#o.batch) {
      throw new ProtocolError("unknown_type", 'frame type "batch" was not agreed in the handshake');
    }
    const frames = splitBatch(body);
    this.#holdWrites = true;
    try {
      for (const [i, inner] of frames.entries()) {
        const h = validateHeader(inner.header);
        if (h.t === "batch" || h.t === "data") {
          throw new ProtocolError("bad_header", `a ${h.t} frame inside a batch`);
        }
        this.#dispatch(h, _EMPTY);
        if (this.#state === "closed") return;
        if (i + 1 < frames.length) await null;
      }
    } finally {
      this.#holdWrites = false;
      this.#wakeWriter();
    }
  }

  #dispatch(h: Header, body: Uint8Array): void {
    switch (h.t) {
      case "data":
        return this.#onData(h.s, body, h.fin === true);
      case "win":
        return this.#onWin(h.s, h.n);
      case "req":
        return this.#onReq(h, body);
      case "res": {
        const p = this.#pendingReqs?.get(h.id);
        if (!p) throw new ProtocolError("bad_header", `reply to unknown request ${h.id}`);
        this.#pendingReqs = _without(this.#pendingReqs, h.id);
        if (h.ok) p.resolve(h.data);
        else p.reject(new RemoteError(h.code, h.msg));
        return;
      }
      case "ev":
        this.#o.onEvent?.(h.ev, h.data);
        return;
      case "rst": {
        const s = this.#streams?.get(h.s);
        // Gone or never opened (§5.4): nothing to abort, and no state to keep.
        this.#recvDigests?.forget(h.s); // the peer sends no more on it
        this.#sendDigests?.forget(h.s);
        if (!s) return;
        this.#dropStream(h.s);
        this.#connConsumed(s.buffered);
        s.remoteReset(h.code, h.msg);
        return;
      }
      case "ping":
        this.#sendControl({ t: "pong", id: h.id });
        return;
      case "pong":
        this.#pings?.get(h.id)?.resolve();
        this.#pings = _without(this.#pings, h.id);
        return;
      case "error":
        this.#shutdown(new RemoteError(h.code, h.msg));
        return;
    }
  }

  #onData(id: number, body: Uint8Array, fin: boolean, digest?: RunningDigest): void {
    const n = body.byteLength;
    if (n > this.#connRecvWindow) {
      throw new ProtocolError("flow_control", "data exceeds the connection window");
    }
    this.#connRecvWindow -= n;
    const stream = this.#streams?.get(id);
    if (!stream) {
      const mine = id % 2 === this.#nextStreamId % 2;
      const known = mine ? id < this.#nextStreamId : id <= this.#peerLastStreamId;
      if (!known || id === 0) {
        throw new ProtocolError("bad_header", `data for unknown stream ${id}`);
      }
      this.#connConsumed(n); // late data for a stream we closed: drop it, keep credit flowing
      this.#recvDigests?.retire(id); // a refused stream's data: its state is bounded like a reset's
      return;
    }
    if (stream.readEnded) {
      throw new ProtocolError("bad_header", `data after end of stream ${id}`);
    }
    if (n > stream.recvWindow) {
      throw new ProtocolError("flow_control", `data exceeds the window of stream ${id}`);
    }
    stream.recvWindow -= n;
    stream.receive(body, fin, digest);
    this.#reap(stream);
  }

  #onWin(id: number, n: number): void {
    if (id === 0) {
      if (this.#connSendCredit + n > MAX_WINDOW) {
        throw new ProtocolError("flow_control", "connection window overflow");
      }
      this.#connSendCredit += n;
      for (const s of this.#streams?.values() ?? []) if (s.sendable) this.wake(s);
    } else {
      const stream = this.#streams?.get(id);
      // Gone or never opened (§5.4): no credit is kept for a stream not open.
      if (!stream) return;
      if (stream.sendCredit + n > MAX_WINDOW) {
        throw new ProtocolError("flow_control", `window overflow on stream ${id}`);
      }
      stream.sendCredit += n;
      if (stream.sendable) this.wake(stream);
    }
    this.#wakeWriter();
  }

  #onReq(h: ReqHeader, body: Uint8Array): void {
    if (this.#peerReqs?.has(h.id)) {
      throw new ProtocolError(
        "bad_header",
        `request id ${h.id} is already in use by a request not yet answered`,
      );
    }
    let stream: MuxStream | undefined;
    if (h.s !== undefined) {
      const peerParity = this.#o.role === "client" ? 0 : 1;
      if (h.s === 0 || h.s % 2 !== peerParity || h.s <= this.#peerLastStreamId) {
        throw new ProtocolError(
          "bad_header",
          `stream id ${h.s} is not a new ${peerParity ? "odd" : "even"} id`,
        );
      }
      this.#peerLastStreamId = h.s;
      if (this.#peerStreamCount >= this.#o.maxStreams) {
        this.#onData(h.s, body, false); // account the credit, then drop
        this.#sendControl({
          t: "res",
          id: h.id,
          ok: false,
          code: "stream_limit",
          msg: `too many open streams (limit ${this.#o.maxStreams})`,
        });
        return;
      }
      this.#peerStreamCount++;
      stream = new MuxStream(this, {
        id: h.s,
        op: h.op,
        args: h.args,
        recvWindow: this.#o.localWindow.s,
        sendCredit: this.#o.peerWindow.s,
      });
      stream.hashedBySession(this.#recvDigestsOn, this.#sendDigestsOn);
      (this.#streams ??= new Map()).set(h.s, stream);
      // A body here is the stream's first data, outside the running hash (§4.7).
      if (body.byteLength > 0 || h.fin) this.#onData(h.s, body, h.fin === true);
    } else if (body.byteLength > 0) {
      throw new ProtocolError("bad_header", "a request without a stream cannot carry a body");
    }
    (this.#peerReqs ??= new Set()).add(h.id);
    const handler = this.#o.onRequest;
    const run = handler
      ? handler({ id: h.id, op: h.op, args: h.args, stream })
      : Promise.reject(new ProtocolError("unknown_op", `no handler for ${h.op}`, { fatal: false }));
    run.then(
      (data) => {
        this.#peerReqs = _without(this.#peerReqs, h.id);
        const reset = stream?.resetByPeer;
        if (reset) {
          // Uniform whatever the operation managed to do (§6.2): the requester gave up.
          this.#sendControl(_cancelled(h.id, stream!.id, reset));
          return;
        }
        try {
          this.#sendControl({ t: "res", id: h.id, ok: true, data: data ?? null });
        } catch (e) {
          this.#sendError(h.id, e);
          stream?.reset("too_large", "reply too large");
          return;
        }
        stream?.end();
        // The operation is over: whatever the peer still sends on the stream
        // has no reader, so it is dropped and its credit returned.
        stream?.discardIncoming();
      },
      (e: unknown) => {
        this.#peerReqs = _without(this.#peerReqs, h.id);
        const reset = stream?.resetByPeer;
        if (reset) {
          this.#sendControl(_cancelled(h.id, stream!.id, reset));
          return;
        }
        const { code, msg } = this.#sendError(h.id, e);
        stream?.reset(code, msg);
      },
    );
  }

  #sendError(id: number, e: unknown): { code: string; msg: string } {
    const known = e instanceof ProtocolError || e instanceof RemoteError;
    const code = known ? e.code : "internal";
    const msg = known ? truncateCodePoints(e.message, 2000) : "internal error";
    this.#sendControl({ t: "res", id, ok: false, code, msg });
    return { code, msg };
  }

  #request(op: string, args: Json, stream: MuxStream | undefined, fin: boolean): Promise<unknown> {
    if (this.#state !== "open") {
      return Promise.reject(this.#closeError ?? new ProtocolError("closed", "session closed"));
    }
    const id = this.#nextReqId++;
    return new Promise((resolve, reject) => {
      (this.#pendingReqs ??= new Map()).set(id, { resolve, reject });
      const header: Record<string, unknown> = { t: "req", id, op, args };
      if (stream) header.s = stream.id;
      if (fin) header.fin = true;
      try {
        this.#sendControl(header as OutHeader);
      } catch (e) {
        this.#pendingReqs = _without(this.#pendingReqs, id);
        reject(e);
      }
    });
  }

  /**
   * Returns consumed bytes to the peer once they reach half the credit we
   * hold, and raises that credit toward `maxConnectionWindow` while the pool
   * has some: a connection whose peer sends nothing keeps only its initial
   * grant, one whose peer sends grows its window at the next update.
   */
  #connConsumed(n: number): void {
    if (n === 0 || this.#state !== "open") return;
    this.#connUnacked += n;
    if (this.#connUnacked < this.#connReserved / 2) return;
    let grant = this.#connUnacked;
    this.#connUnacked = 0;
    const pool = this.#o.creditPool;
    const share = pool?.fairShare?.() ?? Infinity;
    const target = Math.max(this.#o.localWindow.c, Math.min(this.#connTarget, share));
    if (this.#connReserved < target) {
      const want = target - this.#connReserved;
      const more = pool ? pool.take(want) : want;
      this.#connReserved += more;
      grant += more;
    } else if (this.#connReserved > target && pool) {
      // Others need the pool: grant less than was consumed, never below the initial window.
      const back = Math.min(this.#connReserved - target, grant);
      this.#connReserved -= back;
      grant -= back;
      pool.give(back);
    }
    if (grant === 0) return;
    this.#connRecvWindow += grant;
    this.#sendControl({ t: "win", s: 0, n: grant });
  }

  #reap(stream: MuxStream): void {
    if (stream.done && this.#streams?.get(stream.id) === stream) {
      this.#dropStream(stream.id);
    }
  }

  // --- writing --------------------------------------------------------------

  /** Queues a control frame; throws when its header is too large to send. */
  #sendControl(header: OutHeader): void {
    if (this.#state !== "open") return;
    this.#queueControl(encodeHeader(header, 0));
  }

  /** Queues encoded header bytes (shared, never modified) as a control frame. */
  #queueControl(bytes: Uint8Array): void {
    if (this.#state !== "open") return;
    this.#control.push(bytes);
    this.#controlBytes += bytes.byteLength + 36;
    const max = this.#o.maxPendingBytes ?? 8 * 1024 * 1024;
    if (this.#controlBytes > max) {
      this.#control = [];
      this.#controlBytes = 0;
      void this.close(new ProtocolError("slow_consumer", "peer is not reading; too much queued"));
      return;
    }
    this.#wakeWriter();
  }

  /**
   * Starts the writer. With no bulk data waiting, at the end of this turn of
   * the event loop: every frame queued in the turn goes out in one write —
   * events delivered one by one (a cluster feed hands over messages as they
   * arrive), an event, a window update and a reply queued while a request is
   * handled. Sent apart they would cost a write (and, on plaintext, a MAC)
   * each, and over TLS a later small write would wait behind an
   * unacknowledged one for the peer's delayed ACK (Nagle's algorithm; about
   * 40 ms, as this runtime's TLS sockets have no TCP_NODELAY). With bulk
   * data waiting, in a microtask, so a transfer never waits for a turn.
   */
  #wakeWriter(): void {
    if (this.#writing || this.#holdWrites || this.#state === "closed") return;
    if (this.#bulk.length === 0) {
      if (!this.#pumpDue && !this.#turnDue) {
        this.#turnDue = true;
        setImmediate(() => {
          this.#turnDue = false;
          if (!this.#writing && !this.#holdWrites) void this.#pump();
        });
      }
      return;
    }
    if (this.#pumpDue) return;
    this.#pumpDue = true;
    queueMicrotask(() => {
      this.#pumpDue = false;
      if (!this.#writing && !this.#holdWrites) void this.#pump();
    });
  }

  /** Writes queued frames; a write failure shuts the session. @neverRejects */
  async #pump(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#state !== "closed") {
        const batch = this.#buildBatch();
        if (batch === undefined) break;
        this.#writeSince = Date.now();
        await writeAll(this.#o.transport, batch);
        this.#writeSince = undefined;
      }
    } catch (e) {
      if (this.#state !== "closed") {
        const err = e instanceof Error ? e : new Error(String(e));
        this.#shutdown(new ProtocolError("closed", `write failed: ${err.message}`, { cause: err }));
      }
    } finally {
      this.#writing = false;
      this.#writeSince = undefined;
      if (this.#scratch) _giveScratch(this.#scratch);
      this.#scratch = undefined;
      const waiters = this.#flushed;
      this.#flushed = [];
      for (const w of waiters) w();
    }
  }

  /** Control frames first, then up to ~512 KiB of round-robin bulk data. */
  #buildBatch(): Uint8Array | undefined {
    const parts: Uint8Array[] = [];
    let total = 0;
    const push = (headerBytes: Uint8Array, body: Uint8Array, covered = body) => {
      const prefix = new Uint8Array(4);
      new DataView(prefix.buffer).setUint32(0, headerBytes.byteLength);
      parts.push(prefix, headerBytes);
      total += 4 + headerBytes.byteLength;
      if (body.byteLength > 0) {
        parts.push(body);
        total += body.byteLength;
      }
      if (this.#o.sendMac) {
        const tag = this.#o.sendMac.next(headerBytes, covered);
        parts.push(tag);
        total += tag.byteLength;
      }
    };
    this.#pushControl(push);
    this.#control = [];
    this.#controlBytes = 0;
    let budget = _BATCH_BULK;
    // Each pass either spends budget or drops a stream from the ring, so this ends.
    while (budget > 0 && this.#bulk.length > 0) {
      const stream = this.#bulk.shift()!;
      const max = Math.min(DEFAULT_CHUNK, this.#o.maxBody, stream.sendCredit, this.#connSendCredit);
      const piece = stream.take(max);
      if (piece) {
        this.#connSendCredit -= piece.body.byteLength;
        budget -= Math.max(piece.body.byteLength, 1);
        const header: Record<string, unknown> = { t: "data", s: stream.id };
        if (piece.fin) header.fin = true;
        let covered = piece.body;
        if (this.#sendDigestsOn) {
          this.#sendDigests ??= new StreamDigests(this.#o.maxStreams);
          covered = this.#sendDigests.absorb(stream.id, piece.body, piece.fin);
          stream.noteSent(covered);
        }
        push(encodeHeader(header as OutHeader, piece.body.byteLength), piece.body, covered);
        this.#reap(stream);
      }
      if (piece && stream.sendable) this.#bulk.push(stream);
      else stream.scheduled = false; // a window update or new write reschedules it
    }
    if (parts.length === 0) return undefined;
    // Bulk batches reuse one buffer while the writer stays busy: the previous
    // batch has been handed to the transport by the time the next is built.
    // Small batches (idle chat traffic) allocate, so idle sessions hold nothing.
    let out: Uint8Array;
    if (total >= _SCRATCH_MIN) {
      if (this.#scratch === undefined || this.#scratch.byteLength < total) {
        if (this.#scratch) _giveScratch(this.#scratch);
        this.#scratch = _takeScratch(total);
      }
      out = this.#scratch.subarray(0, total);
    } else {
      out = new Uint8Array(total);
    }
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.byteLength;
    }
    return out;
  }

  /**
   * Hands the queued control frames to `push`, in order. When batches were
   * agreed and frames carry a MAC, each run of two or more goes as one
   * `batch` frame (§5.5) of at most the body limit: one header and one MAC
   * for the run. (Over TLS there is no MAC to save; the write is one anyway.)
   */
  #pushControl(push: (headerBytes: Uint8Array, body: Uint8Array) => void): void {
    const control = this.#control;
    if (!this.#o.batch || this.#o.sendMac === undefined || control.length < 2) {
      for (const headerBytes of control) push(headerBytes, _EMPTY);
      return;
    }
    const max = this.#o.maxBody;
    let run: Uint8Array[] = [];
    let size = 0;
    const send = () => {
      if (run.length === 1) push(run[0]!, _EMPTY);
      else if (run.length > 1) {
        const body = encodeBatchBody(run);
        push(encodeHeader({ t: "batch" }, body.byteLength), body);
      }
      run = [];
      size = 0;
    };
    for (const headerBytes of control) {
      const n = 4 + headerBytes.byteLength;
      if (n > max) {
        send();
        push(headerBytes, _EMPTY);
        continue;
      }
      if (size + n > max) send();
      run.push(headerBytes);
      size += n;
    }
    send();
  }

  #flush(): Promise<void> {
    if (!this.#writing && this.#control.length === 0) return Promise.resolve();
    return new Promise((r) => {
      this.#flushed.push(r);
      this.#wakeWriter();
    });
  }

  #shutdown(error: Error | undefined): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#closeError ??= error;
    try {
      this.#o.transport.close();
    } catch {
      // Already closed by the peer or the runtime: nothing left to release.
    }
    const err = this.#closeError ?? new ProtocolError("closed", "session closed");
    const pending = this.#pendingReqs;
    this.#pendingReqs = undefined;
    for (const p of pending?.values() ?? []) p.reject(err);
    this.#peerReqs = undefined;
    const streams = this.#streams;
    this.#streams = undefined;
    for (const s of streams?.values() ?? []) s.fail(err);
    this.#bulk = [];
    this.#control = [];
    const pings = this.#pings;
    this.#pings = undefined;
    for (const p of pings?.values() ?? []) p.reject(err);
    this.#o.creditPool?.give(this.#connReserved);
    this.#connReserved = 0;
    // Queued calls each take a slot and fail at once on the closed session.
    const queued = this.#callQueue;
    this.#callQueue = [];
    this.#callsOut += queued.length;
    for (const r of queued) r();
    this.#resolveClosed(this.#closeError);
  }
}

/** The reply to a request whose stream the requester reset before the reply (§6.2). */
function _cancelled(id: number, s: number, reset: { code: string }): OutHeader {
  return {
    t: "res",
    id,
    ok: false,
    code: "cancel",
    msg: `the requester reset stream ${s} (${truncateCodePoints(reset.code, 64)})`,
  };
}
