/**
 * Signal numbers on Linux, for relaying a sandboxed command's exit status:
 * bwrap's init exits with 128+n when the command is killed by signal n.
 *
 * @module
 */

/** Linux signal numbers, for relaying a sandboxed command's 128+n exit status. */
const _SIGNALS: Record<number, Deno.Signal> = {
  1: "SIGHUP",
  2: "SIGINT",
  3: "SIGQUIT",
  4: "SIGILL",
  5: "SIGTRAP",
  6: "SIGABRT",
  7: "SIGBUS",
  8: "SIGFPE",
  9: "SIGKILL",
  10: "SIGUSR1",
  11: "SIGSEGV",
  12: "SIGUSR2",
  13: "SIGPIPE",
  14: "SIGALRM",
  15: "SIGTERM",
  24: "SIGXCPU",
  25: "SIGXFSZ",
  26: "SIGVTALRM",
  27: "SIGPROF",
  31: "SIGSYS",
};

/**
 * bwrap's init exits with 128+n when the command is killed by signal n (as
 * a shell reports it); this maps such a status back to the signal.
 */
export function signalFromStatus(code: number): Deno.Signal | null {
  return code > 128 ? _SIGNALS[code - 128] ?? null : null;
}
