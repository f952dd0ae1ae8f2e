/**
 * Backend interfaces for exec (see `mod.ts`): running a command the exec
 * feature's policy allowed, choosing the node that runs it, and the audit
 * trail. The feature (`server/exec/`) decides *whether* a user may run
 * something and wires the client's streams to a run; implementations decide
 * *how* it runs (embedded: a bubblewrap sandbox on this host; NATS: the same
 * on a named node, with the streams carried over subjects).
 *
 * Every implementation keeps these guarantees:
 * - **Nothing outlives a run.** When {@linkcode ExecRun.outcome} resolves,
 *   the command's whole process group — in a sandbox its whole pid
 *   namespace, daemons included — has ended, or has been sent SIGKILL and
 *   runs no further (the kernel may take a moment to reap it). Only
 *   without a sandbox (`--exec-unsandboxed`) can a process that started a
 *   session of its own escape the group (docs/exec.md).
 * - **Output is never buffered without bound.** stdout and stderr are read
 *   from the command only as fast as the consumer reads them (a command that
 *   prints forever while nobody reads is paused by its pipe); stdin accepts
 *   a chunk only once the command's pipe took the previous one.
 * - **Kill is final and idempotent.** {@linkcode ExecRun.kill} ends the
 *   whole run at once; a kill after the end, or a second kill, is a no-op.
 * - **Refusals are immediate.** A run that cannot start (unknown node, cwd
 *   outside the user's directory, missing program) rejects before any
 *   process exists, with a `RequestError` whose code the client sees.
 *
 * @module
 */

/** A signal a run may receive (the client's choice is limited by the feature). */
export type ExecSignal = Deno.Signal;

/** Why the server ended a run before it ended by itself. */
export type ExecKillReason = "timeout" | "disconnect" | "shutdown" | "client";

/** Per-run resource caps (each process of a run; see docs/exec.md). */
export interface ExecCaps {
  /** Processes and threads at once (RLIMIT_NPROC). */
  processes: number;
  /** Address space of each process in bytes (RLIMIT_AS). */
  memoryBytes: number;
  /** CPU seconds of each process (RLIMIT_CPU). */
  cpuSeconds: number;
  /** Largest file written in bytes (RLIMIT_FSIZE). */
  fileBytes: number;
  /** Size of the run's private `/tmp` in bytes. */
  tmpBytes: number;
}

/** A run the exec policy allowed. */
export interface ExecPlan {
  /** The account the run belongs to; its exec directory is where `cwd` starts. */
  user: string;
  /**
   * What to run: an argv (`argv[0]` a bare name looked up in `env.PATH`, or
   * an absolute path; passed literally) or a shell line (run as the node's
   * shell with `-c LINE`).
   */
  command: { argv: readonly string[] } | { shell: string };
  /**
   * Working directory relative to the user's exec directory (`""` = the
   * directory itself); already free of `..` escapes and absolute paths.
   * The runner resolves it, symlinks included, and refuses one that leads
   * outside (`forbidden`), is missing (`not_found`) or is no directory
   * (`bad_request`).
   */
  cwd: string;
  /** The command's complete environment (nothing else is inherited). */
  env: Readonly<Record<string, string>>;
  /** The run is killed (`timeout`) when it lasts longer than this. */
  timeoutMs: number;
  /** Resource caps. */
  caps: ExecCaps;
  /**
   * Set for a run routed to another node: what the client asked for, which
   * that node checks against its own policy (allow-list, shell mode,
   * timeout limit; `env` and `caps` are its own), and where the request
   * came from, for its audit line. `timeoutMs` is absent when the client
   * named none (that node's default applies).
   */
  routed?: { addr: string; timeoutMs?: number };
}

/** How a run ended. */
export interface ExecOutcome {
  /** Exit code; 128+n when signal n ended the command. */
  code: number;
  /** The terminating signal, if any. */
  signal: ExecSignal | null;
  /** The timeout passed before the run ended. */
  timedOut: boolean;
  /** Set when the server ended the run ({@linkcode ExecRun.kill}, timeout). */
  killed: ExecKillReason | null;
  /** Wall time from start to end, in ms. */
  durationMs: number;
  /** Bytes of stdout handed to the consumer. */
  stdoutBytes: number;
  /** Bytes of stderr handed to the consumer. */
  stderrBytes: number;
}

/** A started command. */
export interface ExecRun {
  /** The node it runs on. */
  readonly node: string;
  /** The command line as run (a shell line as `[shell, "-c", LINE]`), for the audit log. */
  readonly argv: readonly string[];
  /** The working directory as the node names it (absolute), for the audit log. */
  readonly cwd: string;
  /**
   * The command's stdin. Closing it is end of input; a write rejects once
   * the command closed its stdin or ended (what is still sent is then for
   * the caller to drop).
   */
  readonly stdin: WritableStream<Uint8Array>;
  /**
   * The command's stdout, read from the command only on demand. It closes
   * at the command's end of output and when the run is killed; cancelling
   * it discards the rest (the command's writes then fail with EPIPE).
   */
  readonly stdout: ReadableStream<Uint8Array>;
  /** The command's stderr; as {@linkcode stdout}. */
  readonly stderr: ReadableStream<Uint8Array>;
  /** False once the command has exited. */
  readonly running: boolean;
  /**
   * Resolves once the command has exited, the rest of its group or
   * namespace is gone or killed, and both output streams have ended (read
   * to their end or cancelled) — after a kill without waiting for the
   * streams. Never rejects. The timeout runs until it resolves.
   */
  readonly outcome: Promise<ExecOutcome>;
  /** Sends `sig` to the command's whole process group; a no-op once it exited. */
  signal(sig: ExecSignal): Promise<void>;
  /**
   * Kills the whole run now (SIGKILL to the group) and ends both output
   * streams; the first reason is the one reported. A no-op after the end.
   */
  kill(reason: ExecKillReason): void;
}

/** Runs plans on this node. */
export interface ExecRunner {
  /**
   * Starts `plan`. Rejects with a `RequestError` when it cannot: `forbidden`
   * (exec off on this node, cwd outside the user's directory, a program the
   * node may not run), `not_found` (missing cwd or program), `bad_request`
   * (cwd not a directory), `internal`.
   */
  start(plan: ExecPlan): Promise<ExecRun>;
}

/** A node that may run commands. */
export interface ExecNode {
  /** Its name, as `parley exec --node NAME` gives it. */
  name: string;
  /** Whether it allows exec at all. */
  exec: boolean;
  /** Whether it is the node this server process is. */
  local: boolean;
}

/** Picks the node a run goes to. */
export interface ExecRouter {
  /** This node's name. */
  readonly local: string;
  /** The nodes currently known, this one first. */
  list(): Promise<ExecNode[]>;
  /**
   * Starts `plan` on `node`. An unknown or absent node rejects at once with
   * `not_found`; otherwise as {@linkcode ExecRunner.start} on that node.
   */
  open(node: string, plan: ExecPlan): Promise<ExecRun>;
}

/** One audited run or refused request (one JSON line in the embedded log). */
export interface ExecAuditEntry {
  /** Start time, ISO 8601. */
  start: string;
  user: string;
  /** Client address `host:port` (`""` for a summary line). */
  addr: string;
  /** The command as run (argv; shell lines as `[shell, "-c", LINE]`), cut to a byte budget. */
  argv: string[];
  /** Set when `argv` was cut: how many arguments and UTF-8 bytes it really had. */
  argvTotal?: { args: number; bytes: number };
  /** Working directory (absolute, on the node); null when it never ran. */
  cwd: string | null;
  /** Run time in ms (0 when refused). */
  durationMs: number;
  /** Exit code (128+n when killed by signal n); null when it never ran. */
  code: number | null;
  /** Terminating signal, if any. */
  signal: string | null;
  /** Whether the timeout killed it. */
  timedOut?: boolean;
  /** Why it ended early: `timeout`, `disconnect`, `shutdown`, `client`. */
  killed?: string;
  /** Error code when the run was refused or failed to start. */
  refused?: string;
  /** Refused requests of this user not logged (rate limit) since its previous entry. */
  suppressed?: number;
  /** The node that ran it, when not the node writing the entry (a routed run, front side). */
  node?: string;
  /** The node the client is connected to, when not the node writing the entry (a routed run). */
  via?: string;
}

/** Where runs and refusals are recorded. */
export interface ExecAudit {
  /** Records a run that ended. Entries are kept in call order; resolves once stored. */
  run(entry: ExecAuditEntry): Promise<void>;
  /**
   * Records a refused request (`entry.refused` set). May be rate-limited
   * per user: a refusal not stored is counted, and the count is stored
   * with that user's next stored refusal or when the sink closes.
   */
  refused(entry: ExecAuditEntry): Promise<void>;
}

/** Everything exec needs from the backend. */
export interface ExecBackend {
  /** Runs plans on this node. */
  readonly runner: ExecRunner;
  /** Chooses the node for a run; what the feature starts runs through. */
  readonly router: ExecRouter;
  /** The audit trail. */
  readonly audit: ExecAudit;
}
