/**
 * The front side of a routed run (see `exec_wire.ts`): an {@linkcode ExecRun}
 * whose command runs on another node. stdout and stderr arrive as frames
 * and are handed to the consumer on demand, credit going back as it takes
 * them; stdin goes out as frames as the running node's credit allows.
 *
 * Liveness: a beat goes to the running node every second (it kills the run
 * when they stop). When the running node is silent for
 * {@linkcode EXEC_NODE_SILENCE_MS}, or frames from it went missing, the run
 * is given up: a line on stderr says why, the output streams end, and the
 * outcome is exit code 255 with `killed: "disconnect"`.
 *
 * @module
 */
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { NoRespondersError, RequestError as NatsRequestError } from "@nats-io/transport-node";
import type { ErrorCode } from "../../protocol/errors.ts";
import type {
  ExecKillReason,
  ExecOutcome,
  ExecPlan,
  ExecRun,
  ExecSignal,
} from "../backend/exec.ts";
import { RequestError } from "../errors.ts";
import {
  decodeFrame,
  encodeFrame,
  EXEC_BEAT_MS,
  EXEC_CHUNK,
  EXEC_NODE_SILENCE_MS,
  EXEC_START_TIMEOUT_MS,
  EXEC_WINDOW,
  jsonBytes,
  newRunId,
  parseJsonBytes,
  readU32,
  runSubject,
  Sequence,
  type StartReply,
  type StartRequest,
  startSubject,
  text,
  TO_FRONT,
  TO_NODE,
  u32,
} from "./exec_wire.ts";

/** Codes a running node may refuse with; anything else is reported as `internal`. */
const _CODES = new Set<ErrorCode>([
  "bad_request",
  "forbidden",
  "not_found",
  "busy",
  "closed",
  "timeout",
  "unavailable",
  "internal",
]);

/** How long a killed run waits for the running node's outcome before making one up. */
const _KILL_WAIT_MS = 5_000;

/** Credit given back once the consumer took this much. */
const _CREDIT_STEP = EXEC_WINDOW / 4;

/** One incoming output stream: frames queued until the consumer pulls them. */
class _Inbound {
  readonly stream: ReadableStream<Uint8Array>;
  /** Resolves once the consumer read it to its end or cancelled it (or the run was given up). */
  readonly finished: Promise<void>;
  #queue: Uint8Array[] = [];
  #queued = 0;
  #taken = 0;
  #ended = false;
  #wake: (() => void) | undefined;
  #finish!: () => void;
  #credit: (n: number) => void;

  constructor(credit: (n: number) => void, cancel: () => void) {
    this.#credit = credit;
    this.finished = new Promise<void>((r) => (this.#finish = r));
    this.stream = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        while (this.#queue.length === 0 && !this.#ended) {
          await new Promise<void>((r) => (this.#wake = r));
          this.#wake = undefined;
        }
        const chunk = this.#queue.shift();
        if (chunk) {
          this.#queued -= chunk.byteLength;
          this.#taken += chunk.byteLength;
          if (this.#taken >= _CREDIT_STEP) {
            this.#credit(this.#taken);
            this.#taken = 0;
          }
          controller.enqueue(chunk);
          return;
        }
        controller.close();
        this.#finish();
      },
      cancel: () => {
        this.#ended = true;
        this.#queue = [];
        cancel();
        this.#finish();
      },
    }, { highWaterMark: 0 });
  }

  /** Bytes received and not yet taken by the consumer. */
  get queued(): number {
    return this.#queued;
  }

  push(chunk: Uint8Array): void {
    if (this.#ended) return;
    this.#queue.push(chunk);
    this.#queued += chunk.byteLength;
    this.#wake?.();
  }

  /** Ends the stream after what is queued. */
  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  /** Ends the stream now, dropping what is queued. */
  drop(): void {
    this.#queue = [];
    this.#queued = 0;
    this.end();
    this.#finish();
  }
}

/** A run on another node, driven from this one. */
export class RemoteRun implements ExecRun {
  readonly node: string;
  readonly argv: readonly string[];
  readonly cwd: string;
  readonly stdin: WritableStream<Uint8Array>;
  readonly stdout: ReadableStream<Uint8Array>;
  readonly stderr: ReadableStream<Uint8Array>;
  readonly outcome: Promise<ExecOutcome>;
  #nc: NatsConnection;
  #toNode: string;
  #sub: Subscription;
  #out = new Sequence();
  #in = new Sequence();
  #inbound: { stdout: _Inbound; stderr: _Inbound };
  #stdinInFlight = 0;
  #stdinClosed = false;
  #stdinWake: (() => void) | undefined;
  #heardAt = Date.now();
  #beat: ReturnType<typeof setInterval> | undefined;
  #startedAt = Date.now();
  #running = true;
  #killed: ExecKillReason | null = null;
  #ended: ExecOutcome | undefined;
  #settle!: (o: ExecOutcome) => void;
  #endArrived!: (o: ExecOutcome) => void;
  #endPromise: Promise<ExecOutcome>;
  #onEnd: (() => void) | undefined;
  #gaveUp = false;
  #killedP: Promise<void>;
  #killedNow!: () => void;

  private constructor(
    nc: NatsConnection,
    node: string,
    runId: string,
    sub: Subscription,
    reply: { argv: string[]; cwd: string },
  ) {
    this.#nc = nc;
    this.node = node;
    this.argv = reply.argv;
    this.cwd = reply.cwd;
    this.#toNode = runSubject(runId, "node");
    this.#sub = sub;
    this.#endPromise = new Promise<ExecOutcome>((r) => (this.#endArrived = r));
    this.#killedP = new Promise<void>((r) => (this.#killedNow = r));
    this.outcome = new Promise<ExecOutcome>((r) => (this.#settle = r));
    const credit = (kind: number) => (n: number) => this.#send(kind, u32(n));
    this.#inbound = {
      stdout: new _Inbound(
        credit(TO_NODE.stdoutCredit),
        () => this.#send(TO_NODE.stdoutCancel),
      ),
      stderr: new _Inbound(
        credit(TO_NODE.stderrCredit),
        () => this.#send(TO_NODE.stderrCancel),
      ),
    };
    this.stdout = this.#inbound.stdout.stream;
    this.stderr = this.#inbound.stderr.stream;
    this.stdin = new WritableStream<Uint8Array>({
      write: (chunk) => this.#writeStdin(chunk),
      close: () => this.#send(TO_NODE.stdinEnd),
      abort: () => this.#send(TO_NODE.stdinEnd),
    });
    void this.#complete(); // floating-ok: #complete never rejects
  }

  /**
   * Asks `node` to start `plan` and, once it did, drives the run from here.
   * `onFrame` is set before the request goes out, so no frame is missed.
   * Rejects at once with `not_found` when the node is not connected, and with
   * the node's own refusal otherwise.
   */
  static async start(
    nc: NatsConnection,
    from: { via: string; node: string },
    plan: ExecPlan,
  ): Promise<RemoteRun> {
    const runId = newRunId();
    const ready: { run?: RemoteRun } = {};
    const early: Uint8Array[] = [];
    const sub = nc.subscribe(runSubject(runId, "front"), {
      callback: (err, msg) => {
        if (err) return;
        if (ready.run) ready.run.#onFrame(msg.data, msg.reply ? () => _ack(msg) : undefined);
        else early.push(msg.data); // cannot happen before the reply; kept in order if it does
      },
    });
    const request: StartRequest = {
      runId,
      user: plan.user,
      command: "shell" in plan.command
        ? { shell: plan.command.shell }
        : { argv: [...plan.command.argv] },
      cwd: plan.cwd,
      ...(plan.routed?.timeoutMs !== undefined ? { timeoutMs: plan.routed.timeoutMs } : {}),
      via: from.via,
      addr: plan.routed?.addr ?? "",
    };
    let reply: StartReply;
    try {
      const msg = await nc.request(startSubject(from.node), jsonBytes(request), {
        timeout: EXEC_START_TIMEOUT_MS,
      });
      reply = _parseReply(parseJsonBytes(msg.data));
    } catch (e) {
      _unsubscribe(sub);
      throw _startError(e, from.node);
    }
    if (!reply.ok) {
      _unsubscribe(sub);
      const code = _CODES.has(reply.error.code as ErrorCode)
        ? reply.error.code as ErrorCode
        : "internal";
      throw new RequestError(code, reply.error.message);
    }
    const run = new RemoteRun(nc, from.node, runId, sub, reply);
    for (const data of early) run.#onFrame(data, undefined);
    ready.run = run;
    run.#beat = setInterval(() => run.#tick(), EXEC_BEAT_MS);
    return run;
  }

  get running(): boolean {
    return this.#running;
  }

  /** Calls `fn` once the run has ended and been cleaned up (for the router's bookkeeping). */
  onEnd(fn: () => void): void {
    this.#onEnd = fn;
  }

  signal(sig: ExecSignal): Promise<void> {
    if (this.#running) this.#send(TO_NODE.signal, text.encode(sig));
    return Promise.resolve();
  }

  kill(reason: ExecKillReason): void {
    if (!this.#running || this.#killed) return;
    this.#killed = reason;
    this.#send(TO_NODE.kill, text.encode(reason));
    this.#inbound.stdout.drop();
    this.#inbound.stderr.drop();
    this.#stdinClosed = true;
    this.#stdinWake?.();
    this.#killedNow();
  }

  /** Waits for the end, then settles the outcome and cleans up. @neverRejects */
  async #complete(): Promise<void> {
    await Promise.race([this.#endPromise, this.#killedP]);
    let outcome: ExecOutcome;
    if (this.#ended) {
      outcome = this.#ended;
    } else {
      // Killed here: give the running node a moment to report, then make the outcome up.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const made = new Promise<ExecOutcome>((r) =>
        timer = setTimeout(() => r(this.#madeUp(137, "SIGKILL")), _KILL_WAIT_MS)
      );
      outcome = await Promise.race([this.#endPromise, made]);
      clearTimeout(timer);
    }
    const drained = Promise.all([this.#inbound.stdout.finished, this.#inbound.stderr.finished]);
    if (outcome.killed === null && this.#killed === null) {
      await drained;
    } else if (this.#gaveUp) {
      // Let the consumer take the line that says why (bounded: it may have stopped reading).
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([drained, new Promise((r) => (timer = setTimeout(r, 2_000)))]);
      clearTimeout(timer);
    }
    if (this.#killed && outcome.killed === null) outcome = { ...outcome, killed: this.#killed };
    this.#running = false;
    clearInterval(this.#beat);
    _unsubscribe(this.#sub);
    this.#stdinClosed = true;
    this.#stdinWake?.();
    this.#settle(outcome);
    this.#onEnd?.();
  }

  #madeUp(code: number, signal: ExecSignal | null): ExecOutcome {
    return {
      code,
      signal,
      timedOut: false,
      killed: this.#killed ?? "disconnect",
      durationMs: Date.now() - this.#startedAt,
      stdoutBytes: 0,
      stderrBytes: 0,
    };
  }

  #tick(): void {
    if (!this.#running) return;
    this.#send(TO_NODE.beat);
    if (Date.now() - this.#heardAt > EXEC_NODE_SILENCE_MS) {
      this.#giveUp(
        `lost contact with node ${this.node} (nothing heard for ${
          EXEC_NODE_SILENCE_MS / 1000
        } s); the command may still be running there until it notices`,
      );
    }
  }

  /** Ends the run here with a line on stderr: the running node cannot be relied on any more. */
  #giveUp(why: string): void {
    if (this.#ended || !this.#running) return;
    this.#gaveUp = true;
    this.#send(TO_NODE.kill, text.encode("disconnect"));
    const err = this.#inbound.stderr;
    this.#inbound.stdout.end();
    err.push(text.encode(`parley: ${why}\n`));
    err.end();
    const outcome = this.#madeUp(255, null);
    this.#ended = outcome;
    this.#endArrived(outcome);
  }

  #send(kind: number, payload?: Uint8Array): void {
    try {
      this.#nc.publish(this.#toNode, encodeFrame(kind, this.#out.next(), payload));
    } catch {
      // Connection closed: the running node stops hearing beats and kills the run.
    }
  }

  async #writeStdin(chunk: Uint8Array): Promise<void> {
    for (let off = 0; off < chunk.byteLength; off += EXEC_CHUNK) {
      const part = chunk.slice(off, off + EXEC_CHUNK);
      while (!this.#stdinClosed && this.#stdinInFlight + part.byteLength > EXEC_WINDOW) {
        await new Promise<void>((r) => (this.#stdinWake = r));
        this.#stdinWake = undefined;
      }
      if (this.#stdinClosed) throw new TypeError("the command's stdin is closed");
      this.#stdinInFlight += part.byteLength;
      this.#send(TO_NODE.stdin, part);
    }
  }

  #onFrame(data: Uint8Array, ack: (() => void) | undefined): void {
    const f = decodeFrame(data);
    if (!f) return;
    const order = this.#in.check(f.seq);
    if (order === "dup") {
      ack?.(); // a resent outcome: acknowledge again
      return;
    }
    if (order === "gap") {
      this.#giveUp(`output from node ${this.node} went missing on the way; the run was stopped`);
      return;
    }
    this.#heardAt = Date.now();
    switch (f.kind) {
      case TO_FRONT.stdout:
      case TO_FRONT.stderr: {
        const into = this.#inbound[f.kind === TO_FRONT.stdout ? "stdout" : "stderr"];
        into.push(f.payload.slice());
        if (into.queued > EXEC_WINDOW + EXEC_CHUNK) {
          this.#giveUp(`node ${this.node} sent more output than it had credit for`);
        }
        break;
      }
      case TO_FRONT.stdoutEnd:
        this.#inbound.stdout.end();
        break;
      case TO_FRONT.stderrEnd:
        this.#inbound.stderr.end();
        break;
      case TO_FRONT.stdinCredit: {
        const n = readU32(f.payload);
        if (n > 0) this.#stdinInFlight = Math.max(0, this.#stdinInFlight - n);
        this.#stdinWake?.();
        break;
      }
      case TO_FRONT.stdinClosed:
        this.#stdinClosed = true;
        this.#stdinWake?.();
        break;
      case TO_FRONT.end: {
        ack?.();
        const o = _parseOutcome(parseJsonBytes(f.payload));
        if (!this.#ended && o) {
          this.#ended = o;
          this.#inbound.stdout.end();
          this.#inbound.stderr.end();
          this.#endArrived(o);
        }
        break;
      }
      default: // beats only refresh the time heard
    }
  }
}

function _unsubscribe(sub: Subscription): void {
  try {
    sub.unsubscribe();
  } catch {
    // The connection is closed: nothing is subscribed any more.
  }
}

function _ack(msg: Msg): void {
  try {
    msg.respond();
  } catch {
    // The connection is closed: the running node retries, then gives up.
  }
}

function _startError(e: unknown, node: string): Error {
  if (
    e instanceof NoRespondersError ||
    (e instanceof NatsRequestError && e.isNoResponders())
  ) {
    return new RequestError(
      "not_found",
      `node ${JSON.stringify(node)} is not connected (\`parley exec --list-nodes\` shows the ` +
        `nodes)`,
    );
  }
  if (e instanceof Error && /timeout/i.test(e.name + e.message)) {
    return new RequestError(
      "unavailable",
      `node ${node} did not answer within ${EXEC_START_TIMEOUT_MS / 1000} s; try again`,
    );
  }
  return new RequestError(
    "unavailable",
    `could not reach node ${node}: the cluster connection is down, try again shortly`,
    { cause: e },
  );
}

function _parseReply(v: unknown): StartReply {
  const r = v as Record<string, unknown> | null;
  if (typeof r === "object" && r !== null) {
    if (r.ok === true && Array.isArray(r.argv) && typeof r.cwd === "string") {
      return { ok: true, argv: r.argv.map(String), cwd: r.cwd };
    }
    const e = r.error as Record<string, unknown> | undefined;
    if (r.ok === false && e && typeof e.code === "string" && typeof e.message === "string") {
      return { ok: false, error: { code: e.code, message: e.message } };
    }
  }
  return { ok: false, error: { code: "internal", message: "unreadable answer from the node" } };
}

function _parseOutcome(v: unknown): ExecOutcome | null {
  const o = v as Record<string, unknown> | null;
  if (typeof o !== "object" || o === null) return null;
  const num = (x: unknown) => typeof x === "number" && Number.isFinite(x) ? x : 0;
  if (typeof o.code !== "number") return null;
  return {
    code: o.code,
    signal: typeof o.signal === "string" ? o.signal as ExecSignal : null,
    timedOut: o.timedOut === true,
    killed: typeof o.killed === "string" ? o.killed as ExecKillReason : null,
    durationMs: num(o.durationMs),
    stdoutBytes: num(o.stdoutBytes),
    stderrBytes: num(o.stderrBytes),
  };
}
