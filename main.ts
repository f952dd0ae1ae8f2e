/**
 * `parley`: one executable that runs a server or a client.
 * This file only picks the subcommand; each lives in its own module.
 *
 * @module
 */
import { didYouMean } from "./cli/suggest.ts";

/** A subcommand module: runs with its arguments and returns an exit code. */
export interface Command {
  run(args: string[]): Promise<number>;
}

interface _Entry {
  summary: string;
  load: () => Promise<Command>;
}

const _COMMANDS: Record<string, _Entry> = {
  serve: { summary: "run a server node", load: () => import("./server/serve_command.ts") },
  user: {
    summary: "manage accounts (add, list, set, rotate, remove)",
    load: () => import("./server/user_command.ts"),
  },
  cluster: {
    summary: "cluster tools: import a single server's data into a NATS cluster",
    load: () => import("./server/cluster_command.ts"),
  },
  connect: {
    summary: "open the interactive chat/file/exec REPL",
    load: () => import("./client/connect_command.ts"),
  },
  send: {
    summary: "post one message to a room or @user",
    load: () => import("./client/send_command.ts"),
  },
  put: {
    summary: "upload a file or directory",
    load: () => import("./client/files/file_commands.ts").then((m) => m.put),
  },
  get: {
    summary: "download a file or directory",
    load: () => import("./client/files/file_commands.ts").then((m) => m.get),
  },
  share: {
    summary: "upload a file and post it to a room (or a user) for others to get",
    load: () => import("./client/files/file_commands.ts").then((m) => m.share),
  },
  ls: {
    summary: "list a remote directory",
    load: () => import("./client/files/file_commands.ts").then((m) => m.ls),
  },
  stat: {
    summary: "show a remote file's details",
    load: () => import("./client/files/file_commands.ts").then((m) => m.stat),
  },
  rm: {
    summary: "remove a remote file",
    load: () => import("./client/files/file_commands.ts").then((m) => m.rm),
  },
  mv: {
    summary: "rename a remote file",
    load: () => import("./client/files/file_commands.ts").then((m) => m.mv),
  },
  mkdir: {
    summary: "create a remote directory",
    load: () => import("./client/files/file_commands.ts").then((m) => m.mkdir),
  },
  rmdir: {
    summary: "remove an empty remote directory",
    load: () => import("./client/files/file_commands.ts").then((m) => m.rmdir),
  },
  exec: {
    summary: "run a command on the server",
    load: () => import("./client/exec/exec_command.ts"),
  },
  ping: {
    summary: "check a server and measure round trips",
    load: () => import("./client/ping_command.ts"),
  },
  "known-servers": {
    summary: "list or forget the server certificates this client trusts",
    load: () => import("./client/known_servers_command.ts"),
  },
};

/** The top-level help text. */
export function usage(): string {
  const width = Math.max(...Object.keys(_COMMANDS).map((k) => k.length));
  const lines = Object.entries(_COMMANDS).map(([k, v]) => `  ${k.padEnd(width)}  ${v.summary}`);
  return [
    "parley: a self-hosted terminal chat + file server",
    "",
    "Usage: parley COMMAND [OPTIONS]",
    "",
    "Commands:",
    ...lines,
    "",
    "Run `parley COMMAND --help` for a command's options.",
  ].join("\n");
}

/** Dispatches `args` to a subcommand and returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "version") {
    console.log("parley 0.1.0 (protocol 1)");
    return 0;
  }
  const entry = Object.hasOwn(_COMMANDS, name) ? _COMMANDS[name] : undefined;
  if (!entry) {
    const option = name.startsWith("-");
    const hint = option
      ? didYouMean(name.replace(/^-+/, ""), ["help", "version"], (c) => `--${c}`)
      : didYouMean(name, Object.keys(_COMMANDS));
    console.error(
      `parley: unknown ${option ? "option" : "command"} ${name}${hint}\n` +
        "usage: parley COMMAND [OPTIONS] (parley --help lists the commands)",
    );
    return 2;
  }
  const command = await entry.load();
  return await command.run(rest);
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
