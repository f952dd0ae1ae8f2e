/**
 * `parley user add|list|remove`: manages accounts in the data directory.
 *
 * @module
 */
import { parseFlags } from "../client/cli_util.ts";
import { RequestError } from "./errors.ts";
import { UserStore } from "./users.ts";

const HELP = `Usage: parley user add NAME [--admin] [--exec] [--data DIR]
       parley user list [--json] [--data DIR]
       parley user remove NAME [--data DIR]

Manages accounts. \`add\` prints the new account's key once; give it to the
user (PARLEY_KEY or their config file). The running server sees changes at
once.

Options:
  --admin       the user may moderate chat (kick, ban, mute)
  --exec        the user may run remote commands (when the server enables exec)
  --data DIR    data directory (default ./parley-data)
  --json        machine-readable output
  -h, --help    show this help`;

/** Runs a user-management subcommand. */
export async function run(args: string[]): Promise<number> {
  const parsed = parseFlags(args, { string: ["data"], boolean: ["admin", "exec", "json"] }, HELP);
  if ("exitCode" in parsed) return parsed.exitCode;
  const f = parsed.flags;
  const [sub, name, ...extra] = f._.map(String);
  const store = await UserStore.open((f.data as string | undefined) ?? "./parley-data");
  try {
    if (sub === "add" && name && extra.length === 0) {
      const key = await store.add(name, { admin: Boolean(f.admin), exec: Boolean(f.exec) });
      if (f.json) console.log(JSON.stringify({ name, key }));
      else {
        console.log(`Created user ${name}. Key (shown once, keep it secret):\n${key}`);
      }
      return 0;
    }
    if (sub === "list" && !name) {
      const users = await store.list();
      if (f.json) console.log(JSON.stringify(users));
      else if (users.length === 0) console.log("no users");
      else {
        for (const u of users) {
          const rights = [u.admin ? "admin" : "", u.exec ? "exec" : ""].filter(Boolean).join(",");
          console.log(`${u.name.padEnd(20)} ${(rights || "-").padEnd(11)} created ${u.created}`);
        }
      }
      return 0;
    }
    if (sub === "remove" && name && extra.length === 0) {
      await store.remove(name);
      console.log(`Removed user ${name}.`);
      return 0;
    }
  } catch (e) {
    if (e instanceof RequestError) {
      console.error(`parley user: ${e.message}`);
      return 1;
    }
    throw e;
  }
  console.error(`parley user: expected add NAME, list or remove NAME\n\n${HELP}`);
  return 2;
}
