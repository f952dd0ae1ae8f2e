/**
 * One-shot file commands for scripts: `parley put`, `get`, `ls`, `stat`,
 * `rm`, `mv`, `mkdir`, `rmdir`. Each has `--help`, the shared credential
 * flags, `--json` output and the exit codes of `file_exit_codes.ts`.
 *
 * @module
 */
import { basename, join } from "@std/path";
import type { Command } from "../../main.ts";
import { RemoteError } from "../../protocol/errors.ts";
import { type Flags, parseFlags } from "../../cli/flags.ts";
import {
  CLIENT_BOOLEAN_FLAGS,
  CLIENT_FLAGS_HELP,
  CLIENT_STRING_FLAGS,
  credentialInput,
} from "../cli_util.ts";
import { ParleyClient } from "../client.ts";
import { resolveCredentials } from "../credentials.ts";
import { EXIT, EXIT_HELP, exitCodeFor } from "./file_exit_codes.ts";
import { listRemote, type RemoteEntry } from "./file_list.ts";
import type { TransferOptions, TransferResult } from "./transfer_common.ts";
import { TransferError } from "./transfer_common.ts";
import { downloadFile, statSource } from "./transfer_download.ts";
import { createProgress, formatBytes, summaryLine } from "./transfer_progress.ts";
import { downloadTree, uploadTree } from "./transfer_tree.ts";
import { uploadFile } from "./transfer_upload.ts";
import {
  FILE_MKDIR,
  FILE_MV,
  FILE_RM,
  FILE_RMDIR,
  FILE_STAT,
  type FileStatReply,
} from "../../protocol/ops/files.ts";

const _COMMON_HELP = `  --json        print one JSON object on stdout (errors too)
  -h, --help    show this help

Remote paths are relative to your home directory on the server (~ or ~/PATH
name it explicitly); .., absolute paths, control characters and backslashes
are refused.

${CLIENT_FLAGS_HELP}

${EXIT_HELP}`;

interface _Spec {
  usage: string;
  strings?: string[];
  booleans?: string[];
  alias?: Record<string, string>;
  minArgs: number;
  maxArgs: number;
  reconnect?: boolean;
  body: (client: ParleyClient, args: string[], f: Flags, out: _Out) => Promise<unknown>;
}

interface _Out {
  json: boolean;
  /** Prints a line for humans (suppressed by --json and --quiet). */
  say(line: string): void;
  tty: boolean;
}

function _command(spec: _Spec): Command {
  const help = `${spec.usage}\n${_COMMON_HELP}`;
  return {
    async run(args: string[]): Promise<number> {
      const parsed = parseFlags(args, {
        string: [...CLIENT_STRING_FLAGS, ...(spec.strings ?? [])],
        boolean: [...CLIENT_BOOLEAN_FLAGS, "json", ...(spec.booleans ?? [])],
        alias: spec.alias ?? {},
      }, help);
      if ("exitCode" in parsed) return parsed.exitCode;
      const f = parsed.flags;
      const pos = f._.map(String);
      if (pos.length < spec.minArgs || pos.length > spec.maxArgs) {
        console.error(`wrong number of arguments\n\n${help}`);
        return EXIT.usage;
      }
      const json = f.json === true;
      const quiet = f.quiet === true;
      const out: _Out = {
        json,
        tty: Deno.stderr.isTerminal() && !json && !quiet,
        say: (line) => {
          if (!json && !quiet) console.log(line);
        },
      };
      try {
        const creds = await resolveCredentials(credentialInput(f));
        await using client = await ParleyClient.connect({
          ...creds,
          reconnect: spec.reconnect ?? false,
        });
        const result = await spec.body(client, pos, f, out);
        if (json) console.log(JSON.stringify({ ok: true, ...(result as object) }));
        return EXIT.ok;
      } catch (e) {
        const code = exitCodeFor(e);
        const message = (e as Error)?.message ?? String(e);
        if (json) {
          const errCode = e instanceof RemoteError || e instanceof TransferError ? e.code : "error";
          console.log(JSON.stringify({ ok: false, code: errCode, error: message, exit: code }));
        } else {
          const detail = e instanceof RemoteError ? ` (${e.code})` : "";
          console.error(
            e instanceof Deno.errors.ConnectionRefused
              ? "parley: cannot reach the server (connection refused); is `parley serve` running?"
              : `parley: ${message}${detail}`,
          );
        }
        return code;
      }
    },
  };
}

function _transferOptions(f: Flags, progress: TransferOptions["onProgress"]): TransferOptions {
  return {
    overwrite: f.overwrite === true,
    resume: f["no-resume"] !== true,
    parents: f.parents === true,
    ...(progress ? { onProgress: progress } : {}),
  };
}

function _fileJson(r: TransferResult) {
  return {
    local: r.local,
    remote: r.remote,
    size: r.size,
    sha256: r.sha256,
    resumedFrom: r.resumedFrom,
    seconds: r.ms / 1000,
  };
}

const _TRANSFER_FLAGS = `  --overwrite   replace an existing file
  --resume      continue an interrupted transfer of the same file (the default)
  --no-resume   start over even if part of the file was already transferred
  -r            transfer a directory recursively
  -q, --quiet   print nothing on success`;

/** `parley put LOCAL [REMOTE]`. */
export const put: Command = _command({
  usage: `Usage: parley put LOCAL [REMOTE] [options]

Uploads LOCAL to REMOTE (default: its name in your remote home). The file is
checksummed (SHA-256), sent, verified by the server and only then appears.
If REMOTE ends in / or is a directory, the file goes inside it.

Options:
${_TRANSFER_FLAGS}
  -p, --parents create missing remote directories`,
  booleans: ["overwrite", "resume", "no-resume", "r", "recursive", "parents", "quiet"],
  alias: { p: "parents", q: "quiet", R: "recursive" },
  minArgs: 1,
  maxArgs: 2,
  reconnect: true,
  async body(client, [local, remoteArg], f, out) {
    const info = await Deno.stat(local!).catch((e) => {
      throw new TransferError("not_found", `cannot read ${local}: ${(e as Error).message}`);
    });
    let remote = remoteArg ?? basename(local!);
    if (remoteArg !== undefined && info.isFile) {
      const isDir = remoteArg.endsWith("/") ||
        await statSource(client, { path: remoteArg }).then((s) => s.type === "dir", () => false);
      if (isDir) remote = `${remoteArg.replace(/\/+$/, "")}/${basename(local!)}`;
    }
    if (info.isDirectory) {
      if (!f.r && !f.recursive) {
        throw new TransferError("local", `${local} is a directory; use -r to upload it`);
      }
      const tree = await uploadTree(client, local!, remote, {
        ..._transferOptions(f, undefined),
        onFile: (r) => out.say(summaryLine("uploaded", r)),
      });
      for (const s of tree.skipped) console.error(`parley: skipped ${s} (not a regular file)`);
      return { files: tree.files.map(_fileJson), dirs: tree.dirs, skipped: tree.skipped };
    }
    const bar = createProgress("upload", out.tty);
    try {
      const r = await uploadFile(client, local!, remote, _transferOptions(f, bar.update));
      bar.stop();
      out.say(summaryLine("uploaded", r));
      return _fileJson(r);
    } finally {
      bar.stop();
    }
  },
});

/** `parley get REMOTE [LOCAL]`. */
export const get: Command = _command({
  usage: `Usage: parley get REMOTE [LOCAL] [options]
       parley get --shared ID [LOCAL] [--sha256 HEX]

Downloads REMOTE to LOCAL (default: its name in the current directory) via
LOCAL.parley-part; the SHA-256 is verified before the file appears.

Options:
${_TRANSFER_FLAGS}
  --shared ID   fetch a file someone shared (the id in the chat message)
  --sha256 HEX  the SHA-256 the shared file must have`,
  strings: ["shared", "sha256"],
  booleans: ["overwrite", "resume", "no-resume", "r", "recursive", "quiet"],
  alias: { q: "quiet", R: "recursive" },
  minArgs: 0,
  maxArgs: 2,
  reconnect: true,
  async body(client, pos, f, out) {
    const shared = f.shared as string | undefined;
    if (!shared && pos.length === 0) throw new TransferError("local", "name a REMOTE file");
    const remote = shared ? undefined : pos[0]!;
    const localArg = shared ? pos[0] : pos[1];
    const source = remote !== undefined
      ? { path: remote }
      : { shared: shared!, ...(f.sha256 ? { sha256: String(f.sha256) } : {}) };
    const st = await statSource(client, source);
    let local = localArg ?? st.name;
    if (localArg !== undefined) {
      const li = await Deno.stat(localArg).catch(() => undefined);
      if (li?.isDirectory && st.type === "file") local = join(localArg, st.name);
      else if (!li && /[/\\]$/.test(localArg) && st.type === "file") {
        throw new TransferError(
          "local",
          `local directory ${localArg} does not exist; create it first (mkdir -p ${localArg})`,
        );
      }
    }
    if (st.type === "dir") {
      if (!f.r && !f.recursive) {
        throw new TransferError("local", `${remote} is a directory; use -r to download it`);
      }
      const tree = await downloadTree(client, remote!, local, {
        ..._transferOptions(f, undefined),
        onFile: (r) => out.say(summaryLine("downloaded", r)),
      });
      for (const s of tree.skipped) console.error(`parley: skipped ${s} (not a regular file)`);
      return { files: tree.files.map(_fileJson), dirs: tree.dirs, skipped: tree.skipped };
    }
    const bar = createProgress("download", out.tty);
    try {
      const r = await downloadFile(client, source, local, _transferOptions(f, bar.update));
      bar.stop();
      out.say(summaryLine("downloaded", r));
      return _fileJson(r);
    } finally {
      bar.stop();
    }
  },
});

/** Formats one listing line (`-l` form). */
export function formatEntry(e: RemoteEntry, long: boolean): string {
  const name = e.type === "dir" ? `${e.name}/` : e.name;
  if (!long) return name;
  const when = new Date(e.mtime).toISOString().replace("T", " ").slice(0, 19);
  const kind = e.type === "dir" ? "d" : e.type === "file" ? "-" : "?";
  return `${kind} ${String(e.size).padStart(12)} ${when} ${e.sha256 ? e.sha256 + " " : ""}${name}`;
}

/** `parley ls [DIR]`. */
export const ls: Command = _command({
  usage: `Usage: parley ls [DIR] [options]

Lists a remote directory (default: your home).

Options:
  -l, --long    size, modification time (UTC) and type
  --sha256      also the SHA-256 of each file (reads every file on the server)
  -R            list subdirectories too`,
  booleans: ["long", "sha256", "R"],
  alias: { l: "long" },
  minArgs: 0,
  maxArgs: 1,
  async body(client, [dir], f, out) {
    const listing = await listRemote(client, dir, {
      sha256: f.sha256 === true,
      recursive: f.R === true,
    });
    for (const e of listing.entries) out.say(formatEntry(e, f.long === true || f.sha256 === true));
    return { path: listing.path, entries: listing.entries };
  },
});

/** `parley stat PATH`. */
export const stat: Command = _command({
  usage: `Usage: parley stat PATH [--sha256]

Shows a remote file's type, size, modification time and (with --sha256) checksum.`,
  booleans: ["sha256"],
  minArgs: 1,
  maxArgs: 1,
  async body(client, [path], f, out) {
    const st = await client.call(FILE_STAT, {
      path: path!,
      sha256: f.sha256 === true,
    }) as FileStatReply;
    out.say(
      `${st.path}: ${st.type}, ${st.size} bytes (${formatBytes(st.size)}), modified ${
        new Date(st.mtime).toISOString()
      }${st.sha256 ? `, sha256 ${st.sha256}` : ""}`,
    );
    return st;
  },
});

function _simple(
  usage: string,
  op: string,
  argNames: string[],
  verb: (r: Record<string, unknown>) => string,
  booleans: Record<string, string> = {},
  alias: Record<string, string> = {},
): Command {
  return _command({
    usage,
    booleans: Object.keys(booleans),
    alias,
    minArgs: argNames.length,
    maxArgs: argNames.length,
    async body(client, pos, f, out) {
      const args: Record<string, string | boolean> = {};
      argNames.forEach((n, i) => (args[n] = pos[i]!));
      for (const [flag, key] of Object.entries(booleans)) args[key] = f[flag] === true;
      const r = await client.call(op, args) as Record<string, unknown>;
      out.say(verb(r));
      return r;
    },
  });
}

/** `parley rm PATH`. */
export const rm: Command = _simple(
  `Usage: parley rm PATH

Removes a remote file (directories: rmdir).`,
  FILE_RM,
  ["path"],
  (r) => `removed ${r.path}`,
);

/** `parley mv FROM TO`. */
export const mv: Command = _simple(
  `Usage: parley mv FROM TO [--overwrite]

Renames a remote file or directory; into TO when TO is a directory.

Options:
  --overwrite   replace an existing file at TO`,
  FILE_MV,
  ["from", "to"],
  (r) => `moved ${r.from} -> ${r.to}`,
  { overwrite: "overwrite" },
);

/** `parley mkdir DIR`. */
export const mkdir: Command = _simple(
  `Usage: parley mkdir DIR [-p]

Creates a remote directory.

Options:
  -p, --parents create missing parents; no error if it exists`,
  FILE_MKDIR,
  ["path"],
  (r) => `created ${r.path}`,
  { parents: "parents" },
  { p: "parents" },
);

/** `parley rmdir DIR`. */
export const rmdir: Command = _simple(
  `Usage: parley rmdir DIR

Removes an empty remote directory.`,
  FILE_RMDIR,
  ["path"],
  (r) => `removed ${r.path}`,
);
