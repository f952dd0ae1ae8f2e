/**
 * The REPL's built-in commands: chat (`/join`, `/msg`, `/query`, `/r`,
 * `/me`, `/who`, `/names`, …), moderation for admins, `/help` and `/quit`.
 * Free text after a word (`/msg ada it's late`) is taken as typed, quotes
 * and all. Turns on paced sending (`ChatClient.setPacing`): a pasted block
 * goes out whole and in order under the server's rate.
 *
 * @module
 */
import { bold } from "@std/fmt/colors";
import process from "node:process";
import { formatMessage, sanitize } from "./chat_format.ts";
import type { ChatMessage } from "./chat_types.ts";
import type { Repl } from "../repl.ts";
import type { ReplCommand, ReplContext } from "../repl_command.ts";
import { offeredCommands } from "../repl_completer.ts";
import { textAfter } from "../repl_words.ts";
import {
  CHAT_BAN,
  CHAT_HISTORY,
  CHAT_IGNORE,
  CHAT_KICK,
  CHAT_MUTE,
  CHAT_TIME,
  type ChatIgnoreReply,
  type ChatPage,
  type ChatTimeReply,
  type ChatTopic,
} from "../../protocol/ops/chat.ts";

/** Most pages `/history @USER` reads looking for a conversation (1000 messages each). */
const _DM_PAGES = 20;

/** A room name as typed (`#Dev`) as the server names it (`dev`). */
function _room(arg: string | undefined): string | undefined {
  return arg?.replace(/^#/, "").toLowerCase();
}

function _user(arg: string | undefined): string | undefined {
  return arg?.replace(/^@/, "").replace(/:$/, "");
}

/**
 * Wraps `text` to lines of at most `width` columns: the first line starts
 * with `indent` spaces, the others with `hang` spaces. A word longer than a
 * line is cut.
 */
export function wrapText(text: string, width: number, indent: number, hang = indent): string[] {
  const out: string[] = [];
  let line = " ".repeat(indent);
  let empty = true;
  const words = text.trim().split(/\s+/).filter((w) => w !== "");
  for (let word of words) {
    if (!empty && line.length + 1 + word.length > width) {
      out.push(line);
      line = " ".repeat(hang);
      empty = true;
    }
    // a word that fits no line is cut
    while (line.length + word.length > width && width > line.length) {
      const room = width - line.length;
      out.push(line + word.slice(0, room));
      word = word.slice(room);
      line = " ".repeat(hang);
    }
    if (word === "") continue;
    line = empty ? line + word : `${line} ${word}`;
    empty = false;
  }
  if (!empty) out.push(line);
  return out;
}

function _columns(): number {
  try {
    return process.stdout.isTTY ? Math.max(20, process.stdout.columns || 80) : 80;
  } catch {
    return 80;
  }
}

/** The current room, or an error that says how to get one. */
function _here(ctx: ReplContext): string {
  const room = ctx.currentRoom();
  if (room !== undefined) return room;
  const t = ctx.currentTarget();
  throw new Error(
    t && "to" in t
      ? `your lines go to ${t.to} (/query); name a room, or /query alone to go back to one`
      : "you are in no room; /join ROOM first",
  );
}

/** A topic as one line: `topic of #dev: TEXT (set by ada, 2026-12-02 14:05)`. */
function _topicLine(room: string, t: ChatTopic): string {
  const d = new Date(t.ts);
  const p = (n: number) => String(n).padStart(2, "0");
  const when = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}`;
  return `-- topic of #${room}: ${sanitize(t.text)} (set by ${sanitize(t.by)}, ${when})`;
}

function _need(v: string | undefined, usage: string): string {
  if (!v) throw new Error(`usage: ${usage}`);
  return v;
}

/** Built-in commands bound to `repl`. */
export function chatReplCommands(repl: Repl, plugins: ReplCommand[]): ReplCommand[] {
  const chat = repl.chat;
  chat.setPacing(true);
  /** The last user who sent a direct message (for `/r`), and the room before `/query`. */
  let lastDm: string | undefined;
  let roomBeforeQuery: string | undefined;
  /** `/away`: the reason, who was told, and how many direct messages came meanwhile. */
  let away: { reason: string; told: Set<string>; missed: number } | undefined;
  chat.onEvent((e) => {
    if (e.kind === "msg" && e.msg.to !== undefined && e.msg.from !== chat.client.user) {
      lastDm = e.msg.from;
      if (away && !e.replay) {
        away.missed++;
        // one automatic answer per sender, never to an action (two away users do not loop)
        if (!e.msg.me && !away.told.has(e.msg.from)) {
          away.told.add(e.msg.from);
          chat.send({ to: e.msg.from }, `is away: ${away.reason}`, { me: true }).catch(() => {
            // the sender was not told; nothing else depends on it
          });
        }
      }
    }
    if (e.kind === "kicked") {
      // after the REPL has shown the kick and moved the prompt on
      setTimeout(() => {
        const t = repl.target;
        repl.print(
          t === undefined
            ? "-- you are in no room now; lines you type are not sent (/join ROOM)"
            : "room" in t
            ? `-- your lines go to #${t.room} now`
            : `-- your lines go to ${t.to} now`,
        );
      }, 0);
    }
  });
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
      const reason = textAfter(rest, 1);
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
  /** The last `n` direct messages between the user and `other`, oldest first. */
  const _dmHistory = async (other: string, n: number): Promise<ChatMessage[]> => {
    const me = chat.client.user;
    const out: ChatMessage[] = [];
    let before: string | undefined;
    for (let i = 0; i < _DM_PAGES && out.length < n; i++) {
      const h = await call(CHAT_HISTORY, {
        dm: true,
        limit: 1000,
        ...(before ? { before } : {}),
      }) as ChatPage;
      const mine = h.messages.filter((m) =>
        (m.from === other && m.to === me) || (m.from === me && m.to === other)
      );
      out.unshift(...mine);
      before = h.more ? h.before ?? h.messages[0]?.id : undefined;
      if (before === undefined) break;
    }
    return out.slice(-n);
  };

  const builtins: ReplCommand[] = [
    {
      name: "help",
      usage: "/help [COMMAND]",
      summary: "list commands, or show one command's usage",
      run(ctx, args) {
        const all = repl.commands;
        const want = args[0]?.replace(/^\//, "");
        const list = want
          ? all.filter((c) => c.name === want || c.aliases?.includes(want))
          : offeredCommands(all, chat.admin);
        if (want && list.length === 0) throw new Error(`no command /${want}`);
        const cols = _columns();
        const width = Math.min(28, Math.max(...list.map((c) => c.usage.length)));
        // wide terminals: the summary beside the usage; narrow ones: under it, indented
        const beside = cols >= width + 40;
        const say = (text: string, indent: number, hang: number) => {
          for (const l of wrapText(text, cols - 1, indent, hang)) ctx.print(l);
        };
        const bolden = (l: string) => ctx.color ? l.replace(/\S.*/, (u) => bold(u)) : l;
        for (const c of list) {
          const alias = c.aliases?.length
            ? ` (also ${c.aliases.map((a) => a === "!" ? "!" : `/${a}`).join(", ")})`
            : "";
          const summary = `${c.summary}${alias}`;
          if (beside && c.usage.length <= width) {
            const pad = " ".repeat(width - c.usage.length);
            const lines = wrapText(summary, cols - width - 5, 0);
            ctx.print(`  ${ctx.color ? bold(c.usage) : c.usage}${pad}  ${lines[0] ?? ""}`);
            for (const l of lines.slice(1)) ctx.print(`${" ".repeat(width + 4)}${l}`);
            continue;
          }
          for (const l of wrapText(c.usage, cols - 1, 2, 4)) ctx.print(bolden(l));
          const at = beside ? width + 4 : 6;
          say(summary, at, at);
        }
        if (!want) {
          say(
            "Plain text goes to the current room (or the user of /query); start it with // " +
              "to send a leading /.",
            2,
            4,
          );
          say("Tab completes commands, @users, #rooms and file names.", 2, 4);
          if (list.length < all.length) {
            say("Admin commands are left out: you are not an admin.", 2, 4);
          }
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
        if (!already) {
          ctx.print(`-- you are in #${room} with ${r.users.join(", ")}`);
          if (r.topic) ctx.print(_topicLine(room, r.topic));
        }
        roomBeforeQuery = undefined;
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
        if (room === roomBeforeQuery) roomBeforeQuery = chat.rooms[0];
        if (room === ctx.currentRoom()) {
          const next = chat.rooms[0];
          repl.setRoom(next);
          ctx.print(
            next
              ? `-- your lines go to #${next} now`
              : "-- you are in no room now; lines you type are not sent (/join ROOM)",
          );
        }
      },
      complete: completeRoom,
    },
    {
      name: "rooms",
      aliases: ["list"],
      usage: "/rooms",
      summary: "list rooms and how many people are in each",
      async run(ctx) {
        const r = await chat.roomList();
        if (r.rooms.length === 0) ctx.print("-- no rooms yet");
        for (const x of r.rooms) {
          const topic = x.topic ? `: ${sanitize(x.topic)}` : "";
          ctx.print(`  ${x.joined ? "*" : " "} #${x.room} (${x.users} here)${topic}`);
        }
      },
    },
    {
      name: "topic",
      usage: "/topic [TEXT]",
      summary: "show the current room's topic; /topic TEXT sets it, /topic -delete clears it",
      async run(ctx, _args, rest) {
        const room = _here(ctx);
        if (rest === "") {
          const t = await chat.topic(room);
          ctx.print(t ? _topicLine(room, t) : `-- #${room} has no topic; /topic TEXT sets one`);
          return;
        }
        // the server tells the room, this connection included, and the REPL shows that line
        await chat.setTopic(room, rest === "-delete" ? "" : rest);
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
      name: "names",
      usage: "/names [ROOM]",
      summary: "the names of the people in the current room (or ROOM), on one line",
      async run(ctx, args) {
        const room = _room(args[0]) ?? _here(ctx);
        const users = await chat.who(room);
        ctx.print(
          users.length === 0
            ? `-- nobody is in #${room}`
            : `-- #${room}: ${users.map((u) => u.name).join(" ")}`,
        );
      },
      complete: completeRoom,
    },
    {
      name: "me",
      usage: "/me ACTION",
      summary: "post an action: /me waves → * you waves",
      async run(ctx, _args, rest) {
        const t = ctx.currentTarget();
        if (t === undefined) throw new Error("you are in no room; /join ROOM first");
        await chat.send(t, _need(rest || undefined, "/me ACTION"), { me: true });
      },
    },
    {
      name: "msg",
      aliases: ["dm"],
      usage: "/msg USER TEXT",
      summary: "send a direct message (kept for the user if they are offline)",
      async run(_ctx, args, rest) {
        const to = _need(_user(args[0]), "/msg USER TEXT");
        const text = _need(textAfter(rest, 1) || undefined, "/msg USER TEXT");
        await chat.send({ to }, text);
      },
      complete: completeUser,
    },
    {
      name: "query",
      usage: "/query [USER]",
      summary:
        "send your plain lines to USER as direct messages; /query alone goes back to the room",
      run(ctx, args) {
        const to = _user(args[0]);
        if (to === undefined) {
          const t = ctx.currentTarget();
          if (t === undefined || "room" in t) {
            ctx.print("-- no conversation open; /query USER opens one");
            return Promise.resolve();
          }
          const back = roomBeforeQuery !== undefined && chat.rooms.includes(roomBeforeQuery)
            ? roomBeforeQuery
            : chat.rooms[0];
          repl.setRoom(back);
          ctx.print(back ? `-- your lines go to #${back} again` : "-- you are in no room now");
          return Promise.resolve();
        }
        if (to === chat.client.user) throw new Error("that is you; /query another user");
        const t = ctx.currentTarget();
        if (t !== undefined && "room" in t) roomBeforeQuery = t.room;
        repl.setTarget({ to });
        ctx.print(`-- your lines go to ${to} as direct messages; /query alone goes back`);
        return Promise.resolve();
      },
      complete: completeUser,
    },
    {
      name: "r",
      aliases: ["reply"],
      usage: "/r TEXT",
      summary: "reply to the last person who sent you a direct message",
      async run(_ctx, _args, rest) {
        if (lastDm === undefined) throw new Error("nobody has sent you a direct message yet");
        await chat.send({ to: lastDm }, _need(rest || undefined, "/r TEXT"));
      },
    },
    {
      name: "history",
      usage: "/history [@USER] [N]",
      summary:
        "show the last N messages of the current room, or of your direct messages with USER " +
        "(default 20)",
      async run(ctx, args) {
        const who = args[0]?.startsWith("@") ? _user(args[0]) : undefined;
        const nArg = who === undefined ? args[0] : args[1];
        const n = nArg === undefined ? 20 : Number(nArg);
        if (!Number.isInteger(n) || n < 1 || n > 1000) throw new Error("N must be 1 to 1000");
        const r = {
          messages: who === undefined
            ? await chat.history(_here(ctx), n)
            : await _dmHistory(who, n),
        };
        if (r.messages.length === 0) {
          ctx.print(who === undefined ? "-- no messages yet" : `-- no messages with ${who} yet`);
        }
        show(r.messages);
      },
      complete: (_c, p, i) =>
        i === 0 && p.startsWith("@")
          ? users().then((u) => u.map((x) => `@${x}`))
          : Promise.resolve([]),
    },
    {
      name: "away",
      usage: "/away [REASON]",
      summary: "mark yourself away: a direct message gets one automatic answer with REASON; " +
        "/away alone when you are back",
      run(ctx, _args, rest) {
        if (rest === "") {
          if (away === undefined) {
            ctx.print("-- you are not away; /away REASON marks you away");
          } else {
            const n = away.missed;
            away = undefined;
            ctx.print(
              `-- you are back; ${n} direct message${n === 1 ? "" : "s"} arrived while you were ` +
                `away${n > 0 ? " (/history @USER shows a conversation)" : ""}`,
            );
          }
          return Promise.resolve();
        }
        away = { reason: rest, told: new Set(), missed: 0 };
        ctx.print(
          `-- you are away (${rest}); whoever sends you a direct message is told once; ` +
            "/away alone when you are back",
        );
        return Promise.resolve();
      },
    },
    {
      name: "clear",
      usage: "/clear",
      summary: "clear the screen",
      run() {
        repl.clearScreen();
        return Promise.resolve();
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
  // free text after the first words: an apostrophe is not an unclosed quote
  const freeText = new Set(["me", "msg", "r", "away", "time", "kick", "ban", "topic"]);
  for (const c of builtins) if (freeText.has(c.name)) c.freeText = true;
  const taken = new Set(builtins.flatMap((c) => [c.name, ...(c.aliases ?? [])]));
  return [...builtins, ...plugins.filter((p) => !taken.has(p.name))];
}
