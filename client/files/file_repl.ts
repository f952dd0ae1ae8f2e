/**
 * File commands for the REPL: `/put`, `/get`, `/ls`, `/cd`, `/pwd`, `/rm`,
 * `/mv`, `/mkdir`, `/rmdir`, `/stat`, `/share`, with completion of local
 * and remote paths. `/share FILE` uploads a file, shares it
 * (`file.share`) and posts it to the current room; `/get MSGID` fetches the
 * file of a message, verified against the SHA-256 the message carries.
 *
 * @module
 */
import { basename, dirname, join } from "@std/path";
import { RemoteError } from "../../protocol/errors.ts";
import { formatEntry } from "./file_commands.ts";
import { listRemote } from "./file_list.ts";
import type { ReplCommand, ReplContext } from "../repl_command.ts";
import { JobCancelled, type JobHandle, type JobSpec } from "../repl_jobs.ts";
import { quoteWord } from "../repl_words.ts";
import { ParleyClient } from "../client.ts";
import { hashLocalFile } from "./transfer_common.ts";
import { downloadFile, type DownloadSource, PART_SUFFIX, statSource } from "./transfer_download.ts";
import { formatBytes, summaryLine } from "./transfer_progress.ts";
import { downloadTree, uploadTree } from "./transfer_tree.ts";
import { uploadFile } from "./transfer_upload.ts";
import {
  FILE_CD,
  FILE_MKDIR,
  FILE_MV,
  FILE_PWD,
  FILE_RM,
  FILE_RMDIR,
  FILE_SHARE,
  FILE_STAT,
  type FileCwdReply,
  type FileShareReply,
  type FileStatReply,
} from "../../protocol/ops/files.ts";
import { CHAT_SEND } from "../../protocol/ops/chat.ts";

/** The `path` prefix a chat file reference uses for a shared file. */
export const SHARED_PREFIX = "shared:";

function _flags(args: string[]): { pos: string[]; has: (...names: string[]) => boolean } {
  const pos = args.filter((a) => !a.startsWith("-") || a === "-");
  const set = new Set(args.filter((a) => a.startsWith("-") && a !== "-"));
  for (const f of set) {
    if (!/^(-r|-R|-p|-l|--overwrite|--no-resume|--resume|--sha256|--parents|--long)$/.test(f)) {
      throw new Error(`unknown option ${f}`);
    }
  }
  return { pos, has: (...names) => names.some((n) => set.has(n)) };
}

/**
 * Runs a transfer as a background job over a connection of its own (so chat
 * never waits behind file bytes, and cancelling closes just that
 * connection: the server keeps an upload's part, the client a download's
 * `.parley-part`, and the same command resumes). The job's connection starts
 * in the REPL's remote directory.
 */
async function _transferJob(
  ctx: ReplContext,
  spec: Omit<JobSpec, "run">,
  work: (client: ParleyClient, job: JobHandle) => Promise<string | undefined>,
): Promise<void> {
  const { cwd } = await ctx.client.call(FILE_PWD) as FileCwdReply;
  ctx.startJob({
    ...spec,
    run: async (job) => {
      if (job.cancelled) throw new JobCancelled();
      const client = await ParleyClient.connect({ ...ctx.client.options, reconnect: true });
      // floating-ok: closing ends the transfer, which the job awaits
      job.onCancel(() => void client.close());
      try {
        if (cwd !== "~") await client.call(FILE_CD, { path: cwd });
        return await work(client, job);
      } finally {
        await client.close();
      }
    },
  });
}

async function _completeLocal(partial: string): Promise<string[]> {
  const dir = partial.endsWith("/") ? partial : dirname(partial);
  const prefix = partial.endsWith("/")
    ? partial
    : (dir === "." && !partial.startsWith("./") ? "" : `${dir}/`);
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir === "" ? "." : dir)) {
      out.push(`${prefix}${e.name}${e.isDirectory ? "/" : ""}`);
      if (out.length > 500) break;
    }
  } catch {
    // Unreadable or missing directory: nothing to offer.
  }
  return out;
}

async function _completeRemote(client: ParleyClient, partial: string): Promise<string[]> {
  const i = partial.lastIndexOf("/");
  const dir = i >= 0 ? partial.slice(0, i + 1) : "";
  try {
    const listing = await listRemote(client, dir === "" ? undefined : dir);
    return listing.entries.slice(0, 500).map((e) =>
      `${dir}${e.name}${e.type === "dir" ? "/" : ""}`
    );
  } catch {
    return [];
  }
}

function _remoteCompleter(
  indexes: number[] | "all",
): (ctx: ReplContext, partial: string, argIndex: number) => Promise<string[]> {
  return (ctx, partial, argIndex) =>
    indexes === "all" || indexes.includes(argIndex)
      ? _completeRemote(ctx.client, partial)
      : Promise.resolve([]);
}

/** `/cd ..` and friends are resolved here, lexically against the current directory. */
async function _resolveCd(client: ParleyClient, arg: string): Promise<string> {
  if (!arg.split("/").includes("..")) return arg;
  const { cwd } = await client.call(FILE_PWD) as FileCwdReply;
  const parts = arg.startsWith("~") ? [] : cwd.replace(/^~\/?/, "").split("/").filter(Boolean);
  for (const p of arg.replace(/^~\/?/, "").split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") parts.pop();
    else parts.push(p);
  }
  return parts.length === 0 ? "~" : `~/${parts.join("/")}`;
}

function _shareSource(ctx: ReplContext, id: string): DownloadSource | undefined {
  const msg = ctx.message(id);
  const file = msg?.file as { path?: string; sha256?: string; name?: string } | undefined;
  if (!file || typeof file.path !== "string") return undefined;
  if (file.path.startsWith(SHARED_PREFIX)) {
    return {
      shared: file.path.slice(SHARED_PREFIX.length),
      ...(file.sha256 ? { sha256: file.sha256 } : {}),
    };
  }
  return { path: file.path };
}

/** `a b.txt` → `'a b.txt'`: words as the REPL reads them back. */
function _cmd(...words: (string | undefined)[]): string {
  return words.filter((w) => w !== undefined).map((w) => quoteWord(w!)).join(" ");
}

const put: ReplCommand = {
  name: "put",
  usage: "/put LOCAL [REMOTE] [--overwrite] [--no-resume] [-r] [-p]",
  summary: "upload a file (or a directory with -r) in the background (/jobs, /cancel N)",
  async run(ctx, args) {
    const { pos, has } = _flags(args);
    const local = pos[0];
    if (!local || pos.length > 2) throw new Error(`usage: ${this.usage}`);
    const info = await Deno.stat(local).catch(() => {
      throw new Error(`cannot read ${local}: no such file or directory`);
    });
    const base = {
      overwrite: has("--overwrite"),
      resume: !has("--no-resume"),
      parents: has("-p", "--parents"),
    };
    let remote = pos[1] ?? basename(local);
    const again = `/put ${_cmd(...args)}`;
    if (info.isDirectory) {
      if (!has("-r", "-R")) throw new Error(`${local} is a directory; use /put -r`);
      await _transferJob(ctx, {
        kind: "upload",
        name: basename(local),
        title: `uploading the directory ${local}`,
        cancelNote: `${again} resumes it`,
      }, async (client, job) => {
        const tree = await uploadTree(client, local, remote, {
          ...base,
          onProgress: (p) => job.progress(p),
          onFile: (r) => job.print(summaryLine("uploaded", r)),
        });
        return `uploaded ${tree.files.length} files in ${tree.dirs} directories from ${local}`;
      });
      return;
    }
    if (pos[1] !== undefined) {
      const isDir = pos[1].endsWith("/") ||
        await statSource(ctx.client, { path: pos[1] }).then((s) => s.type === "dir", () => false);
      if (isDir) remote = `${pos[1].replace(/\/+$/, "")}/${basename(local)}`;
    }
    await _transferJob(ctx, {
      kind: "upload",
      name: basename(local),
      title: `uploading ${local} (${formatBytes(info.size)}) in the background`,
      cancelNote: `the part sent is kept; ${again} resumes it`,
    }, async (client, job) =>
      summaryLine(
        "uploaded",
        await uploadFile(client, local, remote, { ...base, onProgress: (p) => job.progress(p) }),
      ));
  },
  complete(ctx, partial, argIndex) {
    return argIndex === 0 ? _completeLocal(partial) : _completeRemote(ctx.client, partial);
  },
};

const get: ReplCommand = {
  name: "get",
  usage: "/get REMOTE|MSGID [LOCAL] [--overwrite] [--no-resume] [-r]",
  summary: "download a file, or the file shared in message MSGID, in the background",
  async run(ctx, args) {
    const { pos, has } = _flags(args);
    const what = pos[0];
    if (!what || pos.length > 2) throw new Error(`usage: ${this.usage}`);
    const source: DownloadSource = (/^\d+$/.test(what) ? _shareSource(ctx, what) : undefined) ??
      { path: what };
    const st = await statSource(ctx.client, source);
    let local = pos[1] ?? st.name;
    const li = pos[1] ? await Deno.stat(pos[1]).catch(() => undefined) : undefined;
    if (st.type === "file" && (li?.isDirectory || pos[1]?.endsWith("/"))) {
      if (!li?.isDirectory) throw new Error(`${pos[1]} is not a directory here`);
      local = join(pos[1]!, st.name);
    }
    const base = { overwrite: has("--overwrite"), resume: !has("--no-resume") };
    const again = `/get ${_cmd(...args)}`;
    if (st.type === "dir") {
      if (!has("-r", "-R")) throw new Error(`${what} is a directory; use /get -r`);
      await _transferJob(ctx, {
        kind: "download",
        name: st.name,
        title: `downloading the directory ${what} into ${local}`,
        cancelNote: `${again} resumes it`,
      }, async (client, job) => {
        const tree = await downloadTree(client, what, local, {
          ...base,
          onProgress: (p) => job.progress(p),
          onFile: (r) => job.print(summaryLine("downloaded", r)),
        });
        return `downloaded ${tree.files.length} files into ${local}`;
      });
      return;
    }
    await _transferJob(ctx, {
      kind: "download",
      name: st.name,
      title: `downloading ${st.name} (${formatBytes(st.size)}) in the background`,
      cancelNote: `kept ${local}${PART_SUFFIX}; ${again} resumes it`,
    }, async (client, job) =>
      summaryLine(
        "downloaded",
        await downloadFile(client, source, local, { ...base, onProgress: (p) => job.progress(p) }),
      ));
  },
  complete(ctx, partial, argIndex) {
    return argIndex === 0 ? _completeRemote(ctx.client, partial) : _completeLocal(partial);
  },
};

const ls: ReplCommand = {
  name: "ls",
  usage: "/ls [DIR] [-l] [--sha256] [-R]",
  summary: "list a remote directory",
  async run(ctx, args) {
    const { pos, has } = _flags(args);
    const withSha = has("--sha256");
    const listing = await listRemote(ctx.client, pos[0], {
      sha256: withSha,
      recursive: has("-R"),
    });
    if (listing.entries.length === 0) ctx.print(`${listing.path} is empty`);
    for (const e of listing.entries) ctx.print(formatEntry(e, has("-l", "--long") || withSha));
  },
  complete: _remoteCompleter([0]),
};

const cd: ReplCommand = {
  name: "cd",
  usage: "/cd [DIR]",
  summary: "change the remote directory (home without DIR; .. goes up)",
  async run(ctx, args) {
    const target = args[0] === undefined ? "~" : await _resolveCd(ctx.client, args[0]);
    const r = await ctx.client.call(FILE_CD, { path: target }) as FileCwdReply;
    ctx.print(r.cwd);
  },
  complete: _remoteCompleter([0]),
};

const pwd: ReplCommand = {
  name: "pwd",
  usage: "/pwd",
  summary: "show the remote directory",
  async run(ctx) {
    ctx.print(((await ctx.client.call(FILE_PWD)) as FileCwdReply).cwd);
  },
};

const stat: ReplCommand = {
  name: "stat",
  usage: "/stat PATH [--sha256]",
  summary: "show a remote file's size, time and checksum",
  async run(ctx, args) {
    const { pos, has } = _flags(args);
    if (pos.length !== 1) throw new Error(`usage: ${this.usage}`);
    const st = await ctx.client.call(FILE_STAT, {
      path: pos[0]!,
      sha256: has("--sha256"),
    }) as FileStatReply;
    ctx.print(
      `${st.path}: ${st.type}, ${st.size} bytes (${formatBytes(st.size)}), modified ${
        new Date(st.mtime).toISOString()
      }${st.sha256 ? `, sha256 ${st.sha256}` : ""}`,
    );
  },
  complete: _remoteCompleter([0]),
};

function _simple(
  name: string,
  usage: string,
  summary: string,
  op: string,
  keys: string[],
  say: (r: Record<string, unknown>) => string,
  flags: Record<string, string> = {},
): ReplCommand {
  return {
    name,
    usage,
    summary,
    async run(ctx, args) {
      const pos = args.filter((a) => !a.startsWith("-"));
      const opts = args.filter((a) => a.startsWith("-"));
      if (pos.length !== keys.length) throw new Error(`usage: ${usage}`);
      const req: Record<string, string | boolean> = {};
      keys.forEach((k, i) => (req[k] = pos[i]!));
      for (const o of opts) {
        const key = flags[o];
        if (!key) throw new Error(`unknown option ${o}`);
        req[key] = true;
      }
      ctx.print(say(await ctx.client.call(op, req) as Record<string, unknown>));
    },
    complete: _remoteCompleter("all"),
  };
}

const share: ReplCommand = {
  name: "share",
  usage: "/share LOCAL [TEXT]",
  summary: "upload a file in the background and post it to the current room",
  async run(ctx, args) {
    const local = args[0];
    if (!local) throw new Error(`usage: ${this.usage}`);
    const text = args.slice(1).join(" ");
    const room = ctx.currentRoom();
    if (room === undefined) throw new Error("you are in no room; /join ROOM first");
    const info = await Deno.stat(local).catch(() => {
      throw new Error(`cannot read ${local}: no such file`);
    });
    if (!info.isFile) throw new Error(`${local} is not a file`);
    const name = basename(local);
    await _transferJob(ctx, {
      kind: "share",
      name,
      title: `uploading ${local} (${formatBytes(info.size)}) to share in #${room}`,
      cancelNote: `/share ${_cmd(...args)} resumes it`,
    }, async (client, job) => {
      const { sha256 } = await hashLocalFile(local, (p) => job.progress(p));
      const remote = `~/shared/${sha256.slice(0, 16)}/${name}`;
      try {
        await uploadFile(client, local, remote, {
          parents: true,
          sha256,
          onProgress: (p) => job.progress(p),
        });
      } catch (e) {
        // Already uploaded earlier (same content, same name): share that copy.
        if (!(e instanceof RemoteError && e.code === "exists")) throw e;
        const st = await client.call(FILE_STAT, { path: remote, sha256: true }) as FileStatReply;
        if (st.sha256 !== sha256) throw e;
      }
      const s = await client.call(FILE_SHARE, { path: remote }) as FileShareReply;
      // posted on the REPL's own connection: that one has joined the room
      await ctx.client.call(CHAT_SEND, {
        room,
        text: text || `shared ${s.name} (${formatBytes(s.size)})`,
        file: { path: `${SHARED_PREFIX}${s.id}`, name: s.name, size: s.size, sha256: s.sha256 },
      });
      return `shared ${s.name} in #${room}; others fetch it with /get MSGID`;
    });
  },
  complete(_ctx, partial, argIndex) {
    return argIndex === 0 ? _completeLocal(partial) : Promise.resolve([]);
  },
};

/** REPL file commands. */
export const FILE_REPL_COMMANDS: ReplCommand[] = [
  put,
  get,
  ls,
  cd,
  pwd,
  stat,
  _simple(
    "rm",
    "/rm PATH",
    "remove a remote file",
    FILE_RM,
    ["path"],
    (r) => `removed ${r.path}`,
  ),
  _simple(
    "mv",
    "/mv FROM TO [--overwrite]",
    "rename a remote file or directory",
    FILE_MV,
    ["from", "to"],
    (r) => `moved ${r.from} -> ${r.to}`,
    { "--overwrite": "overwrite" },
  ),
  _simple(
    "mkdir",
    "/mkdir DIR [-p]",
    "create a remote directory",
    FILE_MKDIR,
    ["path"],
    (r) => `created ${r.path}`,
    { "-p": "parents" },
  ),
  _simple(
    "rmdir",
    "/rmdir DIR",
    "remove an empty remote directory",
    FILE_RMDIR,
    ["path"],
    (r) => `removed ${r.path}`,
  ),
  share,
];
