/**
 * REPL commands about the user's own account: `/rotate` gives it a new key
 * (PROTOCOL.md §12, `account.rotate`), prints it once and, when the key came
 * from the config file, saves it there.
 *
 * @module
 */
import { decodeHex } from "@std/encoding/hex";
import { saveConfigKey } from "./credentials.ts";
import type { ReplCommand } from "./repl_command.ts";

/** The account commands of `parley connect`. */
export const ACCOUNT_REPL_COMMANDS: ReplCommand[] = [
  {
    name: "rotate",
    usage: "/rotate",
    summary: "give your account a new key (shown once); your other sessions are closed",
    run: async (ctx) => {
      const reply = await ctx.client.call("account.rotate", {}) as { key?: unknown };
      const key = typeof reply.key === "string" && /^[0-9a-f]{64}$/.test(reply.key)
        ? reply.key
        : undefined;
      if (!key) throw new Error("the server sent no usable key");
      ctx.client.replaceKey(decodeHex(key));
      ctx.print(`-- your new key (shown once, keep it secret): ${key}`);
      ctx.print("-- the old key no longer works; your other sessions were closed");
      if (ctx.client.options.keySource === "config") {
        try {
          ctx.print(`-- saved to ${await saveConfigKey(key)}`);
        } catch (e) {
          ctx.print(`-- could not save it to the config file (${(e as Error).message}): do it now`);
        }
      } else {
        ctx.print("-- update PARLEY_KEY (or wherever you keep it) before you connect again");
      }
    },
  },
];
