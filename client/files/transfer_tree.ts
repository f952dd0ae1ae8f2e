/**
 * Recursive transfers: a local directory tree to the server (`put -r`) and
 * a remote one to the local disk (`get -r`), one file at a time. Symlinks
 * found locally are skipped, never followed. Remote names are the local ones
 * in NFC.
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
import { formatBytes } from "../../protocol/format_bytes.ts";

/** Totals of a recursive transfer. */
export interface TreeResult {
  files: TransferResult[];
  dirs: number;
  skipped: string[];
}

/** `1 file`, `2 files`: `n` with the singular or plural noun. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * The closing line of a recursive transfer, e.g. "uploaded 1 file (3 B) in 2
 * directories to ~/docs", with " (1 skipped)" when entries were skipped.
 */
export function treeSummary(verb: string, tree: TreeResult, where: string): string {
  const bytes = tree.files.reduce((n, f) => n + f.size, 0);
  const skipped = tree.skipped.length > 0 ? `, ${tree.skipped.length} skipped` : "";
  return `${verb} ${plural(tree.files.length, "file")} (${formatBytes(bytes)}) in ` +
    `${plural(tree.dirs, "directory", "directories")} ${verb === "uploaded" ? "to" : "into"} ` +
    `${where}${skipped}`;
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
      // Remote names in NFC: names from macOS come decomposed (NFD).
      const remote = _remoteJoin(remoteDir, r.normalize("NFC"));
      if (e.isSymlink) {
        out.skipped.push(join(localDir, r));
      } else if (e.isDirectory) {
        await client.call(FILE_MKDIR, { path: remote, parents: true });
        out.dirs++;
        await walk(r);
      } else if (e.isFile) {
        const res = await uploadFile(client, join(localDir, r), remote, options);
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
