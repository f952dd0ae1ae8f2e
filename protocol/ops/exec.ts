/**
 * The exec operations (PROTOCOL.md "Operations: exec"): their names, the
 * argument types of each operation and the reply types. Shared by the server
 * and the client. The argument schemas the server validates with are in
 * `exec_args.ts`; this file imports zod only as types, so a client never
 * loads it.
 *
 * @module
 */
import type { z } from "zod";
import type { EXEC_ARGS } from "./exec_args.ts";

/** Opens the stream that runs a command (stdin up, stdout down). */
export const EXEC_RUN = "exec.run";
/** Opens the stream that carries a run's stderr; opened before `exec.run`, same token. */
export const EXEC_STDERR = "exec.stderr";
/** Sends a signal to a running command. */
export const EXEC_SIGNAL = "exec.signal";

/** Lists the nodes that can be named in `exec.run` (`node`), this one included. */
export const EXEC_NODES = "exec.nodes";

/** Pattern for the client-chosen run token. */
export const TOKEN_PATTERN: RegExp = /^[A-Za-z0-9_-]{8,64}$/;

/** Signals a client may send to a run. */
export const EXEC_SIGNALS = [
  "SIGINT",
  "SIGTERM",
  "SIGKILL",
  "SIGHUP",
  "SIGQUIT",
  "SIGUSR1",
  "SIGUSR2",
  "SIGCONT",
  "SIGSTOP",
  "SIGTSTP",
  "SIGWINCH",
] as const;

/** A signal a client may send. */
export type ExecClientSignal = (typeof EXEC_SIGNALS)[number];

/** The arguments a client sends for exec operation `Op`. */
export type ExecArgs<Op extends keyof typeof EXEC_ARGS> = z.input<(typeof EXEC_ARGS)[Op]>;

/** Reply of `exec.run`: how the command ended. */
export interface ExecRunReply {
  /** Exit code; 128+n when killed by signal n. */
  code: number;
  /** Terminating signal, if any. */
  signal: string | null;
  /** Whether the server killed it at the timeout. */
  timedOut: boolean;
  /** Run time on the server in ms. */
  durationMs: number;
}

/** Reply of `exec.stderr`: the bytes of stderr sent. */
export interface ExecStderrReply {
  bytes: number;
}

/** One node in the reply of `exec.nodes`. */
export interface ExecNodeInfo {
  /** Its name, as `exec.run` takes it in `node`. */
  name: string;
  /** Whether it runs commands (started with `--exec`). */
  exec: boolean;
  /** Whether it is the node this connection is on. */
  self: boolean;
}

/** Reply of `exec.nodes`: the nodes known, this one first. */
export interface ExecNodesReply {
  nodes: ExecNodeInfo[];
}
