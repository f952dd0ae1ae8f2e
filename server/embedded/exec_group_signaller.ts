/**
 * Sends a signal to a whole process group. Every command runs as the leader
 * of its own session and process group (its launch runs `setsid`), so its
 * pid is its group id and `kill(-pgid)` reaches all its descendants that did
 * not start a session of their own.
 *
 * `Deno.kill` needs the unscoped `--allow-run` permission. When the server
 * runs with a scoped `--allow-run=…` list, the group is signalled through the
 * `kill` program instead, which must then be in the list.
 *
 * @module
 */

/** How the group is signalled. */
export type SignalMethod = "deno" | "program" | "leader-only";

/** Signals process groups with the best method the permissions allow. */
export class GroupSignaller {
  /** The method chosen at construction. */
  readonly method: SignalMethod;
  #killPath: string;

  constructor(options: { killPath: string }) {
    this.#killPath = options.killPath;
    if (Deno.permissions.querySync({ name: "run" }).state === "granted") {
      this.method = "deno";
    } else if (
      Deno.permissions.querySync({ name: "run", command: options.killPath }).state === "granted"
    ) {
      this.method = "program";
    } else {
      this.method = "leader-only";
    }
  }

  /**
   * Sends `signal` to group `pgid`; falls back to the leader alone (through
   * its handle) when the group cannot be reached. A group that is already
   * gone is not an error.
   */
  async signal(pgid: number, signal: Deno.Signal, leader?: Deno.ChildProcess): Promise<void> {
    if (!Number.isInteger(pgid) || pgid <= 1) throw new RangeError(`bad process group ${pgid}`);
    if (this.method === "deno") {
      try {
        Deno.kill(-pgid, signal);
        return;
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    } else if (this.method === "program") {
      // Exit status 1 means no such group (any more, or not yet).
      const out = await new Deno.Command(this.#killPath, {
        args: ["-s", signal.replace(/^SIG/, ""), "--", `-${pgid}`],
        stdin: "null",
        stdout: "null",
        stderr: "null",
        clearEnv: true,
      }).output();
      if (out.success) return;
    }
    // No such group: gone, or not made yet by a launch that runs setsid itself. The leader, if
    // it still runs, is the whole run then.
    try {
      leader?.kill(signal);
    } catch (e) {
      if (!(e instanceof TypeError)) throw e; // already exited
    }
  }
}
