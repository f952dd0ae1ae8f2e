/**
 * The REPL's built-in commands: chat (`/join`, `/msg`, `/me`, `/who`, …),
 * moderation for admins, `/help` and `/quit`.
 *
 * @module
 */
import { bold } from "@std/fmt/colors";
import { formatMessage } from "./chat_format.ts";
import type { ChatMessage } from "./chat_types.ts";
import type { Repl } from "../repl.ts";
import type { ReplCommand, ReplContext } from "../repl_command.ts";
import {
  CHAT_BAN,
  CHAT_IGNORE,
  CHAT_KICK,
  CHAT_MUTE,
  CHAT_TIME,
  type ChatIgnoreReply,
  type ChatTimeReply,
} from "../../protocol/ops/chat.ts";

function _room(arg: string | undefined): string | undefined {
  return arg?.replace(/^#/, "");
}

function _user(arg: string | undefined): string | undefined {
  return arg?.replace(/^@/, "");
}

/** The current room, or an error that says how to get one. */
function _here(ctx: ReplContext): string {
  const room = ctx.currentRoom();
  if (room === undefined) throw new Error("you are in no room; /join ROOM first");
  return room;
}

function _need(v: string | undefined, usage: string): string {
  if (!v) throw new Error(`usage: ${usage}`);
  return v;
}

/** Built-in commands bound to `repl`. */
export function chatReplCommands(repl: Repl, plugins: ReplCommand[]): ReplCommand[] {
  const chat = repl.chat;
  const call = (op: string, args: Record<string, unknown>) => chat.client.call(op, args);
  const rooms = () => repl.knownRooms();
  const users = () => repl.knownUsers();
  const completeUser = (_c: ReplContext, _p: string, i: number) =>
    i === 0 ? users() : Promise.resolve([]);
  /** An admin command of the form `/NAME USER [more]` that calls one operation. */
  const moderation = (
    name: string,
    usage: string,
    summary: string,
    spec: {
      op: string;
      args: (
        ctx: ReplContext,
        extra: { reason: { reason?: string }; word: string | undefined },
      ) => Record<string, unknown>;
      done: (ctx: ReplContext, user: string, args: Record<string, unknown>) => string;
    },
  ): ReplCommand => ({
    name,
    usage,
    summary,
    async run(ctx, args, rest) {
      const user = _need(_user(args[0]), usage);
      const reason = rest.slice(args[0]!.length).trim();
      const extra = { reason: reason ? { reason } : {}, word: args[1] };
      const opArgs = spec.args(ctx, extra);
      await call(spec.op, { user, ...opArgs });
      ctx.print(`-- ${spec.done(ctx, user, opArgs)}`);
    },
    complete: completeUser,
  });
  const completeRoom = (_c: ReplContext, _p: string, i: number) =>
    i === 0 ? rooms() : Promise.resolve([]);
  const show = (msgs: ChatMessage[]) => {
    for (const m of msgs) repl.print(formatMessage(m, repl.format));
  };

  const builtins: ReplCommand[] = [
    {
      name: "help",
      usage: "/help [COMMAND]",
      summary: "list commands, or show one command's usage",
      run(ctx, args) {
        const all = repl.commands;
        const want = args[0]?.replace(/^\//, "");
        const list = want ? all.filter((c) => c.name === want || c.aliases?.includes(want)) : all;
        if (want && list.length === 0) throw new Error(`no command /${want}`);
        const width = Math.min(28, Math.max(...list.map((c) => c.usage.length)));
        for (const c of list) {
          const alias = c.aliases?.length
            ? ` (also ${c.aliases.map((a) => a === "!" ? "!" : `/${a}`).join(", ")})`
            : "";
          ctx.print(
            `  ${
              (ctx.color ? bold(c.usage) : c.usage) +
              " ".repeat(Math.max(0, width - c.usage.length))
            }  ${c.summary}${alias}`,
          );
        }
        if (!want) {
          ctx.print("  Plain text goes to the current room; start it with // to send a leading /.");
          ctx.print("  Tab completes commands, @users and #rooms.");
        }
        return Promise.resolve();
      },
      complete: (_c, _p, i) => Promise.resolve(i === 0 ? repl.commands.map((c) => c.name) : []),
    },
    {
      name: "join",
      aliases: ["j"],
      usage: "/join ROOM",
      summary: "join a room (or switch to it) and show its recent messages",
      async run(ctx, args) {
        const room = _need(_room(args[0]), "/join ROOM");
        const already = chat.rooms.includes(room);
        const before = repl.room;
        repl.setRoom(room);
        let r;
        try {
          r = await chat.join(room);
        } catch (e) {
          repl.setRoom(before);
          throw e;
        }
        if (!already) ctx.print(`-- you are in #${room} with ${r.users.join(", ")}`);
      },
      complete: completeRoom,
    },
    {
      name: "leave",
      aliases: ["part"],
      usage: "/leave [ROOM]",
      summary: "leave a room (default: the current one)",
      async run(ctx, args) {
        const room = _room(args[0]) ?? _here(ctx);
        await chat.leave(room);
        ctx.print(`-- left #${room}`);
        if (room === ctx.currentRoom()) {
          const next = chat.rooms[0];
          repl.setRoom(next);
          if (!next) ctx.print("-- you are in no room now; /join one to chat");
        }
      },
      complete: completeRoom,
    },
    {
      name: "rooms",
      usage: "/rooms",
      summary: "list rooms and how many people are in each",
      async run(ctx) {
        const r = await chat.roomList();
        if (r.rooms.length === 0) ctx.print("-- no rooms yet");
        for (const x of r.rooms) {
          ctx.print(`  ${x.joined ? "*" : " "} #${x.room} (${x.users} here)`);
        }
      },
    },
    {
      name: "who",
      usage: "/who [ROOM|*]",
      summary: "who is in the current room (or a room, or * for everyone online)",
      async run(ctx, args) {
        const room = args[0] === "*" ? undefined : _room(args[0]) ?? ctx.currentRoom();
        const r = { users: await chat.who(room) };
        ctx.print(`-- ${r.users.length} ${room ? `in #${room}` : "online"}:`);
        for (const u of r.users) {
          const idle = u.idleMs >= 60_000 ? `, idle ${Math.floor(u.idleMs / 60_000)} min` : "";
          ctx.print(`   ${u.name} (${u.rooms.map((x) => `#${x}`).join(" ") || "no rooms"}${idle})`);
        }
      },
      complete: completeRoom,
    },
    {
      name: "me",
      usage: "/me ACTION",
      summary: "post an action: /me waves → * you waves",
      async run(ctx, _args, rest) {
        await chat.send({ room: _here(ctx) }, _need(rest || undefined, "/me ACTION"), {
          me: true,
        });
      },
    },
    {
      name: "msg",
      aliases: ["dm", "query"],
      usage: "/msg USER TEXT",
      summary: "send a direct message (kept for the user if they are offline)",
      async run(_ctx, args, rest) {
        const to = _need(_user(args[0]), "/msg USER TEXT");
        const text = _need(rest.slice(args[0]!.length).trim() || undefined, "/msg USER TEXT");
        await chat.send({ to }, text);
      },
      complete: completeUser,
    },
    {
      name: "history",
      usage: "/history [N]",
      summary: "show the last N messages of the current room (default 20)",
      async run(ctx, args) {
        const n = args[0] === undefined ? 20 : Number(args[0]);
        if (!Number.isInteger(n) || n < 1 || n > 1000) throw new Error("N must be 1 to 1000");
        const r = { messages: await chat.history(_here(ctx), n) };
        if (r.messages.length === 0) ctx.print("-- no messages yet");
        show(r.messages);
      },
    },
    {
      name: "time",
      usage: "/time [FORMAT]",
      summary: "the server's clock, optionally in a strftime format (e.g. /time %H:%M)",
      async run(ctx, _args, rest) {
        const r = await call(CHAT_TIME, rest ? { format: rest } : {}) as ChatTimeReply;
        ctx.print(`-- server time: ${r.text}${rest ? "" : ` (${r.tz})`}`);
      },
    },
    {
      name: "ignore",
      usage: "/ignore [USER]",
      summary: "hide a user's messages (no USER: list whom you ignore)",
      async run(ctx, args) {
        const user = _user(args[0]);
        const r = await call(CHAT_IGNORE, user ? { user } : {}) as ChatIgnoreReply;
        ctx.print(`-- ignoring: ${r.ignored.join(", ") || "nobody"}`);
      },
      complete: completeUser,
    },
    {
      name: "unignore",
      usage: "/unignore USER",
      summary: "show a user's messages again",
      async run(ctx, args) {
        const user = _need(_user(args[0]), "/unignore USER");
        const r = await call(CHAT_IGNORE, { user, off: true }) as ChatIgnoreReply;
        ctx.print(`-- ignoring: ${r.ignored.join(", ") || "nobody"}`);
      },
      complete: completeUser,
    },
    moderation("kick", "/kick USER [REASON]", "(admin) remove a user from the current room", {
      op: CHAT_KICK,
      args: (ctx, extra) => ({ room: _here(ctx), ...extra.reason }),
      done: (_ctx, user, args) => `kicked ${user} from #${args.room}`,
    }),
    moderation("ban", "/ban USER [REASON]", "(admin) disconnect a user and refuse their logins", {
      op: CHAT_BAN,
      args: (_ctx, extra) => extra.reason,
      done: (_ctx, user) => `banned ${user}`,
    }),
    moderation("unban", "/unban USER", "(admin) lift a ban", {
      op: CHAT_BAN,
      args: () => ({ off: true }),
      done: (_ctx, user) => `unbanned ${user}`,
    }),
    moderation(
      "mute",
      "/mute USER [MINUTES]",
      "(admin) stop a user from posting for a while (default 10 minutes)",
      {
        op: CHAT_MUTE,
        args: (_ctx, extra) => {
          const minutes = extra.word === undefined ? 10 : Number(extra.word);
          if (!(minutes > 0)) throw new Error("MINUTES must be a positive number");
          return { minutes };
        },
        done: (_ctx, user, args) => `muted ${user} for ${args.minutes} min`,
      },
    ),
    moderation("unmute", "/unmute USER", "(admin) let a muted user post again", {
      op: CHAT_MUTE,
      args: () => ({ off: true }),
      done: (_ctx, user) => `unmuted ${user}`,
    }),
    {
      name: "quit",
      aliases: ["exit"],
      usage: "/quit",
      summary: "leave Parley (Ctrl-D works too)",
      run() {
        repl.quit(0);
        return Promise.resolve();
      },
    },
  ];
  const taken = new Set(builtins.flatMap((c) => [c.name, ...(c.aliases ?? [])]));
  return [...builtins, ...plugins.filter((p) => !taken.has(p.name))];
}
