/**
 * `parley connect`: the interactive REPL.
 *
 * @module
 */
import { ACCOUNT_REPL_COMMANDS } from "./account_repl.ts";
import { ChatClient } from "./chat/chat_client.ts";
import { formatMessage } from "./chat/chat_format.ts";
import { chatReplCommands } from "./chat/chat_repl.ts";
import { parseFlags, usageProblem } from "../cli/flags.ts";
import {
  CLIENT_BOOLEAN_FLAGS,
  CLIENT_FLAGS_HELP,
  CLIENT_STRING_FLAGS,
  credentialInput,
  reportError,
} from "./cli_util.ts";
import { ParleyClient } from "./client.ts";
import { resolveCredentials } from "./credentials.ts";
import { EXEC_REPL_COMMANDS } from "./exec/exec_repl.ts";
import { FILE_REPL_COMMANDS } from "./files/file_repl.ts";
import { Repl } from "./repl.ts";
import { historyPath } from "./repl_history.ts";
import { CHAT_ROOMS, type ChatRoomsReply } from "../protocol/ops/chat.ts";

const HELP = `Usage: parley connect [parley://USER@HOST:PORT] [OPTIONS]

Opens the interactive REPL: chat in rooms, direct messages, files and remote
commands. Plain lines go to the current room; /help lists the commands.
If the connection drops, it reconnects and shows what was missed.

Options:
  --room ROOM     room to start in (default: the server's default room, lobby)
  --no-history    do not read or save the line history
  -h, --help      show this help

Line history is kept in the config dir (history, mode 0600). Colours and
time stamps only on a terminal; NO_COLOR turns colours off.

${CLIENT_FLAGS_HELP}`;

/** Runs the REPL; returns the exit code. */
export async function run(args: string[]): Promise<number> {
  const parsed = parseFlags(args, {
    string: [...CLIENT_STRING_FLAGS, "room"],
    boolean: [...CLIENT_BOOLEAN_FLAGS, "no-history"],
  }, HELP);
  if ("exitCode" in parsed) return parsed.exitCode;
  const f = parsed.flags;
  if (f._.length > 1) {
    return usageProblem(HELP, `too many arguments (${f._.slice(1).join(" ")})`);
  }
  let client: ParleyClient | undefined;
  try {
    const creds = await resolveCredentials(credentialInput(f, f._[0] as string | undefined));
    client = await ParleyClient.connect({ ...creds, reconnect: true });
    const chat = await ChatClient.start(client);
    const tty = Deno.stdin.isTerminal() && Deno.stdout.isTerminal();
    const color = tty && !Deno.env.get("NO_COLOR");
    const rooms = await client.call(CHAT_ROOMS, {}) as ChatRoomsReply;
    const room = ((f.room as string | undefined) ?? rooms.defaultRoom).replace(/^#/, "");
    const repl = new Repl({
      chat,
      tty,
      color,
      room,
      historyFile: f["no-history"] ? undefined : historyPath(),
      commands: (r) =>
        chatReplCommands(r, [
          ...FILE_REPL_COMMANDS,
          ...EXEC_REPL_COMMANDS,
          ...ACCOUNT_REPL_COMMANDS,
        ]),
    });
    if (tty) {
      console.log(
        `Connected to ${client.server.host}:${client.server.port} as ${creds.user}. /help lists commands, /quit leaves.`,
      );
    }
    const inbox = chat.recent().filter((m) => m.to === creds.user);
    const running = repl.run();
    for (const m of inbox) {
      repl.print(formatMessage(m, repl.format));
    }
    try {
      await chat.join(room);
    } catch (e) {
      repl.print(`-- cannot join #${room}: ${(e as Error).message}`);
    }
    const code = await running;
    chat.close();
    return code;
  } catch (e) {
    return reportError(e);
  } finally {
    await client?.close();
  }
}
