/**
 * Recursive transfers: a local directory tree to the server (`put -r`) and
 * a remote one to the local disk (`get -r`), one file at a time. Symlinks
 * found locally are skipped, never followed.
 *
 * @module
 */
import { join } from "@std/path";
import type { ParleyClient } from "../client.ts";
import { listRemote } from "./file_list.ts";
import type { TransferOptions, TransferResult } from "./transfer_common.ts";
import { downloadFile } from "./transfer_download.ts";
import { uploadFile } from "./transfer_upload.ts";
import { FILE_MKDIR } from "../../protocol/ops/files.ts";

/** Totals of a recursive transfer. */
export interface TreeResult {
  files: TransferResult[];
  dirs: number;
  skipped: string[];
}

function _remoteJoin(dir: string, rel: string): string {
  return dir === "" ? rel : `${dir.replace(/\/+$/, "")}/${rel}`;
}

/** Uploads the tree at `localDir` into `remoteDir` (created as needed). */
export async function uploadTree(
  client: ParleyClient,
  localDir: string,
  remoteDir: string,
  options: TransferOptions & { onFile?: (r: TransferResult) => void } = {},
): Promise<TreeResult> {
  const out: TreeResult = { files: [], dirs: 0, skipped: [] };
  await client.call(FILE_MKDIR, { path: remoteDir, parents: true });
  out.dirs++;
  const walk = async (rel: string): Promise<void> => {
    const names: Deno.DirEntry[] = [];
    for await (const e of Deno.readDir(join(localDir, rel))) names.push(e);
    names.sort((a, b) => a.name < b.name ? -1 : 1);
    for (const e of names) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isSymlink) {
        out.skipped.push(join(localDir, r));
      } else if (e.isDirectory) {
        await client.call(FILE_MKDIR, { path: _remoteJoin(remoteDir, r), parents: true });
        out.dirs++;
        await walk(r);
      } else if (e.isFile) {
        const res = await uploadFile(client, join(localDir, r), _remoteJoin(remoteDir, r), options);
        out.files.push(res);
        options.onFile?.(res);
      } else {
        out.skipped.push(join(localDir, r));
      }
    }
  };
  await walk("");
  return out;
}

/** Downloads the remote tree `remoteDir` into `localDir` (created as needed). */
export async function downloadTree(
  client: ParleyClient,
  remoteDir: string,
  localDir: string,
  options: TransferOptions & { onFile?: (r: TransferResult) => void } = {},
): Promise<TreeResult> {
  const out: TreeResult = { files: [], dirs: 0, skipped: [] };
  const listing = await listRemote(client, remoteDir, { recursive: true });
  await Deno.mkdir(localDir, { recursive: true });
  out.dirs++;
  for (const e of listing.entries) {
    const parts = e.name.split("/");
    if (parts.some((p) => p === "" || p === "." || p === ".." || /[\\\0]/.test(p))) {
      out.skipped.push(e.name); // never let a listed name leave localDir
      continue;
    }
    const local = join(localDir, ...parts);
    if (e.type === "dir") {
      await Deno.mkdir(local, { recursive: true });
      out.dirs++;
    } else if (e.type === "file") {
      const res = await downloadFile(
        client,
        { path: _remoteJoin(remoteDir, e.name) },
        local,
        options,
      );
      out.files.push(res);
      options.onFile?.(res);
    } else {
      out.skipped.push(e.name);
    }
  }
  return out;
}
