/**
 * One-shot file commands for scripts: `parley put`, `get`, `share`, `ls`,
 * `stat`, `rm`, `mv`, `mkdir`, `rmdir`. Each has `--help`, the shared
 * credential flags, `--json` output and the exit codes of
 * `../../cli/exit_codes.ts` (docs/cli.md "Exit codes").
 *
 * @module
 */
import { basename, join } from "@std/path";
import type { Command } from "../../main.ts";
import { RemoteError } from "../../protocol/errors.ts";
import { type Flags, parseFlags } from "../../cli/flags.ts";
import { EXIT, EXIT_BROKEN_PIPE, EXIT_HELP, ExitError, usageError } from "../../cli/exit_codes.ts";
import {
  CLIENT_BOOLEAN_FLAGS,
  CLIENT_FLAGS_HELP,
  CLIENT_STRING_FLAGS,
  credentialInput,
} from "../cli_util.ts";
import type { ParleyClient } from "../client.ts";
import { resolveCredentials } from "../credentials.ts";
import { connectForCommand, reportCliError } from "../exit_status.ts";
import { downloadToSink } from "./download_stream.ts";
import { listRemote, type RemoteEntry } from "./file_list.ts";
import { isSharedId, resolveShared, type ShareDestination, shareLocalFile } from "./share.ts";
import type { TransferOptions, TransferResult } from "./transfer_common.ts";
import { localReadError, TransferError } from "./transfer_common.ts";
import { downloadFile, type DownloadSource, statSource } from "./transfer_download.ts";
import { createProgress, formatBytes, summaryLine } from "./transfer_progress.ts";
import { downloadTree, plural, treeSummary, uploadTree } from "./transfer_tree.ts";
import { uploadFile } from "./transfer_upload.ts";
import {
  FILE_MKDIR,
  FILE_MV,
  FILE_RM,
  FILE_RMDIR,
  FILE_STAT,
  type FileStatReply,
} from "../../protocol/ops/files.ts";
import { CHAT_ROOMS, type ChatRoomsReply } from "../../protocol/ops/chat.ts";

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
  /** A usage problem with the arguments, found before connecting. */
  check?: (args: string[], f: Flags) => string | undefined;
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
      const problem = pos.length < spec.minArgs || pos.length > spec.maxArgs
        ? "wrong number of arguments"
        : spec.check?.(pos, f);
      if (problem !== undefined) return usageError(spec.usage.split(" ")[2]!, problem);
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
        await using client = await connectForCommand({
          ...creds,
          reconnect: spec.reconnect ?? false,
        });
        const result = await spec.body(client, pos, f, out);
        if (json) console.log(JSON.stringify({ ok: true, ...(result as object) }));
        return EXIT.ok;
      } catch (e) {
        // Whoever reads our output stopped (`| head`): end quietly, as a SIGPIPE would.
        if (e instanceof Deno.errors.BrokenPipe) return EXIT_BROKEN_PIPE;
        return reportCliError(e, { json });
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
      throw localReadError(e, local!);
    });
    // A name from macOS may be decomposed (NFD); the server and other clients expect NFC.
    let remote = remoteArg ?? basename(local!).normalize("NFC");
    if (remoteArg !== undefined && info.isFile) {
      const isDir = remoteArg.endsWith("/") ||
        await statSource(client, { path: remoteArg }).then((s) => s.type === "dir", () => false);
      if (isDir) remote = `${remoteArg.replace(/\/+$/, "")}/${basename(local!).normalize("NFC")}`;
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
      out.say(treeSummary("uploaded", tree, remote));
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

async function _writeStdout(bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.byteLength) off += await Deno.stdout.write(bytes.subarray(off));
}

/** `parley get REMOTE [LOCAL|-]`, `parley get --shared ID [LOCAL|-]`. */
export const get: Command = _command({
  usage: `Usage: parley get REMOTE [LOCAL] [options]
       parley get REMOTE - [options]
       parley get --shared ID [LOCAL|-] [options]

Downloads REMOTE to LOCAL (default: its name in the current directory) via
LOCAL.parley-part; the SHA-256 is verified before the file appears. With -
as LOCAL the file goes to standard output (nothing else does; a progress
bar goes to stderr on a terminal) and the SHA-256 is checked at the end:
on a mismatch the exit code is 7 and what was written must be discarded.

Options:
${_TRANSFER_FLAGS}
  --shared ID   fetch a file shared in chat: ID is the message's id as chat
                shows it (e.g. 30019) or the share id (32 hex digits)
  --sha256 HEX  the SHA-256 a share id's file must have`,
  strings: ["shared", "sha256"],
  booleans: ["overwrite", "resume", "no-resume", "r", "recursive", "quiet"],
  alias: { q: "quiet", R: "recursive" },
  minArgs: 0,
  maxArgs: 2,
  reconnect: true,
  check(pos, f) {
    const shared = f.shared as string | undefined;
    if (shared === undefined && pos.length === 0) return "name a REMOTE file (or --shared ID)";
    if (shared !== undefined && pos.length > 1) return "with --shared, give at most a LOCAL name";
    if (shared !== undefined && !isSharedId(shared)) {
      return `--shared ${shared}: give a message id (digits, as chat shows it) or a share id ` +
        "(32 hex digits)";
    }
    const local = shared !== undefined ? pos[0] : pos[1];
    if (local === "-" && f.json === true) {
      return "--json and - do not go together: the file itself goes to standard output";
    }
    if (local === "-" && (f.r === true || f.recursive === true)) {
      return "-r and - do not go together: a directory cannot go to standard output";
    }
    return undefined;
  },
  async body(client, pos, f, out) {
    const shared = f.shared as string | undefined;
    const remote = shared !== undefined ? undefined : pos[0]!;
    const localArg = shared !== undefined ? pos[0] : pos[1];
    const source: DownloadSource = remote !== undefined
      ? { path: remote }
      : await resolveShared(client, shared!, f.sha256 ? String(f.sha256) : undefined);
    if (localArg === "-") {
      const bar = createProgress("download", out.tty);
      try {
        const r = await downloadToSink(client, source, _writeStdout, { onProgress: bar.update });
        return { remote: r.remote, size: r.size, sha256: r.sha256 };
      } finally {
        bar.stop();
      }
    }
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
      if (remote === undefined) throw new TransferError("local", "a share is one file");
      if (!f.r && !f.recursive) {
        throw new TransferError("local", `${remote} is a directory; use -r to download it`);
      }
      const tree = await downloadTree(client, remote, local, {
        ..._transferOptions(f, undefined),
        onFile: (r) => out.say(summaryLine("downloaded", r)),
      });
      for (const s of tree.skipped) console.error(`parley: skipped ${s} (not a regular file)`);
      out.say(treeSummary("downloaded", tree, local));
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

/** `parley share LOCAL [--room ROOM | --to USER] [--text TEXT]`. */
export const share: Command = _command({
  usage: `Usage: parley share LOCAL [--room ROOM | --to USER] [--text TEXT] [options]

Uploads the file LOCAL (to ~/shared/… in your remote home), shares it and
posts it to ROOM (default: the server's default room) or as a direct message
to USER, as the REPL's /share does. Prints the message id: others fetch the
file with \`parley get --shared ID\` (or /get ID in the REPL).

Options:
  --room ROOM   the room to post to (lobby or #lobby)
  --to USER     post it to USER as a direct message instead
  --text TEXT   the message's text (default: "shared NAME (SIZE)")
  -q, --quiet   print nothing on success`,
  strings: ["room", "to", "text"],
  booleans: ["quiet"],
  alias: { q: "quiet" },
  minArgs: 1,
  maxArgs: 1,
  reconnect: true,
  check(_pos, f) {
    if (f.room !== undefined && f.to !== undefined) return "give --room or --to, not both";
    return undefined;
  },
  async body(client, [local], f, out) {
    let dest: ShareDestination;
    if (f.to !== undefined) dest = { to: String(f.to).replace(/^@/, "") };
    else if (f.room !== undefined) dest = { room: String(f.room).replace(/^#/, "") };
    else dest = { room: ((await client.call(CHAT_ROOMS, {})) as ChatRoomsReply).defaultRoom };
    const bar = createProgress("upload", out.tty);
    try {
      const r = await shareLocalFile(client, local!, dest, {
        ...(f.text !== undefined ? { text: String(f.text) } : {}),
        onProgress: bar.update,
      });
      bar.stop();
      const where = "room" in dest ? `#${dest.room}` : `@${dest.to}`;
      out.say(
        `shared ${r.share.name} (${formatBytes(r.share.size)}) in ${where} as message ` +
          `${r.message.id}; fetch it with: parley get --shared ${r.message.id}`,
      );
      return {
        id: r.message.id,
        ...dest,
        share: r.share.id,
        name: r.share.name,
        size: r.share.size,
        sha256: r.share.sha256,
      };
    } finally {
      bar.stop();
    }
  },
});

/** Formats one listing line; the `-l` form has the size for people (`bytes`: exact). */
export function formatEntry(
  e: RemoteEntry,
  long: boolean,
  options: { bytes?: boolean } = {},
): string {
  const name = e.type === "dir" ? `${e.name}/` : e.name;
  if (!long) return name;
  const when = new Date(e.mtime).toISOString().replace("T", " ").slice(0, 19);
  const kind = e.type === "dir" ? "d" : e.type === "file" ? "-" : "?";
  const size = e.type === "dir" ? "-" : options.bytes ? String(e.size) : formatBytes(e.size);
  return `${kind} ${size.padStart(options.bytes ? 14 : 10)} ${when} ${
    e.sha256 ? e.sha256 + " " : ""
  }${name}`;
}

/** `parley ls [DIR]`. */
export const ls: Command = _command({
  usage: `Usage: parley ls [DIR] [options]

Lists a remote directory (default: your home).

Options:
  -l, --long    size (KiB, MiB, … ; --bytes for exact bytes), modification
                time (UTC) and type
  --bytes       sizes in bytes (implies -l)
  --sha256      also the SHA-256 of each file (reads every file on the server)
  -R            list subdirectories too`,
  booleans: ["long", "sha256", "R", "bytes"],
  alias: { l: "long" },
  minArgs: 0,
  maxArgs: 1,
  async body(client, [dir], f, out) {
    const listing = await listRemote(client, dir, {
      sha256: f.sha256 === true,
      recursive: f.R === true,
    });
    const long = f.long === true || f.sha256 === true || f.bytes === true;
    for (const e of listing.entries) out.say(formatEntry(e, long, { bytes: f.bytes === true }));
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
export const rmdir: Command = _command({
  usage: `Usage: parley rmdir DIR

Removes an empty remote directory (exit code 5 when it is not empty).`,
  minArgs: 1,
  maxArgs: 1,
  async body(client, [path], _f, out) {
    let r: Record<string, unknown>;
    try {
      r = await client.call(FILE_RMDIR, { path: path! }) as Record<string, unknown>;
    } catch (e) {
      // The server says bad_request for a directory that is not empty as for other
      // wrong kinds of entry: tell them apart by looking.
      if (!(e instanceof RemoteError && e.code === "bad_request")) throw e;
      const listing = await listRemote(client, path).catch(() => undefined);
      if (!listing?.dir || listing.entries.length === 0) throw e;
      const n = listing.entries.length;
      throw new ExitError(
        EXIT.conflict,
        `${listing.path} is not empty (${plural(n, "entry", "entries")}); remove what is in ` +
          `it first (parley ls ${path})`,
        { cause: e, code: "not_empty" },
      );
    }
    out.say(`removed ${r.path}`);
    return r;
  },
});
