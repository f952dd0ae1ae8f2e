/**
 * `parley send ROOM TEXT` / `parley send @USER TEXT`: posts one message and
 * exits 0 once the server has stored it, non-zero with a message otherwise.
 *
 * @module
 */
import { parseFlags } from "../cli/flags.ts";
import {
  CLIENT_BOOLEAN_FLAGS,
  CLIENT_FLAGS_HELP,
  CLIENT_STRING_FLAGS,
  credentialInput,
  reportError,
} from "./cli_util.ts";
import { ParleyClient } from "./client.ts";
import { resolveCredentials } from "./credentials.ts";
import { CHAT_SEND } from "../protocol/ops/chat.ts";

const HELP = `Usage: parley send [OPTIONS] ROOM TEXT...
       parley send [OPTIONS] @USER TEXT...

Posts one message to a room (e.g. lobby or #lobby) or a direct message to a
user (kept for them if they are offline). TEXT may be several words; use -
to read the text from standard input.

Exit status: 0 once the server has stored the message; 1 if the server
refused it (the reason is printed); 2 for usage or credential problems;
3 if the server cannot be reached.

Options:
  --me          send as an action (like /me)
  -h, --help    show this help

${CLIENT_FLAGS_HELP}`;

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
    console.error(`parley send: need a ROOM or @USER and the text\n\n${HELP}`);
    return 2;
  }
  let text = words.join(" ");
  if (text === "-") text = (await new Response(Deno.stdin.readable).text()).replace(/\n$/, "");
  const dest = target.startsWith("@")
    ? { to: target.slice(1) }
    : { room: target.replace(/^#/, "") };
  let client: ParleyClient | undefined;
  try {
    const creds = await resolveCredentials(credentialInput(f));
    client = await ParleyClient.connect(creds);
    await client.call(CHAT_SEND, { ...dest, text, ...(f.me ? { me: true } : {}) });
    return 0;
  } catch (e) {
    return reportError(e);
  } finally {
    await client?.close();
  }
}
