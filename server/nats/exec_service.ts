/**
 * The running side of routed exec (see `exec_wire.ts`): a node listens on
 * `parley.exec.node.<node>.start`, applies its *own* exec policy to each
 * request (allow-list, shell mode, timeout limit, environment, caps; exec
 * off answers `forbidden`), starts the run with its own runner — the same
 * sandbox as a local run — and carries the run's streams over the run's
 * subjects with credit. It writes the audit line of every run it starts or
 * refuses, naming the front node and the client's address.
 *
 * Liveness: the front node sends a beat every second; a run that hears
 * nothing from its front node for {@linkcode EXEC_FRONT_SILENCE_MS} is
 * killed (`disconnect`), process group and all.
 *
 * @module
 */
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { EXEC_SIGNALS } from "../../protocol/ops/exec.ts";
import type {
  ExecAudit,
  ExecKillReason,
  ExecOutcome,
  ExecRun,
  ExecRunner,
  ExecSignal,
} from "../backend/exec.ts";
import { RequestError } from "../errors.ts";
import { compactArgv, REFUSED_ARGV_BYTES, RUN_ARGV_BYTES } from "../exec/audit_argv.ts";
import type { ExecSettings } from "../exec/exec_config.ts";
import { planRun } from "../exec/exec_policy.ts";
import type { Logger } from "../log.ts";
import {
  decodeFrame,
  encodeFrame,
  EXEC_BEAT_MS,
  EXEC_CHUNK,
  EXEC_FRONT_SILENCE_MS,
  EXEC_WINDOW,
  jsonBytes,
  parseJsonBytes,
  readU32,
  RUN_ID_PATTERN,
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

/** How often, and how long, the outcome is offered to the front node. */
const _END_TRIES = 3;
const _END_WAIT_MS = 2_000;

const _KILL_REASONS = new Set<ExecKillReason>(["timeout", "disconnect", "shutdown", "client"]);
const _SIGNALS = new Set<string>(EXEC_SIGNALS);

/** What a node needs to serve routed runs. */
export interface ExecServiceOptions {
  /** This node's name. */
  node: string;
  runner: ExecRunner;
  /** This node's exec settings; `enabled: false` refuses every run. */
  settings: ExecSettings;
  audit: ExecAudit;
  log: Logger;
}

/** Serves routed runs on this node until closed. */
export class NatsExecService {
  #nc: NatsConnection;
  #opts: ExecServiceOptions;
  #sub: Subscription | undefined;
  #live = new Set<ServedRun>();
  #closed = false;

  constructor(nc: NatsConnection, opts: ExecServiceOptions) {
    this.#nc = nc;
    this.#opts = opts;
  }

  /** Starts listening (refusing too when exec is off here, so a caller learns why). */
  async listen(): Promise<void> {
    this.#sub = this.#nc.subscribe(startSubject(this.#opts.node), {
      callback: (err, msg) => {
        if (err || this.#closed) return;
        void this.#start(msg); // floating-ok: #start answers every failure itself
      },
    });
    await this.#nc.flush();
  }

  /** Runs started here for other nodes and not yet ended. */
  get live(): number {
    return this.#live.size;
  }

  /** Stops taking runs and kills the live ones (`shutdown`); waits, bounded, for their outcomes. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#sub) _unsubscribe(this.#sub);
    for (const r of this.#live) r.run.kill("shutdown");
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.allSettled([...this.#live].map((r) => r.done)),
      new Promise((r) => (timer = setTimeout(r, _END_TRIES * _END_WAIT_MS))),
    ]);
    clearTimeout(timer);
  }

  /** @neverRejects */
  async #start(msg: Msg): Promise<void> {
    const startedAt = new Date().toISOString();
    const req = _parseStart(parseJsonBytes(msg.data));
    if (!req) {
      _respond(msg, { ok: false, error: { code: "bad_request", message: "bad start request" } });
      return;
    }
    const { node, settings, runner, audit } = this.#opts;
    const base = { start: startedAt, user: req.user, addr: req.addr, via: req.via };
    let argv: string[] = "shell" in req.command
      ? [settings.shellPath, "-c", req.command.shell]
      : req.command.argv;
    let run: ExecRun;
    try {
      if (!settings.enabled) {
        throw new RequestError(
          "forbidden",
          "remote exec is disabled on this node (it runs commands only when started with " +
            "`parley serve --exec`)",
        );
      }
      const args = {
        ...("shell" in req.command ? { shell: req.command.shell } : { argv: req.command.argv }),
        cwd: req.cwd,
        ...(req.timeoutMs !== undefined ? { timeoutMs: req.timeoutMs } : {}),
      };
      const planned = planRun(settings, { user: req.user, args });
      argv = planned.argv;
      run = await runner.start(planned.plan);
    } catch (e) {
      const code = e instanceof RequestError ? e.code : "internal";
      const message = e instanceof RequestError ? e.message : "the command could not be started";
      if (!(e instanceof RequestError)) {
        this.#opts.log.warn("routed exec failed to start", { node, error: String(e) });
      }
      _respond(msg, { ok: false, error: { code, message: `node ${node}: ${message}` } });
      await audit.refused({
        ...base,
        ...compactArgv(argv, REFUSED_ARGV_BYTES),
        cwd: null,
        durationMs: 0,
        code: null,
        signal: null,
        refused: code,
      }).catch(() => {});
      return;
    }
    if (this.#closed) run.kill("shutdown");
    const served = new ServedRun(this.#nc, req.runId, run);
    this.#live.add(served);
    if (!_respond(msg, { ok: true, argv: [...run.argv], cwd: run.cwd })) {
      run.kill("disconnect"); // the reply could not be sent: nobody will drive this run
    }
    const outcome = await served.done;
    this.#live.delete(served);
    await audit.run({
      ...base,
      ...compactArgv(run.argv, RUN_ARGV_BYTES),
      cwd: run.cwd,
      durationMs: outcome.durationMs,
      code: outcome.code,
      signal: outcome.signal,
      timedOut: outcome.timedOut,
      ...(outcome.killed ? { killed: outcome.killed } : {}),
    }).catch((e) => this.#opts.log.warn("exec audit failed", { node, error: String(e) }));
  }
}

function _unsubscribe(sub: Subscription): void {
  try {
    sub.unsubscribe();
  } catch {
    // The connection is closed: nothing is subscribed any more.
  }
}

function _respond(msg: Msg, reply: StartReply): boolean {
  try {
    return msg.respond(jsonBytes(reply));
  } catch {
    return false;
  }
}

function _parseStart(v: unknown): StartRequest | null {
  if (typeof v !== "object" || v === null) return null;
  const r = v as Record<string, unknown>;
  const str = (x: unknown): x is string => typeof x === "string" && !x.includes("\0");
  if (typeof r.runId !== "string" || !RUN_ID_PATTERN.test(r.runId)) return null;
  if (!str(r.user) || !str(r.cwd) || !str(r.via) || !str(r.addr)) return null;
  if (
    r.timeoutMs !== undefined &&
    (typeof r.timeoutMs !== "number" || !Number.isInteger(r.timeoutMs) || r.timeoutMs < 1)
  ) return null;
  const c = r.command as Record<string, unknown> | null;
  if (typeof c !== "object" || c === null) return null;
  let command: StartRequest["command"];
  if (Array.isArray(c.argv) && c.argv.length > 0 && c.argv.every(str)) {
    command = { argv: c.argv as string[] };
  } else if (str(c.shell) && c.shell !== "") command = { shell: c.shell };
  else return null;
  return {
    runId: r.runId,
    user: r.user,
    command,
    cwd: r.cwd,
    ...(r.timeoutMs !== undefined ? { timeoutMs: r.timeoutMs as number } : {}),
    via: r.via,
    addr: r.addr,
  };
}

/** Credit of one output stream: bytes sent and not yet taken by the front node's consumer. */
class _Credit {
  inFlight = 0;
  #wake: (() => void) | undefined;

  give(n: number): void {
    this.inFlight = Math.max(0, this.inFlight - n);
    this.#wake?.();
  }

  /** Resolves once the window has room, or `stop` settled. */
  async room(stop: Promise<void>): Promise<void> {
    while (this.inFlight >= EXEC_WINDOW) {
      const woken = new Promise<boolean>((r) => (this.#wake = () => r(true)));
      const more = await Promise.race([woken, stop.then(() => false)]);
      this.#wake = undefined;
      if (!more) return;
    }
  }
}

/** One run started here for a front node: its frames, credit and beats. */
class ServedRun {
  readonly run: ExecRun;
  /** Resolves with the outcome once it was offered to the front node. */
  readonly done: Promise<ExecOutcome>;
  #nc: NatsConnection;
  #toFront: string;
  #sub: Subscription;
  #out = new Sequence();
  #in = new Sequence();
  #credit = { stdout: new _Credit(), stderr: new _Credit() };
  #readers: Partial<Record<"stdout" | "stderr", ReadableStreamDefaultReader<Uint8Array>>> = {};
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #stdinChain: Promise<void> = Promise.resolve();
  #stdinQueued = 0;
  #stdinCredit = 0;
  #stdinClosed = false;
  #heardAt = Date.now();
  #beat: ReturnType<typeof setInterval>;
  #stop!: () => void;
  #stopped: Promise<void>;
  #isStopped = false;

  constructor(nc: NatsConnection, runId: string, run: ExecRun) {
    this.#nc = nc;
    this.run = run;
    this.#toFront = runSubject(runId, "front");
    this.#stopped = new Promise<void>((r) =>
      this.#stop = () => {
        this.#isStopped = true;
        r();
      }
    );
    this.#stdin = run.stdin.getWriter();
    void this.#stdin.closed.catch(() => {}); // a command that stops reading is no error here
    this.#sub = nc.subscribe(runSubject(runId, "node"), {
      callback: (err, msg) => {
        if (!err) this.#onFrame(msg.data);
      },
    });
    this.#beat = setInterval(() => {
      if (Date.now() - this.#heardAt > EXEC_FRONT_SILENCE_MS) this.run.kill("disconnect");
      this.#send(TO_FRONT.beat);
    }, EXEC_BEAT_MS);
    const pumps = Promise.all([this.#pump("stdout"), this.#pump("stderr")]);
    this.done = this.#finish(pumps);
  }

  /** @neverRejects */
  async #finish(pumps: Promise<unknown>): Promise<ExecOutcome> {
    const outcome = await this.run.outcome;
    this.#stop();
    await pumps;
    // Output frames went out before this: the outcome follows them on the same subject.
    const end = encodeFrame(TO_FRONT.end, this.#out.next(), jsonBytes(outcome));
    for (let i = 0; i < _END_TRIES; i++) {
      try {
        await this.#nc.request(this.#toFront, end, { timeout: _END_WAIT_MS });
        break;
      } catch {
        // Not acknowledged: the front node is gone or slow; try again, then give up.
      }
    }
    clearInterval(this.#beat);
    _unsubscribe(this.#sub);
    return outcome;
  }

  #send(kind: number, payload?: Uint8Array): void {
    try {
      this.#nc.publish(this.#toFront, encodeFrame(kind, this.#out.next(), payload));
    } catch {
      // Connection closed: the front node hears nothing and gives the run up.
    }
  }

  /** Copies one output stream to the front node as its credit allows. @neverRejects */
  async #pump(which: "stdout" | "stderr"): Promise<void> {
    const credit = this.#credit[which];
    const reader = (which === "stdout" ? this.run.stdout : this.run.stderr).getReader();
    this.#readers[which] = reader;
    const kind = which === "stdout" ? TO_FRONT.stdout : TO_FRONT.stderr;
    try {
      while (true) {
        await credit.room(this.#stopped);
        if (this.#isStopped) break; // killed: the rest of the output is not wanted
        const { value, done } = await reader.read();
        if (done) break;
        for (let off = 0; off < value.byteLength; off += EXEC_CHUNK) {
          const part = value.subarray(off, off + EXEC_CHUNK);
          credit.inFlight += part.byteLength;
          this.#send(kind, part);
        }
      }
    } catch {
      // The run was killed or the stream cancelled: its output just stops.
    } finally {
      await reader.cancel().catch(() => {});
      this.#send(which === "stdout" ? TO_FRONT.stdoutEnd : TO_FRONT.stderrEnd);
    }
  }

  #onFrame(data: Uint8Array): void {
    const f = decodeFrame(data);
    if (!f) return;
    const order = this.#in.check(f.seq);
    if (order === "dup") return;
    if (order === "gap") {
      // A frame from the front node was lost: stdin may have a hole. End the run.
      this.run.kill("disconnect");
      return;
    }
    this.#heardAt = Date.now();
    switch (f.kind) {
      case TO_NODE.stdin:
        this.#takeStdin(f.payload.slice());
        break;
      case TO_NODE.stdinEnd:
        this.#stdinChain = this.#stdinChain.then(() => this.#stdin.close()).catch(() => {});
        break;
      case TO_NODE.stdoutCredit:
      case TO_NODE.stderrCredit: {
        const n = readU32(f.payload);
        if (n >= 0) this.#credit[f.kind === TO_NODE.stdoutCredit ? "stdout" : "stderr"].give(n);
        break;
      }
      case TO_NODE.stdoutCancel:
      case TO_NODE.stderrCancel: {
        const which = f.kind === TO_NODE.stdoutCancel ? "stdout" : "stderr";
        this.#credit[which].give(EXEC_WINDOW);
        void this.#readers[which]?.cancel().catch(() => {});
        break;
      }
      case TO_NODE.kill: {
        const reason = text.decode(f.payload) as ExecKillReason;
        this.run.kill(_KILL_REASONS.has(reason) ? reason : "client");
        break;
      }
      case TO_NODE.signal: {
        const sig = text.decode(f.payload);
        if (_SIGNALS.has(sig)) void this.run.signal(sig as ExecSignal).catch(() => {});
        break;
      }
      default: // beats only refresh the time heard
    }
  }

  /** Writes a stdin chunk after the ones before it; credit goes back once the pipe took it. */
  #takeStdin(chunk: Uint8Array): void {
    this.#stdinQueued += chunk.byteLength;
    if (this.#stdinQueued > 2 * EXEC_WINDOW) {
      // The front node ignored its credit: refuse to buffer more.
      this.run.kill("disconnect");
      return;
    }
    this.#stdinChain = this.#stdinChain.then(async () => {
      if (!this.#stdinClosed) {
        try {
          await this.#stdin.write(chunk);
        } catch {
          this.#stdinClosed = true;
          this.#send(TO_FRONT.stdinClosed);
        }
      }
      this.#stdinQueued -= chunk.byteLength;
      this.#stdinCredit += chunk.byteLength;
      if (this.#stdinCredit >= EXEC_CHUNK || this.#stdinQueued === 0) {
        this.#send(TO_FRONT.stdinCredit, u32(this.#stdinCredit));
        this.#stdinCredit = 0;
      }
    });
  }
}
