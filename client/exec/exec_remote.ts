/**
 * Runs a command on the server (PROTOCOL.md "Operations: exec"): opens the
 * stderr stream and the run stream under one random token, passes output to
 * the caller's sinks (awaiting each, so a slow sink slows the command down
 * rather than filling memory), forwards stdin and signals.
 *
 * @example
 * ```ts ignore
 * const run = RemoteExec.start(client, { argv: ["ls", "-l"] }, {
 *   stdout: (b) => Deno.stdout.write(b),
 *   stderr: (b) => Deno.stderr.write(b),
 * });
 * run.endInput();
 * const { code } = await run.done;
 * ```
 *
 * @module
 */
import type { Json } from "../../protocol/messages.ts";
import type { MuxStream } from "../../protocol/mux_stream.ts";
import {
  EXEC_NODES,
  EXEC_RUN,
  EXEC_SIGNAL,
  EXEC_STDERR,
  type ExecNodeInfo,
  type ExecNodesReply,
  type ExecRunReply,
} from "../../protocol/ops/exec.ts";

/** What to run. Exactly one of `argv` and `shell`. */
export interface ExecRequest {
  /** Command and arguments, passed literally (no shell). */
  argv?: string[];
  /** A shell line (needs a server in shell mode). */
  shell?: string;
  /** Working directory relative to the server's exec root. */
  cwd?: string;
  /** Timeout in ms (the server's default when absent). */
  timeoutMs?: number;
  /** The cluster node to run on (the node connected to when absent). */
  node?: string;
}

/** How a remote command ended. */
export type ExecResult = ExecRunReply;

/** Where output goes. A returned promise is awaited before more is read. */
export interface ExecSinks {
  stdout(chunk: Uint8Array): unknown;
  stderr(chunk: Uint8Array): unknown;
}

/** Something that can open streams: a `ParleyClient` or a `Session`. */
export interface StreamOpener {
  open(op: string, args?: Json, options?: { fin?: boolean }): {
    stream: MuxStream;
    result: Promise<unknown>;
  };
  call(op: string, args?: Json): Promise<unknown>;
}

function _newToken(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

async function _drain(stream: MuxStream, sink: (b: Uint8Array) => unknown): Promise<void> {
  for (let chunk = await stream.read(); chunk; chunk = await stream.read()) await sink(chunk);
}

/** A command running on the server. */
export class RemoteExec {
  /** Token naming this run on the connection. */
  readonly token: string;
  /** Resolves when the command ended and all its output reached the sinks; rejects with the server's refusal. */
  readonly done: Promise<ExecResult>;
  #client: StreamOpener;
  #run: MuxStream;
  #err: MuxStream;
  #finished = false;

  private constructor(client: StreamOpener, request: ExecRequest, sinks: ExecSinks) {
    this.#client = client;
    this.token = _newToken();
    const err = client.open(EXEC_STDERR, { token: this.token }, { fin: true });
    const args: Json = { token: this.token };
    if (request.argv) args.argv = request.argv;
    if (request.shell !== undefined) args.shell = request.shell;
    if (request.cwd !== undefined) args.cwd = request.cwd;
    if (request.timeoutMs !== undefined) args.timeoutMs = request.timeoutMs;
    if (request.node !== undefined) args.node = request.node;
    let run: ReturnType<StreamOpener["open"]>;
    try {
      run = client.open(EXEC_RUN, args);
    } catch (e) {
      err.stream.reset("cancel", "run not started");
      err.result.catch(() => {});
      throw e;
    }
    this.#run = run.stream;
    this.#err = err.stream;
    this.done = this.#settle(
      run.result,
      err.result,
      _drain(run.stream, (b) => sinks.stdout(b)),
      _drain(err.stream, (b) => sinks.stderr(b)),
    );
  }

  /** Starts `request` on `client`. */
  static start(client: StreamOpener, request: ExecRequest, sinks: ExecSinks): RemoteExec {
    return new RemoteExec(client, request, sinks);
  }

  /** Whether the run has finished (or failed). */
  get finished(): boolean {
    return this.#finished;
  }

  /** Sends bytes to the command's stdin; resolves when the connection took them. */
  async write(bytes: Uint8Array): Promise<void> {
    if (this.#finished || this.#run.writeEnded) return;
    await this.#run.write(bytes);
  }

  /** Ends the command's stdin (EOF). Idempotent. */
  endInput(): void {
    this.#run.end();
  }

  /** Sends `signal` (e.g. `SIGINT`) to the command's process group. */
  async signal(signal: string): Promise<void> {
    if (this.#finished) return;
    await this.#client.call(EXEC_SIGNAL, { token: this.token, signal });
  }

  /** Abandons the run: the server kills the command. */
  abort(): void {
    this.#run.reset("cancel", "client aborted the command");
    this.#err.reset("cancel", "client aborted the command");
  }

  async #settle(
    result: Promise<unknown>,
    errResult: Promise<unknown>,
    out: Promise<void>,
    err: Promise<void>,
  ): Promise<ExecResult> {
    const [r, er, o, e] = await Promise.allSettled([result, errResult, out, err]);
    this.#finished = true;
    this.#run.end();
    if (r.status === "rejected") throw r.reason;
    for (const s of [o, e, er]) if (s.status === "rejected") throw s.reason;
    return r.value as ExecResult;
  }
}

/** The nodes a run may name (`exec.nodes`), the connected one first. */
export async function listExecNodes(client: Pick<StreamOpener, "call">): Promise<ExecNodeInfo[]> {
  const reply = await client.call(EXEC_NODES, {}) as ExecNodesReply;
  return reply.nodes;
}

/** One line per node, for `/nodes` and `parley exec --list-nodes`. */
export function formatExecNodes(nodes: readonly ExecNodeInfo[]): string[] {
  const width = Math.max(4, ...nodes.map((n) => n.name.length));
  return nodes.map((n) =>
    `${n.name.padEnd(width)}  ${n.exec ? "runs commands" : "no exec      "}${
      n.self ? "  (connected)" : ""
    }`.trimEnd()
  );
}
