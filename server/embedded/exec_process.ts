/**
 * One running command: a `Deno.Command` child (bwrap, or prlimit when
 * unsandboxed) that leads its own process group, seen through the
 * {@linkcode ExecRun} web streams. Output is read from the child only when
 * the consumer pulls (high-water mark 0), so a command that prints forever
 * while nobody reads is paused by its pipe and holds bounded memory. The
 * whole group is killed on timeout and on {@linkcode ExecProcess.kill};
 * killing bwrap's group ends its pid namespace, so nothing started inside
 * survives.
 *
 * @module
 */
import type { ExecKillReason, ExecOutcome, ExecRun, ExecSignal } from "../backend/exec.ts";
import { RequestError } from "../errors.ts";
import type { GroupSignaller } from "./exec_group_signaller.ts";
import type { Launch } from "./exec_sandbox.ts";
import { signalFromStatus } from "./exec_signals.ts";

/** What {@linkcode ExecProcess.spawn} needs besides the launch. */
export interface SpawnOptions {
  /** The node name reported on the run. */
  node: string;
  /** The command line as run, for the audit log. */
  argv: readonly string[];
  /** The working directory on the host. */
  cwd: string;
  /** Killed (`timeout`) after this many ms. */
  timeoutMs: number;
  signaller: GroupSignaller;
}

/** A spawned command. Use {@linkcode ExecProcess.spawn}. */
export class ExecProcess implements ExecRun {
  readonly node: string;
  readonly argv: readonly string[];
  readonly cwd: string;
  /** Process id, also the process group id. */
  readonly pid: number;
  readonly stdin: WritableStream<Uint8Array>;
  readonly stdout: ReadableStream<Uint8Array>;
  readonly stderr: ReadableStream<Uint8Array>;
  readonly outcome: Promise<ExecOutcome>;
  #child: Deno.ChildProcess;
  #signaller: GroupSignaller;
  #sandboxed: boolean;
  #stdinWriter: WritableStreamDefaultWriter<Uint8Array>;
  #readers: ReadableStreamDefaultReader<Uint8Array>[] = [];
  #counts = { stdout: 0, stderr: 0 };
  #outputsEnded: Promise<unknown>;
  #killed: ExecKillReason | null = null;
  #timedOut = false;
  /** `exited`: the child was reaped; `finished`: the outcome is settled. */
  #state: "running" | "exited" | "finished" = "running";
  #abort = Promise.withResolvers<void>();

  private constructor(child: Deno.ChildProcess, launch: Launch, o: SpawnOptions) {
    this.#child = child;
    this.pid = child.pid;
    this.node = o.node;
    this.argv = o.argv;
    this.cwd = o.cwd;
    this.#sandboxed = launch.sandboxed;
    this.#signaller = o.signaller;
    this.#stdinWriter = child.stdin.getWriter();
    const w = this.#stdinWriter;
    this.stdin = new WritableStream<Uint8Array>({
      write: (chunk) => w.write(chunk),
      close: () => w.close(),
      abort: () => w.abort(),
    });
    const out = this.#output(child.stdout, "stdout");
    const err = this.#output(child.stderr, "stderr");
    this.stdout = out.stream;
    this.stderr = err.stream;
    this.#outputsEnded = Promise.all([out.ended, err.ended]);
    this.outcome = this.#run(o.timeoutMs);
  }

  /**
   * Spawns `launch` with exactly `launch.env`, as the leader of a new
   * session and process group; throws a clear {@linkcode RequestError} when
   * it cannot start.
   */
  static spawn(launch: Launch, options: SpawnOptions): ExecProcess {
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(launch.program, {
        args: launch.args,
        cwd: launch.cwd,
        clearEnv: true,
        env: launch.env,
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (e) {
      throw _spawnError(launch.program, e);
    }
    return new ExecProcess(child, launch, options);
  }

  get running(): boolean {
    return this.#state === "running";
  }

  async signal(sig: ExecSignal): Promise<void> {
    if (this.#state !== "running") return;
    await this.#signaller.signal(this.pid, sig, this.#child);
  }

  kill(reason: ExecKillReason): void {
    if (this.#state === "finished") return;
    this.#killed ??= reason;
    if (reason === "timeout") this.#timedOut = true;
    if (this.#state === "running") {
      void this.#signaller.signal(this.pid, "SIGKILL", this.#child).catch(() => {});
    }
    for (const r of this.#readers) r.cancel().catch(() => {});
    this.#abort.resolve();
  }

  /** A pull-only view of one output pipe; `ended` resolves at its end or cancel. */
  #output(
    source: ReadableStream<Uint8Array>,
    which: "stdout" | "stderr",
  ): { stream: ReadableStream<Uint8Array>; ended: Promise<void> } {
    const reader = source.getReader();
    this.#readers.push(reader);
    const ended = Promise.withResolvers<void>();
    const stream = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        const r = await reader.read().catch(() => null);
        if (r === null || r.done) {
          controller.close();
          ended.resolve();
          return;
        }
        this.#counts[which] += r.value.byteLength;
        controller.enqueue(r.value);
      },
      cancel: async () => {
        ended.resolve();
        await reader.cancel().catch(() => {});
      },
    }, { highWaterMark: 0 });
    return { stream, ended: ended.promise };
  }

  async #run(timeoutMs: number): Promise<ExecOutcome> {
    const start = performance.now();
    const timer = setTimeout(() => this.kill("timeout"), timeoutMs);
    try {
      const status = await this.#child.status;
      this.#state = "exited";
      // Nobody will write to a command that has ended.
      void this.#stdinWriter.abort().catch(() => {});
      // Descendants still in the group do not outlive the run. In a sandbox
      // they are already gone: the kernel killed them when bwrap's init, the
      // pid namespace's PID 1, exited.
      // (The signal may take a program's start-up: the outputs drain meanwhile.)
      const swept = this.#sandboxed
        ? undefined
        : this.#signaller.signal(this.pid, "SIGKILL").catch(() => {});
      await Promise.race([this.#outputsEnded, this.#abort.promise]);
      await swept;
      return {
        code: status.code,
        signal: status.signal ?? (this.#sandboxed ? signalFromStatus(status.code) : null),
        timedOut: this.#timedOut,
        killed: this.#killed,
        durationMs: Math.round(performance.now() - start),
        stdoutBytes: this.#counts.stdout,
        stderrBytes: this.#counts.stderr,
      };
    } finally {
      clearTimeout(timer);
      this.#state = "finished";
    }
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
