/**
 * `parley send ROOM TEXT` / `parley send @USER TEXT` (TEXT `-`: standard
 * input): posts one message and exits 0 once the server has stored it,
 * otherwise with a code of `../cli/exit_codes.ts` and a message.
 *
 * @module
 */
import { EXIT, EXIT_HELP, usageError } from "../cli/exit_codes.ts";
import { parseFlags } from "../cli/flags.ts";
import {
  CLIENT_BOOLEAN_FLAGS,
  CLIENT_FLAGS_HELP,
  CLIENT_STRING_FLAGS,
  credentialInput,
} from "./cli_util.ts";
import type { ParleyClient } from "./client.ts";
import { resolveCredentials } from "./credentials.ts";
import { connectForCommand, reportCliError } from "./exit_status.ts";
import { CHAT_SEND } from "../protocol/ops/chat.ts";

const HELP = `Usage: parley send [OPTIONS] ROOM TEXT...
       parley send [OPTIONS] @USER TEXT...

Posts one message to a room (e.g. lobby or #lobby) or a direct message to a
user (kept for them if they are offline). TEXT may be several words; use -
to read the text from standard input (e.g. echo done | parley send lobby -).
Exits 0 once the server has stored the message; otherwise the code says why
(4: no such user or room, 8: refused, 10: wrong user or key, …).

Options:
  --me          send as an action (like /me)
  -h, --help    show this help

${CLIENT_FLAGS_HELP}

${EXIT_HELP}`;

/** Sends one message; returns the exit code. */
export async function run(args: string[]): Promise<number> {
  const parsed = parseFlags(args, {
    string: [...CLIENT_STRING_FLAGS],
    boolean: [...CLIENT_BOOLEAN_FLAGS, "me"],
  }, HELP);
  if ("exitCode" in parsed) return parsed.exitCode;
  const f = parsed.flags;
  const [target, ...words] = f._.map(String);
  if (target === undefined || words.length === 0) {
    return usageError("send", "need a ROOM or @USER and the text (or - to read it from stdin)");
  }
  let text = words.join(" ");
  if (text === "-") {
    text = (await new Response(Deno.stdin.readable).text()).replace(/\r?\n$/, "");
    if (text === "") {
      return usageError("send", "standard input was empty; nothing to send");
    }
  }
  const dest = target.startsWith("@")
    ? { to: target.slice(1) }
    : { room: target.replace(/^#/, "") };
  let client: ParleyClient | undefined;
  try {
    const creds = await resolveCredentials(credentialInput(f));
    client = await connectForCommand(creds);
    await client.call(CHAT_SEND, { ...dest, text, ...(f.me ? { me: true } : {}) });
    return EXIT.ok;
  } catch (e) {
    return reportCliError(e);
  } finally {
    await client?.close();
  }
}
