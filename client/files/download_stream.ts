/**
 * Downloads a remote or shared file into a byte sink instead of a local
 * file (`parley get REMOTE -` writes to standard output). Bytes go out as
 * they arrive; after a lost connection the download continues where the
 * sink left off. The SHA-256 is checked at the end: bytes already written
 * cannot be taken back, so a mismatch is reported (exit code 7) for the
 * reader to discard what it got.
 *
 * @example
 * ```ts ignore
 * await downloadToSink(client, { path: "notes.txt" }, (b) => Deno.stdout.write(b).then(() => {}));
 * ```
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { RemoteError } from "../../protocol/errors.ts";
import { FILE_GET, type FileGetReply } from "../../protocol/ops/files.ts";
import type { ParleyClient } from "../client.ts";
import { TransferError, type TransferOptions, withRetries } from "./transfer_common.ts";
import { type DownloadSource, sourceName, statSource } from "./transfer_download.ts";

/** What a download into a sink reports. */
export interface SinkResult {
  remote: string;
  size: number;
  sha256: string;
  /** Bytes that crossed the network. */
  transferred: number;
  ms: number;
}

/** A failure of the sink itself (e.g. a closed pipe); `cause` is the sink's error. */
class _SinkFailed extends Error {}

/** Downloads `source` into `sink`, which must take each chunk completely before resolving. */
export async function downloadToSink(
  client: ParleyClient,
  source: DownloadSource,
  sink: (bytes: Uint8Array) => Promise<void>,
  options: Pick<TransferOptions, "onProgress" | "reconnectWaitMs" | "maxAttempts"> = {},
): Promise<SinkResult> {
  const t0 = performance.now();
  const st = await statSource(client, source);
  if (st.type !== "file") {
    throw new TransferError(
      "local",
      `${sourceName(source)} is not a file; only a file can go to standard output`,
    );
  }
  // The SHA-256 of the bytes written so far. From byte 0 the stream's running SHA-256
  // (PROTOCOL.md §4.7), where the session keeps one (plaintext), is the output's: each byte is
  // hashed once, as the session receives it, and after a lost connection hashing goes on here
  // from the state the stream reached.
  let hash: Hash | undefined;
  let got = 0;
  const reply = await withRetries(client, options, async () => {
    if (got === 0) hash = undefined;
    else if (hash === undefined) {
      throw new TransferError("interrupted", "the output cannot be checked; run the command again");
    }
    const args = "path" in source
      ? { path: source.path, offset: got, size: st.size, mtime: st.mtime ?? 0 }
      : { shared: source.shared, offset: got, size: st.size };
    const { stream, result } = client.open(FILE_GET, args, { fin: true });
    result.catch(() => {});
    const fromStream = got === 0 && stream.hashesReads;
    try {
      for (let chunk = await stream.read(); chunk; chunk = await stream.read()) {
        if (got + chunk.byteLength > st.size) {
          throw new TransferError("checksum", "the server sent more bytes than the file has");
        }
        if (!fromStream) (hash ??= createHash("sha256")).update(chunk);
        try {
          await sink(chunk);
        } catch (e) {
          stream.reset("cancel", "output closed");
          throw new _SinkFailed("output failed", { cause: e });
        }
        got += chunk.byteLength;
        options.onProgress?.({ phase: "receive", done: got, total: st.size });
      }
    } catch (e) {
      if (e instanceof _SinkFailed || e instanceof TransferError) throw e;
      await result; // a refusal arrives as the reply; prefer it over the stream's reset
      throw e;
    } finally {
      // The bytes the stream returned are the bytes written (a failed write ends the download).
      if (fromStream && got > 0) hash = stream.readHashState();
    }
    return (await result) as FileGetReply;
  }).catch((e) => {
    if (e instanceof _SinkFailed) throw e.cause;
    if (e instanceof RemoteError && e.code === "changed") {
      throw new TransferError(
        "interrupted",
        `${sourceName(source)} changed during the download; the output is incomplete, ` +
          "run the command again",
        { cause: e },
      );
    }
    throw e;
  });
  const sha256 = (hash ?? createHash("sha256")).digest("hex");
  const expected = "shared" in source && source.sha256 ? source.sha256 : reply.sha256;
  if (got !== reply.size || sha256 !== reply.sha256 || sha256 !== expected) {
    throw new TransferError(
      "checksum",
      `${sourceName(source)}: the bytes written do not match the SHA-256 ` +
        `(${sha256.slice(0, 16)}… vs ${expected.slice(0, 16)}…); discard the output`,
    );
  }
  return {
    remote: st.path ?? sourceName(source),
    size: got,
    sha256,
    transferred: got,
    ms: performance.now() - t0,
  };
}
