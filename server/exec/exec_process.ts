/**
 * One running command: a `Deno.Command` child (bwrap, or prlimit when
 * unsandboxed) that leads its own process group, wired to three
 * flow-controlled streams. Output is read only as fast as the client takes
 * it (each chunk's `write` is awaited), so a command that prints forever is
 * paused by the pipe and holds bounded memory. The whole group is killed
 * when the command ends, on timeout, on {@linkcode kill}, and when either
 * stream (run or stderr) fails; killing bwrap's group ends its pid
 * namespace, so nothing started inside survives.
 *
 * @module
 */
import type { MuxStream } from "../../protocol/mux_stream.ts";
import { RequestError } from "../errors.ts";
import type { GroupSignaller } from "./group_signaller.ts";
import type { RunPlan } from "./exec_policy.ts";
import { type Launch, signalFromStatus } from "./sandbox.ts";

/** Why a run was killed before it ended by itself. */
export type KillReason = "timeout" | "disconnect" | "shutdown" | "client";

/** How a run ended. */
export interface ExecOutcome {
  /** Exit code; 128+n when killed by signal n. */
  code: number;
  /** Terminating signal, if any. */
  signal: Deno.Signal | null;
  /** The timeout passed before the run finished. */
  timedOut: boolean;
  /** Set when the server killed the run. */
  killed: KillReason | null;
  /** Wall time from spawn to end, in ms. */
  durationMs: number;
  /** Bytes of stdout passed on. */
  stdoutBytes: number;
  /** Bytes of stderr passed on. */
  stderrBytes: number;
}

/** Streams a run is wired to. */
export interface ExecStreams {
  /** Carries stdin (from the client) and stdout (to the client). */
  run: MuxStream;
  /** Carries stderr to the client. */
  stderr: MuxStream;
}

/** A spawned command. Use {@linkcode ExecProcess.spawn}. */
export class ExecProcess {
  /** Process id, also the process group id. */
  readonly pid: number;
  /** Resolves when the command has ended and its output has been passed on. */
  readonly done: Promise<ExecOutcome>;
  #child: Deno.ChildProcess;
  #signaller: GroupSignaller;
  #readers: ReadableStreamDefaultReader<Uint8Array>[] = [];
  #killed: KillReason | null = null;
  #timedOut = false;
  #exited = false;
  #finished = false;
  #abort!: () => void;
  #aborted = new Promise<void>((r) => (this.#abort = r));

  #lostReason: () => KillReason;
  #sandboxed: boolean;

  private constructor(
    child: Deno.ChildProcess,
    plan: RunPlan,
    options: {
      launch: Launch;
      signaller: GroupSignaller;
      streams: ExecStreams;
      lostReason?: () => KillReason;
    },
  ) {
    this.#child = child;
    this.pid = child.pid;
    this.#sandboxed = options.launch.sandboxed;
    this.#signaller = options.signaller;
    this.#lostReason = options.lostReason ?? (() => "client");
    this.done = this.#run(plan, options.streams);
  }

  /**
   * Spawns `launch` (which runs `plan`) with exactly `env`; throws a clear
   * {@linkcode RequestError} when it cannot start.
   */
  static spawn(
    plan: RunPlan,
    options: {
      launch: Launch;
      env: Record<string, string>;
      signaller: GroupSignaller;
      streams: ExecStreams;
      /** Why the run is killed when one of its streams fails (default `client`). */
      lostReason?: () => KillReason;
    },
  ): ExecProcess {
    let child: Deno.ChildProcess;
    const l = options.launch;
    try {
      child = new Deno.Command(l.program, {
        args: l.args,
        cwd: l.cwd,
        ...(l.uid !== undefined ? { uid: l.uid, gid: l.gid } : {}),
        clearEnv: true,
        env: options.env,
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
        detached: true, // setsid(2): its own session and process group
      }).spawn();
    } catch (e) {
      throw _spawnError(l.program, e);
    }
    return new ExecProcess(child, plan, options);
  }

  /** Whether the command is still running. */
  get running(): boolean {
    return !this.#exited;
  }

  /** Sends `signal` to the command's process group (in a sandbox: bwrap's, which holds it). */
  async signal(signal: Deno.Signal): Promise<void> {
    if (this.#exited) return;
    await this.#signaller.signal(this.pid, signal, this.#child);
  }

  /** Kills the whole process group and stops passing output on. Idempotent. */
  kill(reason: KillReason): void {
    if (this.#finished) return;
    this.#killed ??= reason;
    if (reason === "timeout") this.#timedOut = true;
    if (!this.#exited) {
      void this.#signaller.signal(this.pid, "SIGKILL", this.#child).catch(() => {});
    }
    for (const r of this.#readers) r.cancel().catch(() => {});
    this.#abort();
  }

  async #run(plan: RunPlan, s: ExecStreams): Promise<ExecOutcome> {
    const start = performance.now();
    const timer = setTimeout(() => this.kill("timeout"), plan.timeoutMs);
    // A reset of either stream is an abort, even when no output is pending on it.
    const lost = () => this.kill(this.#lostReason());
    void s.stderr.failed.then(lost).catch(() => {}); // `failed` never rejects, nor does kill()
    void s.run.failed.then(lost).catch(() => {});
    try {
      void this.#pumpIn(s.run).catch(lost);
      const counts = { stdout: 0, stderr: 0 };
      const output = Promise.all([
        this.#pumpOut(this.#child.stdout, s.run, (n) => (counts.stdout += n)),
        this.#pumpOut(this.#child.stderr, s.stderr, (n) => (counts.stderr += n)),
      ]);
      const status = await this.#child.status;
      this.#exited = true;
      // Descendants still in the group do not outlive the run. In a sandbox
      // they are already gone: the kernel killed them when bwrap's init, the
      // pid namespace's PID 1, exited.
      if (!this.#sandboxed) await this.#signaller.signal(this.pid, "SIGKILL").catch(() => {});
      await Promise.race([output, this.#aborted]);
      return {
        code: status.code,
        signal: status.signal ?? (this.#sandboxed ? signalFromStatus(status.code) : null),
        timedOut: this.#timedOut,
        killed: this.#killed,
        durationMs: Math.round(performance.now() - start),
        stdoutBytes: counts.stdout,
        stderrBytes: counts.stderr,
      };
    } finally {
      clearTimeout(timer);
      this.#finished = true;
    }
  }

  async #pumpOut(
    readable: ReadableStream<Uint8Array>,
    stream: MuxStream,
    count: (n: number) => void,
  ): Promise<void> {
    const reader = readable.getReader();
    this.#readers.push(reader);
    if (this.#killed) await reader.cancel().catch(() => {});
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        await stream.write(value);
        count(value.byteLength);
      }
    } catch {
      // The stream failed: the client reset it or went away.
      this.kill(this.#lostReason());
    }
  }

  async #pumpIn(stream: MuxStream): Promise<void> {
    const writer = this.#child.stdin.getWriter();
    let streamFailed = false;
    try {
      while (true) {
        let chunk: Uint8Array | null;
        try {
          chunk = await stream.read();
        } catch {
          streamFailed = true;
          break;
        }
        if (chunk === null) break;
        await writer.write(chunk);
      }
      await writer.close();
    } catch {
      // The command closed its stdin or ended; what the client still sends is dropped below.
      await writer.abort().catch(() => {});
    }
    if (streamFailed) {
      this.kill(this.#lostReason());
      await writer.abort().catch(() => {});
      return;
    }
    // Keep returning credit so the client is never stuck writing to a finished command.
    try {
      while ((await stream.read()) !== null) { /* discard */ }
    } catch { /* stream gone */ }
  }
}

function _spawnError(program: string, e: unknown): Error {
  const name = JSON.stringify(program);
  if (e instanceof Deno.errors.NotFound) {
    return new RequestError(
      "not_found",
      `command ${name} was not found (looked up in the exec environment's PATH)`,
      { cause: e },
    );
  }
  if (e instanceof Deno.errors.NotCapable) {
    return new RequestError(
      "forbidden",
      `the server's Deno permissions do not allow running ${name}; add it to --allow-run (docs/exec.md)`,
      { cause: e },
    );
  }
  if (e instanceof Deno.errors.PermissionDenied) {
    return new RequestError("forbidden", `permission denied running ${name}`, { cause: e });
  }
  return new RequestError("internal", `cannot start ${name}`, { cause: e });
}
