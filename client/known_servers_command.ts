/**
 * `parley known-servers [list | forget HOST:PORT]`: the servers whose
 * certificates this client trusts (./known_servers.ts).
 *
 * @module
 */
import { parseFlags, usageProblem } from "../cli/flags.ts";
import { didYouMean } from "../cli/suggest.ts";
import { knownServersPath } from "./credentials.ts";
import { KnownServers } from "./known_servers.ts";

const HELP = `Usage: parley known-servers [list]
       parley known-servers forget HOST:PORT

The servers this client has met and the certificate fingerprint of each
(trust on first use, like ssh's known_hosts), kept in known_servers in the
config dir. A server whose certificate changed is refused until its entry is
forgotten; forget it only once the server's operator has confirmed the new
fingerprint (\`parley serve\` prints it at start).

Options:
  -h, --help    show this help`;

/** Runs the command; returns the exit code. */
export async function run(args: string[]): Promise<number> {
  const parsed = parseFlags(args, {}, HELP);
  if ("exitCode" in parsed) return parsed.exitCode;
  const [sub = "list", where, ...extra] = parsed.flags._.map(String);
  const path = knownServersPath();
  if (!path) {
    console.error("parley known-servers: no config dir (set HOME or XDG_CONFIG_HOME)");
    return 2;
  }
  const known = new KnownServers(path);
  if (sub === "list" && where === undefined) {
    const entries = await known.entries();
    if (entries.size === 0) console.log(`no known servers (${path})`);
    for (const [k, v] of entries) console.log(`${k} ${v}`);
    return 0;
  }
  if (sub === "forget" && where !== undefined && extra.length === 0) {
    if (!(await known.forget(where))) {
      console.error(`parley known-servers: ${where} is not in ${path}`);
      return 1;
    }
    console.log(`Forgot ${where}; the next connection shows its certificate again.`);
    return 0;
  }
  const subcommands = ["list", "forget"];
  const problem = !subcommands.includes(sub)
    ? `unknown command ${sub}${didYouMean(sub, subcommands)}`
    : sub === "forget" && where === undefined
    ? "missing HOST:PORT"
    : "too many arguments";
  return usageProblem(
    HELP,
    problem,
    subcommands.includes(sub) ? `parley known-servers ${sub}` : undefined,
  );
}
