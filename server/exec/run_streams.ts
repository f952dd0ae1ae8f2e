/**
 * Wires a run's web streams to the client's two multiplexed streams: the
 * run stream carries stdin in and stdout out, the stderr stream stderr out.
 * Everything is piped (`pipeTo`), so each side moves only as fast as the
 * other takes it: the client's flow-control credit paces the command's
 * output, and the command's stdin pipe paces the client's input.
 *
 * A reset of either client stream (or a failed write to it) calls `lost`,
 * which kills the run.
 *
 * @module
 */
import type { MuxStream } from "../../protocol/mux_stream.ts";
import type { ExecOutcome, ExecRun } from "../backend/exec.ts";

/** The client's streams of one run. */
export interface RunStreams {
  /** stdin from the client, stdout to it. */
  run: MuxStream;
  /** stderr to the client. */
  stderr: MuxStream;
}

/**
 * Pipes `run` and `streams` together; resolves with the outcome once the
 * command ended and — unless it was killed — all its output was handed to
 * the client's streams.
 */
export async function wireRun(
  run: ExecRun,
  streams: RunStreams,
  lost: () => void,
): Promise<ExecOutcome> {
  // A reset of either stream is an abort, even when no output is pending on it.
  void streams.run.failed.then(lost).catch(() => {}); // `failed` never rejects, nor does kill()
  void streams.stderr.failed.then(lost).catch(() => {});
  void _feedStdin(streams.run, run.stdin).catch(() => {}); // catches everything itself
  // The session ends the client streams itself after the reply; a killed run's
  // output just stops (not an error the client should see as a reset).
  const keep = { preventClose: true, preventAbort: true };
  const output = Promise.all([
    run.stdout.pipeTo(streams.run.writable, keep).catch(lost),
    run.stderr.pipeTo(streams.stderr.writable, keep).catch(lost),
  ]);
  const outcome = await run.outcome;
  if (outcome.killed === null) await output;
  return outcome;
}

/**
 * Pipes the client's input into the command's stdin, ending it at the
 * client's end of input. When the command stops taking input first, what
 * the client still sends is read and dropped, so its credit comes back and
 * it is never stuck writing to a finished command.
 */
async function _feedStdin(stream: MuxStream, stdin: WritableStream<Uint8Array>): Promise<void> {
  const input = stream.readable;
  try {
    await input.pipeTo(stdin, { preventCancel: true });
    return;
  } catch {
    // The command closed its stdin or ended, or the client's stream failed (then `lost` ran).
  }
  try {
    const reader = input.getReader();
    while (!(await reader.read()).done) { /* discard */ }
  } catch { /* stream gone */ }
}
