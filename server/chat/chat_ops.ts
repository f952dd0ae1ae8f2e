/**
 * The `chat.*` request operations (PROTOCOL.md "Operations: chat"):
 * argument validation and replies. The work is done by {@linkcode ChatService}.
 *
 * @module
 */
import { z } from "zod";
import type { Json } from "../../protocol/messages.ts";
import type { ClientContext } from "../context.ts";
import { RequestError } from "../errors.ts";
import type { OpRegistry } from "../registry.ts";
import { validUserName } from "../backend/accounts.ts";
import { FILE_REF, ROOM_NAME } from "./chat_message.ts";
import { fitList, REPLY_BUDGET } from "./chat_pager.ts";
import { type ChatService, CURSOR_BYTES } from "./chat_service.ts";
import { DEFAULT_TIME_FORMAT, strftime } from "./strftime.ts";

const _ROOM = z.string().regex(
  ROOM_NAME,
  "room names are 1-32 of a-z 0-9 _ . - (lower case), not starting with . or -",
);
const _USER = z.string().refine(validUserName, "not a valid user name");
const _ID = z.union([z.string().regex(/^\d{1,20}$/), z.number().int().min(0)])
  .transform((v) => Number(v));
const _LIMIT = z.number().int().min(1).max(1000);

const _SEND = z.object({
  room: _ROOM.optional(),
  to: _USER.optional(),
  text: z.string().max(1_000_000).refine((t) => !t.includes("\0"), "no NUL characters"),
  me: z.boolean().optional(),
  file: FILE_REF.optional(),
}).strict().refine(
  (a) => !(a.room !== undefined && a.to !== undefined),
  "give room or to, not both",
);

const _JOIN = z.object({ room: _ROOM.optional(), after: _ID.optional(), limit: _LIMIT.optional() })
  .strict();
const _HISTORY = z.object({
  room: _ROOM.optional(),
  dm: z.boolean().optional(),
  after: _ID.optional(),
  before: _ID.optional(),
  limit: _LIMIT.optional(),
}).strict();

function _parse<T>(schema: z.ZodType<T>, args: Json, op: string): T {
  const r = schema.safeParse(args);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const where = issue?.path.length ? `${issue.path.join(".")}: ` : "";
  throw new RequestError("bad_request", `${op}: ${where}${issue?.message ?? "invalid arguments"}`);
}

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

  registry.register("chat.join", (ctx, args) => {
    const a = _parse(_JOIN, args, "chat.join");
    return chat.join(chat.conn(ctx), a.room ?? cfg.defaultRoom, {
      after: a.after,
      limit: a.limit ?? (a.after === undefined ? cfg.historyOnJoin : 1000),
    });
  });

  registry.register("chat.leave", (ctx, args) => {
    const a = _parse(z.object({ room: _ROOM }).strict(), args, "chat.leave");
    chat.leave(chat.conn(ctx), a.room);
    return Promise.resolve({});
  });

  registry.register("chat.rooms", (ctx, args) => {
    const a = _parse(z.object({ after: _ROOM.optional() }).strict(), args, "chat.rooms");
    const mine = chat.conn(ctx).rooms;
    const names = chat.roomNames().filter((r) => a.after === undefined || r > a.after);
    const page = fitList(
      names.map((room) => ({ room, users: chat.usersIn(room).length, joined: mine.has(room) })),
      REPLY_BUDGET - CURSOR_BYTES,
    );
    return Promise.resolve({
      rooms: page.items,
      defaultRoom: cfg.defaultRoom,
      more: page.more,
      ...(page.more ? { after: page.items.at(-1)?.room ?? a.after } : {}),
    });
  });

  registry.register("chat.send", async (ctx, args) => {
    const a = _parse(_SEND, args, "chat.send");
    const msg = await chat.send(chat.conn(ctx), {
      ...a,
      room: a.to === undefined ? a.room ?? cfg.defaultRoom : undefined,
    });
    return { id: msg.id, ts: msg.ts };
  });

  registry.register("chat.history", (ctx, args) => {
    const a = _parse(_HISTORY, args, "chat.history");
    const q = { after: a.after, before: a.before, limit: a.limit ?? 100 };
    return chat.history(
      ctx.user.name,
      a.dm ? { dm: true } : { room: a.room ?? cfg.defaultRoom },
      q,
    );
  });

  registry.register("chat.inbox", (ctx, args) => {
    const a = _parse(z.object({ limit: _LIMIT.optional() }).strict(), args, "chat.inbox");
    return chat.inbox(chat.conn(ctx), a.limit ?? 1000);
  });

  registry.register("chat.get", async (ctx, args) => {
    const a = _parse(z.object({ id: _ID }).strict(), args, "chat.get");
    return { message: await chat.get(ctx.user.name, a.id) };
  });

  registry.register("chat.who", (_ctx, args) => {
    const a = _parse(
      z.object({ room: _ROOM.optional(), after: _USER.optional() }).strict(),
      args,
      "chat.who",
    );
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

  registry.register("chat.time", (_ctx, args) => {
    const a = _parse(
      z.object({ format: z.string().max(200).optional() }).strict(),
      args,
      "chat.time",
    );
    const now = new Date();
    return Promise.resolve({
      ts: now.getTime(),
      text: strftime(a.format ?? DEFAULT_TIME_FORMAT, now),
      tz: Intl.DateTimeFormat().resolvedOptions().timeZone,
    });
  });

  registry.register("chat.ignore", async (ctx, args) => {
    const a = _parse(
      z.object({ user: _USER.optional(), off: z.boolean().optional() }).strict(),
      args,
      "chat.ignore",
    );
    if (a.user !== undefined) await chat.ignore(ctx.user.name, a.user, !a.off);
    return { ignored: chat.ignores(ctx.user.name) };
  });

  registry.register("chat.kick", (ctx, args) => {
    _admin(ctx, "kick");
    const a = _parse(
      z.object({ user: _USER, room: _ROOM, reason: z.string().max(500).optional() }).strict(),
      args,
      "chat.kick",
    );
    const n = chat.kick(a.user, a.room, ctx.user.name, a.reason);
    if (n === 0) throw new RequestError("not_found", `${a.user} is not in #${a.room}`);
    return Promise.resolve({ kicked: n });
  });

  registry.register("chat.ban", async (ctx, args) => {
    _admin(ctx, "ban");
    const a = _parse(
      z.object({ user: _USER, reason: z.string().max(500).optional(), off: z.boolean().optional() })
        .strict(),
      args,
      "chat.ban",
    );
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

  registry.register("chat.mute", async (ctx, args) => {
    _admin(ctx, "mute");
    const a = _parse(
      z.object({
        user: _USER,
        minutes: z.number().positive().max(525_600).optional(),
        off: z.boolean().optional(),
      }).strict(),
      args,
      "chat.mute",
    );
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
