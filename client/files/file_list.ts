/**
 * Remote listings: `file.ls` streams one JSON entry per line; this reads
 * them into an array.
 *
 * @module
 */
import type { ParleyClient } from "../client.ts";
import { FILE_LS, type FileLsReply } from "../../protocol/ops/files.ts";

/** One remote entry. */
export interface RemoteEntry {
  /** Name, or a path relative to the listed directory when recursive. */
  name: string;
  type: "file" | "dir" | "other";
  size: number;
  /** ms since the epoch. */
  mtime: number;
  sha256?: string;
}

/** A listing. */
export interface RemoteListing {
  /** The listed path as the server shows it (`~/…`). */
  path: string;
  /** False when the path named a single file. */
  dir: boolean;
  entries: RemoteEntry[];
}

/** Lists `path` (default: the session's directory). */
export async function listRemote(
  client: ParleyClient,
  path: string | undefined,
  options: { sha256?: boolean; recursive?: boolean } = {},
): Promise<RemoteListing> {
  await client.waitOpen();
  const { stream, result } = client.open(FILE_LS, {
    ...(path !== undefined ? { path } : {}),
    sha256: options.sha256 ?? false,
    recursive: options.recursive ?? false,
  }, { fin: true });
  result.catch(() => {});
  const entries: RemoteEntry[] = [];
  const dec = new TextDecoder();
  let buf = "";
  try {
    for (let chunk = await stream.read(); chunk; chunk = await stream.read()) {
      buf += dec.decode(chunk, { stream: true });
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        entries.push(JSON.parse(buf.slice(0, i)) as RemoteEntry);
        buf = buf.slice(i + 1);
      }
    }
  } catch (e) {
    await result;
    throw e;
  }
  const r = (await result) as FileLsReply;
  return { path: r.path, dir: r.dir, entries };
}
