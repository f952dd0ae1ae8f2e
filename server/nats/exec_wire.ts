/**
 * What routed exec runs say over core NATS (docs/cluster.md "Exec in a
 * cluster"): the subjects, the frames and the limits both sides keep.
 *
 * - `parley.exec.node.<node>.start` — request/reply. The front node (the one
 *   the client is connected to) asks the node to start a run; the node
 *   applies its own policy and answers with the run's command line and
 *   working directory, or a refusal `{error: {code, message}}`. Nobody
 *   listening means the node is not connected: `not_found` at once.
 * - `parley.exec.run.<runId>.front` — frames from the running node to the
 *   front node: stdout and stderr chunks and their ends, stdin credit, the
 *   outcome (sent as a request and acknowledged, so it is not lost), beats.
 * - `parley.exec.run.<runId>.node` — frames from the front node to the
 *   running node: stdin chunks and its end, output credit, cancel, kill,
 *   signal, beats.
 *
 * A frame is one message: a kind byte, a sequence number (u32, big endian,
 * counting every frame of one direction from 0) and the payload. A frame
 * that arrives out of sequence means core NATS dropped one (a slow
 * consumer): the run is ended with an error rather than hand out output
 * with a hole in it.
 *
 * Credit: the sender of a byte stream has at most {@linkcode EXEC_WINDOW}
 * bytes sent and not yet taken by the other side's consumer; the receiver
 * gives credit back as its consumer takes chunks. Nothing is buffered
 * without bound on either side.
 *
 * @module
 */
import { encodeKeyToken } from "./kv_watch.ts";

/** Bytes in flight per stream and direction. */
export const EXEC_WINDOW = 256 * 1024;
/** Largest payload of one data frame. */
export const EXEC_CHUNK = 64 * 1024;
/** How often each side sends a beat on a run. */
export const EXEC_BEAT_MS = 1_000;
/** The running node kills a run after this long without a frame from the front node. */
export const EXEC_FRONT_SILENCE_MS = 3_000;
/** The front node gives a run up after this long without a frame from the running node. */
export const EXEC_NODE_SILENCE_MS = 5_000;
/** How long the front node waits for a start reply. */
export const EXEC_START_TIMEOUT_MS = 10_000;

/** Frames to the front node. */
export const TO_FRONT = {
  stdout: 1,
  stderr: 2,
  stdoutEnd: 3,
  stderrEnd: 4,
  /** Payload: u32 bytes of stdin the command took. */
  stdinCredit: 5,
  /** The command stopped taking input. */
  stdinClosed: 6,
  /** Payload: JSON {@linkcode ExecOutcome}; sent as a request, acknowledged. */
  end: 7,
  beat: 8,
} as const;

/** Frames to the running node. */
export const TO_NODE = {
  stdin: 20,
  stdinEnd: 21,
  /** Payload: u32 bytes of stdout taken. */
  stdoutCredit: 22,
  stderrCredit: 23,
  stdoutCancel: 24,
  stderrCancel: 25,
  /** Payload: UTF-8 kill reason. */
  kill: 26,
  /** Payload: UTF-8 signal name. */
  signal: 27,
  beat: 28,
} as const;

/** The start request's subject for `node`. */
export function startSubject(node: string): string {
  return `parley.exec.node.${encodeKeyToken(node)}.start`;
}

/** The subject of one run's frames towards `side`. */
export function runSubject(runId: string, side: "front" | "node"): string {
  return `parley.exec.run.${runId}.${side}`;
}

/** Run ids: 32 lowercase hex digits. */
export const RUN_ID_PATTERN: RegExp = /^[0-9a-f]{32}$/;

/** A fresh run id. */
export function newRunId(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

/** The start request. */
export interface StartRequest {
  runId: string;
  user: string;
  command: { argv: string[] } | { shell: string };
  cwd: string;
  /** Absent: the running node's default. */
  timeoutMs?: number;
  /** The front node. */
  via: string;
  /** The client's address, for the audit line. */
  addr: string;
}

/** The start reply. */
export type StartReply =
  | { ok: true; argv: string[]; cwd: string }
  | { ok: false; error: { code: string; message: string } };

/** A decoded frame. */
export interface Frame {
  kind: number;
  seq: number;
  payload: Uint8Array;
}

/** Encodes a frame. */
export function encodeFrame(kind: number, seq: number, payload?: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + (payload?.byteLength ?? 0));
  out[0] = kind;
  new DataView(out.buffer).setUint32(1, seq >>> 0);
  if (payload) out.set(payload, 5);
  return out;
}

/** Decodes a frame; null when it is too short to be one. */
export function decodeFrame(data: Uint8Array): Frame | null {
  if (data.byteLength < 5) return null;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return { kind: data[0]!, seq: view.getUint32(1), payload: data.subarray(5) };
}

/** A u32 payload. */
export function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0);
  return b;
}

/** Reads a u32 payload; -1 when it is not one. */
export function readU32(payload: Uint8Array): number {
  if (payload.byteLength !== 4) return -1;
  return new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0);
}

const _enc = new TextEncoder();
const _dec = new TextDecoder();

/** JSON as bytes. */
export function jsonBytes(v: unknown): Uint8Array {
  return _enc.encode(JSON.stringify(v));
}

/** Bytes as JSON; undefined when they are not JSON. */
export function parseJsonBytes(b: Uint8Array): unknown {
  try {
    return JSON.parse(_dec.decode(b));
  } catch {
    return undefined;
  }
}

/** UTF-8 text as bytes, and back. */
export const text = {
  encode: (s: string): Uint8Array => _enc.encode(s),
  decode: (b: Uint8Array): string => _dec.decode(b),
};

/**
 * Counts the frames of one direction: hands out the next sequence number
 * to send, and checks the ones received.
 */
export class Sequence {
  #next = 0;
  #expected = 0;

  /** The sequence number of the next frame sent. */
  next(): number {
    const n = this.#next;
    this.#next = (this.#next + 1) >>> 0;
    return n;
  }

  /**
   * Checks a received frame: `"ok"` when it is the next one, `"dup"` when it
   * was seen already (a resent outcome), `"gap"` when frames are missing.
   */
  check(seq: number): "ok" | "dup" | "gap" {
    if (seq === this.#expected) {
      this.#expected = (this.#expected + 1) >>> 0;
      return "ok";
    }
    return seq < this.#expected ? "dup" : "gap";
  }
}
