/**
 * `parley user add|list|set|rotate|remove`: manages accounts in the data
 * directory. A running server sees each change at once and closes or
 * restricts the sessions it affects.
 *
 * @module
 */
import { parseFlags } from "../cli/flags.ts";
import { RequestError } from "./errors.ts";
import type { Account, Accounts } from "./backend/accounts.ts";
import { UserStore } from "./embedded/user_store.ts";

const HELP = `Usage: parley user add NAME [--admin] [--exec] [--data DIR]
       parley user list [--json] [--data DIR]
       parley user set NAME [--admin|--no-admin] [--exec|--no-exec] [--data DIR]
       parley user rotate NAME [--data DIR]
       parley user remove NAME [--data DIR]

Manages accounts. \`add\` and \`rotate\` print the account's (new) key once;
give it to the user (PARLEY_KEY or their config file). The running server
sees changes at once: removing an account, rotating its key or taking a
right away closes that user's open connections; a right given applies to
them at once.

Options:
  --admin       the user may moderate chat (kick, ban, mute); --no-admin takes it away
  --exec        the user may run remote commands (when the server enables exec);
                --no-exec takes it away
  --data DIR    data directory (default ./parley-data)
  --json        machine-readable output
  -h, --help    show this help`;

/** Runs a user-management subcommand. */
export async function run(args: string[]): Promise<number> {
  const parsed = parseFlags(args, {
    string: ["data"],
    boolean: ["admin", "exec", "no-admin", "no-exec", "json"],
  }, HELP);
  if ("exitCode" in parsed) return parsed.exitCode;
  const f = parsed.flags;
  const [sub, name, ...extra] = f._.map(String);
  await using store: Accounts & AsyncDisposable = await UserStore.open(
    (f.data as string | undefined) ?? "./parley-data",
  );
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
      const users = (await store.list()).map(_printable);
      if (f.json) console.log(JSON.stringify(users));
      else if (users.length === 0) console.log("no users");
      else {
        for (const u of users) {
          const rights = _rights(u);
          console.log(`${u.name.padEnd(20)} ${(rights || "-").padEnd(11)} created ${u.created}`);
        }
      }
      return 0;
    }
    if (sub === "set" && name && extra.length === 0) {
      const rights = {
        ...(f.admin ? { admin: true } : f["no-admin"] ? { admin: false } : {}),
        ...(f.exec ? { exec: true } : f["no-exec"] ? { exec: false } : {}),
      };
      if (
        (f.admin && f["no-admin"]) || (f.exec && f["no-exec"]) || Object.keys(rights).length === 0
      ) {
        console.error(
          `parley user: set needs one of --admin/--no-admin, --exec/--no-exec\n\n${HELP}`,
        );
        return 2;
      }
      const u = await store.setRights(name, rights);
      if (f.json) console.log(JSON.stringify(_printable(u)));
      else console.log(`User ${name}: ${_rights(u) || "no rights"}.`);
      return 0;
    }
    if (sub === "rotate" && name && extra.length === 0) {
      const key = await store.rotate(name);
      if (f.json) console.log(JSON.stringify({ name, key }));
      else console.log(`New key for ${name} (shown once, keep it secret):\n${key}`);
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
  console.error(
    `parley user: expected add NAME, list, set NAME, rotate NAME or remove NAME\n\n${HELP}`,
  );
  return 2;
}

/** What `list` and `set` print of an account. */
function _printable(u: Account): Pick<Account, "name" | "admin" | "exec" | "created"> {
  return { name: u.name, admin: u.admin, exec: u.exec, created: u.created };
}

function _rights(u: Pick<Account, "admin" | "exec">): string {
  return [u.admin ? "admin" : "", u.exec ? "exec" : ""].filter(Boolean).join(",");
}
