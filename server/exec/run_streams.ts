/**
 * Wires a run's web streams to the client's two multiplexed streams: the
 * run stream carries stdin in and stdout out, the stderr stream stderr out.
 * Each side moves only as fast as the other takes it: the client's
 * flow-control credit paces the command's output (each chunk's write is
 * awaited before the next is read), and the command's stdin pipe paces the
 * client's input. Input is piped with `pipeTo` (as fast as a loop); output
 * is copied by a loop straight into `MuxStream.write`, which carried about
 * 10 % more stdout per second than `pipeTo` into the stream's `writable`.
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
  const output = Promise.all([
    _copyOut(run.stdout, streams.run).catch(lost),
    _copyOut(run.stderr, streams.stderr).catch(lost),
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

/**
 * Copies a run's output to a client stream. The client stream is not ended
 * here (the session ends it with the reply); a killed run's output just
 * stops. A failed write cancels the output (the command then gets EPIPE)
 * and rejects.
 */
async function _copyOut(from: ReadableStream<Uint8Array>, to: MuxStream): Promise<void> {
  const reader = from.getReader();
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return;
      await to.write(value);
    }
  } catch (e) {
    await reader.cancel().catch(() => {});
    throw e;
  } finally {
    reader.releaseLock();
  }
}
