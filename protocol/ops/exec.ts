/**
 * The exec operations (PROTOCOL.md "Operations: exec"): their names, the
 * schema of each operation's arguments and the reply types. Shared by the
 * server, which validates arguments with these schemas, and the client.
 *
 * @module
 */
import { z } from "zod";

/** Opens the stream that runs a command (stdin up, stdout down). */
export const EXEC_RUN = "exec.run";
/** Opens the stream that carries a run's stderr; opened before `exec.run`, same token. */
export const EXEC_STDERR = "exec.stderr";
/** Sends a signal to a running command. */
export const EXEC_SIGNAL = "exec.signal";

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

const _NO_NUL = (s: string) => !s.includes("\0");
const _TOKEN = z.string().regex(TOKEN_PATTERN, "8–64 of A-Z a-z 0-9 _ -");

/** Argument schema of each exec operation. */
export const EXEC_ARGS = {
  [EXEC_RUN]: z.object({
    token: _TOKEN,
    argv: z.array(z.string().refine(_NO_NUL, "contains NUL")).min(1).max(4096).optional(),
    shell: z.string().min(1).refine(_NO_NUL, "contains NUL").optional(),
    cwd: z.string().max(4096).refine(_NO_NUL, "contains NUL").optional(),
    timeoutMs: z.number().int().min(1).optional(),
  }).strict(),
  [EXEC_STDERR]: z.object({ token: _TOKEN }),
  [EXEC_SIGNAL]: z.object({ token: _TOKEN, signal: z.enum(EXEC_SIGNALS) }),
} as const;

/** The token alone, read first from any exec request (other fields ignored). */
export const EXEC_TOKEN_ARGS: z.ZodType<{ token: string }> = z.object({ token: _TOKEN });

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
