/**
 * How the REPL shows chat: one line per message or event, with a time
 * stamp and colours on a terminal, plain text otherwise.
 *
 * @module
 */
import { formatBytes } from "../../protocol/format_bytes.ts";
import { bold, cyan, dim, green, magenta, red, yellow } from "@std/fmt/colors";
import type { ChatEvent, ChatMessage } from "./chat_types.ts";

/** Output style. */
export interface FormatOptions {
  /** Use ANSI colours. */
  color: boolean;
  /** Prefix lines with `HH:MM`. */
  timestamps: boolean;
  /** The local user (mentions of them are highlighted). */
  me: string;
  /** The room shown in the prompt; other rooms are named on each line. */
  currentRoom: string;
  /**
   * Ring the terminal bell on a live mention of `me` or a direct message to
   * `me` (default: when `timestamps`, that is on a terminal).
   */
  bell?: boolean;
}

/** Whether `m` mentions `me`: `@me` anywhere, or `me:`/`me,` at the start (IRC style). */
export function mentions(m: ChatMessage, me: string): boolean {
  if (m.from === me || me === "") return false;
  if (m.mentions?.includes(me)) return true;
  const t = m.text.trimStart();
  return t.startsWith(`${me}:`) || t.startsWith(`${me},`);
}

const _NICK_COLORS = [cyan, green, magenta, yellow, (s: string) => bold(cyan(s))];

function _nick(name: string, o: FormatOptions): string {
  if (!o.color) return name;
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.codePointAt(0)!) >>> 0;
  return _NICK_COLORS[h % _NICK_COLORS.length]!(name);
}

function _time(ts: number, o: FormatOptions): string {
  if (!o.timestamps) return "";
  const d = new Date(ts);
  const t = `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
  return (o.color ? dim(t) : t) + " ";
}

/** Removes terminal control characters so a message cannot move the cursor or recolour. */
export function sanitize(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/[\x00-\x08\x0b-\x1f\x7f\x9b]/g, "\uFFFD").replace(/\n/g, "\n    ");
}

/** One message as a line. */
export function formatMessage(m: ChatMessage, o: FormatOptions): string {
  const mentioned = mentions(m, o.me);
  let text = sanitize(m.text);
  if (mentioned && o.color) text = bold(yellow(text));
  const where = m.to !== undefined
    ? (o.color ? magenta : (s: string) => s)(`[${m.from} → ${m.to}] `)
    : m.room !== o.currentRoom
    ? (o.color ? dim(`#${m.room} `) : `#${m.room} `)
    : "";
  let body = m.me
    ? `* ${_nick(m.from, o)} ${text}`
    : m.to !== undefined
    ? text
    : `<${_nick(m.from, o)}> ${text}`;
  if (m.file) {
    const f = `[file ${sanitize(m.file.name)}, ${formatBytes(m.file.size)}: /get ${m.id}]`;
    body += (text ? " " : "") + (o.color ? cyan(f) : f);
  }
  const mark = mentioned && !o.color ? "! " : "";
  return `${_time(m.ts, o)}${mark}${where}${body}`;
}

/** A non-message event as a line (undefined when not worth showing). */
export function formatEvent(e: ChatEvent, o: FormatOptions): string | undefined {
  const note = (s: string) => `${_time(Date.now(), o)}${o.color ? dim(`-- ${s}`) : `-- ${s}`}`;
  switch (e.kind) {
    case "msg": {
      const line = formatMessage(e.msg, o);
      // a bell for a live mention or direct message on a terminal (not for replayed history)
      const toMe = e.msg.to === o.me && e.msg.from !== o.me;
      const bell = (o.bell ?? o.timestamps) && !e.replay && (toMe || mentions(e.msg, o.me));
      return bell ? `${line}\x07` : line;
    }
    case "joined":
      return note(`${e.user} joined #${e.room}`);
    case "left":
      return note(
        `${e.user} ${e.kicked ? `was kicked from #${e.room} by ${e.kicked}` : `left #${e.room}`}${
          e.quit ? " (disconnected)" : ""
        }`,
      );
    case "kicked":
      return (o.color ? red : (s: string) => s)(
        `-- ${e.by} removed you from #${e.room}${
          e.reason ? `: ${sanitize(e.reason)}` : ""
        }; /join ${e.room} to go back`,
      );
    case "notice":
      return (o.color ? yellow : (s: string) => s)(`-- ${sanitize(e.text)}`);
    case "topic": {
      const who = e.by ? sanitize(e.by) : "someone";
      return note(
        e.text
          ? `${who} set the topic of #${e.room}: ${sanitize(e.text)}`
          : `${who} cleared the topic of #${e.room}`,
      );
    }
    case "connection":
      return e.state === "lost"
        ? (o.color ? red : (s: string) => s)(
          `-- connection lost${e.detail ? ` (${e.detail})` : ""}; reconnecting…`,
        )
        : (o.color ? green : (s: string) => s)("-- reconnected; missed messages are shown above");
  }
}
