/**
 * The `chat.*` request operations (PROTOCOL.md "Operations: chat"):
 * argument validation and replies. The work is done by {@linkcode ChatService}.
 *
 * @module
 */
import * as ops from "../../protocol/ops/chat.ts";
import { CHAT_ARGS } from "../../protocol/ops/chat_args.ts";
import type { ClientContext } from "../context.ts";
import { RequestError } from "../errors.ts";
import type { OpRegistry } from "../registry.ts";
import { parseArgs } from "../parse_args.ts";
import { fitList, REPLY_BUDGET } from "./chat_pager.ts";
import { type ChatService, CURSOR_BYTES } from "./chat_service.ts";
import { DEFAULT_TIME_FORMAT, strftime } from "./strftime.ts";

/** The list of banned users, cut to fit a reply (`bannedMore` when cut). */
function _banned(names: string[]): { banned: string[]; bannedMore?: true } {
  const page = fitList(names, REPLY_BUDGET - CURSOR_BYTES);
  return page.more ? { banned: page.items, bannedMore: true } : { banned: page.items };
}

function _admin(ctx: ClientContext, what: string): void {
  if (!ctx.user.admin) throw new RequestError("forbidden", `only admins can ${what}`);
}

/** Registers every `chat.*` operation. */
export function registerChatOps(registry: OpRegistry, chat: ChatService): void {
  const cfg = chat.config;

  registry.registerParsed(ops.CHAT_JOIN, CHAT_ARGS[ops.CHAT_JOIN], (ctx, a) => {
    return chat.join(chat.conn(ctx), a.room ?? cfg.defaultRoom, {
      after: a.after,
      limit: a.limit ?? (a.after === undefined ? cfg.historyOnJoin : 1000),
    });
  });

  registry.registerParsed(ops.CHAT_LEAVE, CHAT_ARGS[ops.CHAT_LEAVE], (ctx, a) => {
    chat.leave(chat.conn(ctx), a.room);
    return Promise.resolve({});
  });

  registry.registerParsed(ops.CHAT_ROOMS, CHAT_ARGS[ops.CHAT_ROOMS], (ctx, a) => {
    const mine = chat.conn(ctx).rooms;
    const names = chat.roomNames().filter((r) => a.after === undefined || r > a.after);
    const page = fitList(
      names.map((room) => {
        const topic = chat.topicOf(room)?.text;
        return {
          room,
          users: chat.usersIn(room).length,
          joined: mine.has(room),
          ...(topic ? { topic } : {}),
        };
      }),
      REPLY_BUDGET - CURSOR_BYTES,
    );
    return Promise.resolve({
      rooms: page.items,
      defaultRoom: cfg.defaultRoom,
      limits: {
        ratePerSecond: cfg.ratePerSecond,
        rateBurst: cfg.rateBurst,
        maxTextBytes: cfg.maxTextBytes,
      },
      admin: ctx.user.admin,
      more: page.more,
      ...(page.more ? { after: page.items.at(-1)?.room ?? a.after } : {}),
    });
  });

  registry.registerParsed(ops.CHAT_SEND, CHAT_ARGS[ops.CHAT_SEND], async (ctx, a) => {
    const msg = await chat.send(chat.conn(ctx), {
      ...a,
      room: a.to === undefined ? a.room ?? cfg.defaultRoom : undefined,
    });
    return { id: msg.id, ts: msg.ts, ...(msg.duplicate ? { dup: true } : {}) };
  });

  registry.registerParsed(ops.CHAT_HISTORY, CHAT_ARGS[ops.CHAT_HISTORY], (ctx, a) => {
    const q = { after: a.after, before: a.before, limit: a.limit ?? 100 };
    return chat.history(
      ctx.user.name,
      a.dm ? { dm: true } : { room: a.room ?? cfg.defaultRoom },
      q,
    );
  });

  registry.registerParsed(ops.CHAT_INBOX, CHAT_ARGS[ops.CHAT_INBOX], (ctx, a) => {
    return chat.inbox(chat.conn(ctx), a.limit ?? 1000);
  });

  registry.registerParsed(ops.CHAT_GET, CHAT_ARGS[ops.CHAT_GET], async (ctx, a) => {
    return { message: await chat.get(ctx.user.name, a.id) };
  });

  registry.registerParsed(ops.CHAT_WHO, CHAT_ARGS[ops.CHAT_WHO], (_ctx, a) => {
    const online = chat.online().filter((u) =>
      (a.room === undefined || u.rooms.includes(a.room)) &&
      (a.after === undefined || u.name > a.after)
    );
    const page = fitList(online, REPLY_BUDGET - CURSOR_BYTES);
    return Promise.resolve({
      ...(a.room ? { room: a.room } : {}),
      users: page.items,
      more: page.more,
      ...(page.more ? { after: page.items.at(-1)?.name ?? a.after } : {}),
    });
  });

  registry.registerParsed(ops.CHAT_TIME, CHAT_ARGS[ops.CHAT_TIME], (_ctx, a) => {
    const now = new Date();
    return Promise.resolve({
      ts: now.getTime(),
      text: strftime(a.format ?? DEFAULT_TIME_FORMAT, now),
      tz: Intl.DateTimeFormat().resolvedOptions().timeZone,
    });
  });

  registry.registerParsed(ops.CHAT_IGNORE, CHAT_ARGS[ops.CHAT_IGNORE], async (ctx, a) => {
    if (a.user !== undefined) await chat.ignore(ctx.user.name, a.user, !a.off);
    return { ignored: chat.ignores(ctx.user.name) };
  });

  registry.registerParsed(ops.CHAT_TOPIC, CHAT_ARGS[ops.CHAT_TOPIC], async (ctx, a) => {
    const topic = a.text === undefined
      ? chat.readTopic(a.room)
      : await chat.setTopic(ctx.user, a.room, a.text);
    return { room: a.room, ...(topic ? { topic } : {}) };
  });

  registry.register(ops.CHAT_KICK, (ctx, args) => {
    _admin(ctx, "kick");
    const a = parseArgs(ops.CHAT_KICK, CHAT_ARGS[ops.CHAT_KICK], args);
    const n = chat.kick(a.user, a.room, ctx.user.name, a.reason);
    if (n === 0) throw new RequestError("not_found", `${a.user} is not in #${a.room}`);
    return Promise.resolve({ kicked: n });
  });

  registry.register(ops.CHAT_BAN, async (ctx, args) => {
    _admin(ctx, "ban");
    const a = parseArgs(ops.CHAT_BAN, CHAT_ARGS[ops.CHAT_BAN], args);
    if (a.user === ctx.user.name) throw new RequestError("bad_request", "you cannot ban yourself");
    if (a.off) {
      await chat.moderation.unban(a.user);
      return _banned(chat.moderation.bans());
    }
    if (!(await chat.userExists(a.user))) {
      throw new RequestError("not_found", `no user named ${a.user}`);
    }
    const closed = await chat.moderation.ban(a.user, ctx.user.name, a.reason);
    return { ..._banned(chat.moderation.bans()), disconnected: closed };
  });

  registry.register(ops.CHAT_MUTE, async (ctx, args) => {
    _admin(ctx, "mute");
    const a = parseArgs(ops.CHAT_MUTE, CHAT_ARGS[ops.CHAT_MUTE], args);
    if (a.off) {
      await chat.moderation.mute(a.user, undefined);
      chat.moderation.notify(a.user, `${ctx.user.name} unmuted you`);
      return { muted: false };
    }
    if (!(await chat.userExists(a.user))) {
      throw new RequestError("not_found", `no user named ${a.user}`);
    }
    const minutes = a.minutes ?? 10;
    const until = Date.now() + minutes * 60_000;
    await chat.moderation.mute(a.user, { by: ctx.user.name, until });
    chat.moderation.notify(
      a.user,
      `${ctx.user.name} muted you for ${minutes} minute${minutes === 1 ? "" : "s"}`,
    );
    return { muted: true, until };
  });
}
