/**
 * `parley ping`: connects, authenticates and measures round trips.
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
import { resolveCredentials } from "./credentials.ts";
import { connectForCommand, reportCliError } from "./exit_status.ts";

const HELP = `Usage: parley ping [parley://USER@HOST:PORT] [--count N]

Connects, authenticates and prints the handshake time and N round trips.

Options:
  --count N     round trips to measure (default 3)
  -h, --help    show this help

${CLIENT_FLAGS_HELP}

${EXIT_HELP}`;

/** Runs `parley ping`. */
export async function run(args: string[]): Promise<number> {
  const parsed = parseFlags(
    args,
    { string: [...CLIENT_STRING_FLAGS, "count"], boolean: [...CLIENT_BOOLEAN_FLAGS] },
    HELP,
  );
  if ("exitCode" in parsed) return parsed.exitCode;
  const f = parsed.flags;
  const count = Number(f.count ?? 3);
  if (!Number.isInteger(count) || count < 0 || count > 1000) {
    return usageError("ping", "--count must be a whole number from 0 to 1000");
  }
  if (f._.length > 1) {
    return usageError("ping", "give at most one server address");
  }
  try {
    const creds = await resolveCredentials(credentialInput(f, f._[0] as string | undefined));
    const t0 = performance.now();
    await using client = await connectForCommand(creds);
    console.log(
      `connected and authenticated as ${creds.user} in ${(performance.now() - t0).toFixed(1)} ms`,
    );
    for (let i = 0; i < count; i++) {
      console.log(`round trip ${i + 1}: ${(await client.session.ping()).toFixed(2)} ms`);
    }
    return EXIT.ok;
  } catch (e) {
    return reportCliError(e);
  }
}
