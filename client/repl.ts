/**
 * The interactive REPL behind `parley connect`: reads lines with editing,
 * history and tab completion (`node:readline`), posts plain lines to the
 * current room, runs `/commands` (chat built-ins and plug-ins), and prints
 * incoming messages above the prompt without disturbing what is being typed.
 *
 * Commands run one at a time, in order; plain lines are sent at once.
 * Transfers and remote commands run as background jobs (`client/repl_jobs.ts`):
 * chat and other commands go on meanwhile, `/jobs` lists them, `/cancel N`
 * stops one, and on a terminal one status line per transfer (bytes, rate,
 * ETA) is redrawn above the prompt. While the connection is down, a status
 * line says when the next attempt is and what waits for it; plain lines typed
 * meanwhile are queued and sent, in order, after the reconnect.
 *
 * @module
 */
import * as readline from "node:readline";
import process from "node:process";
import { bold, cyan, red, stripAnsiCode } from "@std/fmt/colors";
import type { ChatClient } from "./chat/chat_client.ts";
import { formatEvent, type FormatOptions } from "./chat/chat_format.ts";
import type { ChatEvent } from "./chat/chat_types.ts";
import type { ForegroundInput, ReplCommand, ReplContext } from "./repl_command.ts";
import { type Job, jobCommands, Jobs, type JobSpec } from "./repl_jobs.ts";
import type { ReconnectRetry } from "./client.ts";
import { createCompleter } from "./repl_completer.ts";
import { loadHistory, saveHistory } from "./repl_history.ts";
import { RemoteError } from "../protocol/errors.ts";
import { didYouMean } from "../cli/suggest.ts";
import { commandWords } from "./repl_words.ts";
import type { ChatTarget } from "./chat/chat_types.ts";
import {
  CHAT_ROOMS,
  CHAT_WHO,
  type ChatRoomsReply,
  type ChatWhoReply,
} from "../protocol/ops/chat.ts";

/** Options for {@linkcode Repl}. */
export interface ReplOptions {
  /** Chat over the connected client. */
  chat: ChatClient;
  /** Builds the command list; gets the REPL so built-ins can switch rooms or quit. */
  commands: (repl: Repl) => ReplCommand[];
  /** Whether input and output are a terminal (prompt, editing, time stamps). */
  tty: boolean;
  /** Whether to use colours. */
  color: boolean;
  /** History file (undefined: no saved history). */
  historyFile?: string | undefined;
  /** Room to start in (undefined: none until `/join`). */
  room?: string | undefined;
}

/** One REPL session. */
export class Repl {
  readonly chat: ChatClient;
  readonly tty: boolean;
  readonly color: boolean;
  #o: ReplOptions;
  #rl: readline.Interface | undefined;
  #target: ChatTarget | undefined;
  #commands: ReplCommand[] = [];
  #interrupts: (() => void)[] = [];
  #inputs: ((line: string | null) => void)[] = [];
  #queue: Promise<void> = Promise.resolve();
  #sends = new Set<Promise<void>>();
  #history: string[] = [];
  #state: "running" | "quitting" | "done" = "running";
  #finish!: (code: number) => void;
  #finished: Promise<number>;
  #reopen = false;
  #lastSigint = 0;
  #offChat: (() => void) | undefined;
  #context: ReplContext;
  #jobs: Jobs;
  /** The job that reads typed lines, if any. */
  #fg: { job: Job; input: ForegroundInput } | undefined;
  /** Asking whether to cancel running jobs and quit. */
  #asking = false;
  /** Status lines now drawn above the prompt. */
  #drawn: string[] = [];
  #statusTimer: ReturnType<typeof setInterval> | undefined;
  /** Plain lines typed while not connected, sent after the reconnect. */
  #held: { target: ChatTarget; text: string }[] = [];
  /** Commands waiting in the queue. */
  #waiting = 0;
  #retry: ReconnectRetry | undefined;
  /** The last text readline measured for the cursor (prompt and line) and its rows. */
  #measured: (() => { text: string; rows: number } | undefined) | undefined;

  constructor(options: ReplOptions) {
    this.#o = options;
    this.chat = options.chat;
    this.tty = options.tty;
    this.color = options.color;
    this.#target = options.room === undefined ? undefined : { room: options.room };
    this.#finished = new Promise((r) => (this.#finish = r));
    this.#context = this.#makeContext();
    this.#jobs = new Jobs((l) => this.print(l), () => this.#statusChanged());
  }

  /** Running background jobs. */
  get jobs(): Jobs {
    return this.#jobs;
  }

  /** The context plug-in commands run with. */
  get context(): ReplContext {
    return this.#context;
  }

  /** Every command, in `/help` order. */
  get commands(): ReplCommand[] {
    return this.#commands;
  }

  /** The room plain lines go to (undefined when they go to a user, or nowhere). */
  get room(): string | undefined {
    const t = this.#target;
    return t && "room" in t ? t.room : undefined;
  }

  /** Where plain lines go: a room, a user (`/query`), or nowhere (undefined). */
  get target(): ChatTarget | undefined {
    return this.#target;
  }

  /** Makes `room` the room plain lines go to (undefined: nowhere). */
  setRoom(room: string | undefined): void {
    this.setTarget(room === undefined ? undefined : { room });
  }

  /** Makes `target` where plain lines go; the prompt shows it. */
  setTarget(target: ChatTarget | undefined): void {
    this.#target = target;
    this.#refreshPrompt();
  }

  /** Output style for chat lines. */
  get format(): FormatOptions {
    return {
      color: this.color,
      timestamps: this.tty,
      me: this.chat.client.user,
      currentRoom: this.room ?? "",
    };
  }

  /** Runs until `/quit`, end of input, or a closed connection. Returns the exit code. */
  async run(): Promise<number> {
    this.#commands = this.#o.commands(this);
    for (const c of jobCommands(this.#jobs)) {
      if (!this.#commands.some((x) => x.name === c.name)) this.#commands.push(c);
    }
    this.#offChat = this.chat.onEvent((e) => this.#onChat(e));
    this.#history = this.tty ? await loadHistory(this.#o.historyFile) : [];
    const offState = this.chat.client.onState((s, why) => this.#onState(s, why));
    const offRetry = this.chat.client.onRetry((r) => this.#onRetry(r));
    this.#open();
    try {
      return await this.#finished;
    } finally {
      offState();
      offRetry();
      this.#offChat?.();
      clearInterval(this.#statusTimer);
    }
  }

  #onState(s: string, why?: Error): void {
    if (s === "open") {
      this.#retry = undefined;
      this.#statusChanged();
      const held = this.#held.splice(0);
      if (held.length > 0) {
        this.print(`-- sending ${_plural(held.length, "queued line")}`);
        for (const h of held) this.#send(h.text, h.target);
      }
    } else if (s === "closed") {
      this.#retry = undefined;
      for (const h of this.#held.splice(0)) this.print(this.#err(`not sent: ${h.text}`));
      if (this.#state === "running") {
        this.print(this.#err(`connection closed${why ? `: ${why.message}` : ""}`));
        this.#quitNow(1, true);
      }
    }
  }

  #onRetry(r: ReconnectRetry): void {
    this.#retry = r;
    if (this.tty) {
      this.#statusChanged();
      return;
    }
    // without a terminal, one line per attempt that waits long enough to matter
    if (r.at - Date.now() >= 1000) this.print(this.#offlineLine());
  }

  /** `not connected — retrying in 4 s; 2 lines queued`. */
  #offlineLine(): string {
    const r = this.#retry;
    const secs = r ? Math.max(0, Math.ceil((r.at - Date.now()) / 1000)) : 0;
    const what = [];
    if (this.#held.length) what.push(`${_plural(this.#held.length, "line")} queued`);
    if (this.#waiting) what.push(`${_plural(this.#waiting, "command")} waiting`);
    return `not connected — ${secs > 0 ? `retrying in ${secs} s` : "retrying now"}` +
      (what.length ? `; ${what.join(", ")} (sent after the reconnect)` : "");
  }

  /** Whether plain lines must wait for a reconnect. */
  #offline(): boolean {
    return this.chat.client.state === "reconnecting";
  }

  /** Prints a line above the prompt, keeping the user's partial input intact. */
  print(line: string): void {
    const rl = this.#rl;
    if (!this.tty || !rl || this.#state === "done") {
      process.stdout.write(line + "\n");
      return;
    }
    this.#redraw(line);
  }

  /** Clears the terminal (and its scrollback); the status lines and the prompt are drawn again. */
  clearScreen(): void {
    if (!this.tty || !this.#rl) return;
    process.stdout.write("\x1b[H\x1b[2J\x1b[3J");
    this.#drawn = [];
    this.#redraw();
  }

  /** Redraws the status lines and the prompt (after `line`, if given). */
  #redraw(line?: string): void {
    const rl = this.#rl;
    if (!this.tty || !rl) return;
    const out = process.stdout;
    const up = rl.getCursorPos().rows + this.#drawn.length;
    if (up > 0) readline.moveCursor(out, 0, -up);
    readline.cursorTo(out, 0);
    readline.clearScreenDown(out);
    const status = this.#state === "done" ? [] : this.#statusLines();
    out.write([...(line === undefined ? [] : [line]), ...status].map((l) => l + "\n").join(""));
    this.#drawn = status;
    // readline would move up by the rows of the old input; it is redrawn from here
    (rl as unknown as { prevRows: number }).prevRows = 0;
    rl.prompt(true);
  }

  #statusLines(): string[] {
    const columns = process.stdout.columns || 80;
    const lines = this.#jobs.statusLines(columns);
    if (this.#retry) lines.push(this.#offlineLine().slice(0, Math.max(10, columns - 1)));
    return this.color ? lines.map((l) => cyan(l)) : lines;
  }

  /** Something in the status area may have changed: redraw it, at most 5 times a second. */
  #statusChanged(): void {
    if (!this.tty) return;
    if (this.#statusTimer !== undefined) return;
    const tick = () => {
      const next = this.#rl ? this.#statusLines() : this.#drawn;
      if (next.join("\n") !== this.#drawn.join("\n")) this.#redraw();
      if (next.length === 0 && this.#drawn.length === 0) {
        clearInterval(this.#statusTimer);
        this.#statusTimer = undefined;
      }
    };
    this.#statusTimer = setInterval(tick, 200);
    tick();
  }

  /**
   * Ends the REPL after running work finishes. With jobs running, a terminal
   * asks whether to cancel them (a second `/quit` or Ctrl-C says yes);
   * without one, the REPL waits for them (Ctrl-C cancels them).
   */
  quit(code = 0): void {
    if (this.#state !== "running") return;
    if (this.#asking) {
      this.#asking = false;
      this.#quitNow(code, true);
      return;
    }
    if (this.tty && this.#jobs.size > 0) {
      this.#asking = true;
      this.#refreshPrompt();
      return;
    }
    this.#quitNow(code, false);
  }

  #quitNow(code: number, cancel: boolean): void {
    if (this.#state !== "running") return;
    this.#state = "quitting";
    this.#refreshPrompt();
    // floating-ok: the REPL's end is awaited through #finished
    void (async () => {
      if (cancel) await this.#jobs.cancelAll();
      // lines still waiting for the server's rate are sent before leaving, and that is said
      if (this.#sends.size > 1) this.print(`-- sending ${_plural(this.#sends.size, "line")} first`);
      await Promise.allSettled([...this.#sends]);
      await this.#queue;
      if (this.#jobs.size > 0) {
        if (this.tty) await this.#jobs.cancelAll();
        else await this.#waitForJobs();
      }
      this.#state = "done";
      clearInterval(this.#statusTimer);
      this.#statusTimer = undefined;
      if (this.#drawn.length > 0) this.#redraw();
      this.#rl?.close();
      if (this.tty) {
        await saveHistory(this.#o.historyFile, this.#history).catch((e) =>
          process.stderr.write(`parley: cannot save history: ${(e as Error).message}\n`)
        );
      }
      this.#finish(code);
    })().catch((e) => {
      process.stderr.write(`parley: ${(e as Error).message}\n`);
      this.#finish(code || 1);
    });
  }

  /** Without a terminal, quitting waits for the jobs; Ctrl-C (SIGINT) cancels them. */
  async #waitForJobs(): Promise<void> {
    this.print(`waiting for ${this.#jobs.summary()} to finish (Ctrl-C cancels them)`);
    const onSignal = () => {
      this.print(`cancelling ${this.#jobs.summary()}`);
      // floating-ok: settle() below waits for the cancelled jobs to end
      void this.#jobs.cancelAll();
    };
    Deno.addSignalListener("SIGINT", onSignal);
    try {
      await this.#jobs.settle();
    } finally {
      Deno.removeSignalListener("SIGINT", onSignal);
    }
  }

  #prompt(): string {
    if (this.#asking) {
      const q = `${this.#jobs.summary()} running: cancel them and quit? [y/N] `;
      return this.color ? bold(red(q)) : q;
    }
    const fg = this.#fg;
    if (fg) return this.color ? bold(cyan(`[!${fg.input.label}] `)) : `[!${fg.input.label}] `;
    const t = this.#target;
    const p = t === undefined
      ? "[no room: /join ROOM] "
      : "room" in t
      ? `[#${t.room}] `
      : `[@${t.to}] `;
    return this.color ? bold(cyan(p)) : p;
  }

  #refreshPrompt(): void {
    if (!this.tty || !this.#rl) return;
    this.#rl.setPrompt(this.#prompt());
    (this.#rl as unknown as { prevRows: number }).prevRows = 0;
    this.#rl.prompt(true);
  }

  #open(): void {
    const rl = readline.createInterface({
      input: process.stdin,
      ...(this.tty
        ? {
          output: process.stdout,
          terminal: true,
          history: this.#history,
          historySize: 1000,
          removeHistoryDuplicates: true,
          completer: createCompleter({
            commands: () => this.#commands,
            context: () => this.#context,
            users: () => this.knownUsers(),
            rooms: () => this.knownRooms(),
            admin: () => this.chat.admin,
          }),
        }
        : { terminal: false }),
    });
    this.#rl = rl;
    if (this.tty) this.#measured = _fastCursorPos(rl);
    rl.on("line", (line: string) => this.#onLine(line));
    rl.on("SIGINT", () => this.#onSigint());
    rl.on("close", () => {
      if (this.#rl === rl) this.#rl = undefined;
      if (this.tty) this.#history = [...(rl as unknown as { history: string[] }).history ?? []];
      if (this.#state !== "running") return;
      const fg = this.#fg;
      if (fg) {
        // Ctrl-D: end the job's input; it goes on in the background
        this.#fg = undefined;
        fg.input.line(null);
        if (!this.tty) return this.quit(0);
        const note = setTimeout(() => {
          fg.job.print(`input ended; it runs on in the background (/jobs, /cancel ${fg.job.id})`);
        }, 1000);
        fg.job.ended.then(() => clearTimeout(note)).catch(() => {}); // ended never rejects
        queueMicrotask(() => this.#state === "running" && this.#open());
        return;
      }
      if (this.tty && (this.#jobs.size > 0 || this.#asking)) {
        // Ctrl-D with jobs running: ask first (a second Ctrl-D says yes)
        queueMicrotask(() => {
          if (this.#state !== "running") return;
          this.#open();
          this.quit(0);
        });
        return;
      }
      const input = this.#inputs.at(-1);
      if (input) {
        input(null);
        if (this.tty) this.#reopen = true;
        else this.quit(0);
        return;
      }
      if (this.tty) process.stdout.write("\n");
      this.quit(0);
    });
    if (this.tty) {
      rl.setPrompt(this.#prompt());
      rl.prompt();
    }
  }

  #onSigint(): void {
    if (this.#asking || this.#state === "quitting") {
      this.#asking = false;
      if (this.#state === "running") this.#quitNow(0, true);
      else void this.#jobs.cancelAll(); // floating-ok: quitting waits for the jobs
      return;
    }
    const fg = this.#fg;
    if (fg) {
      fg.input.interrupt();
      return;
    }
    const handler = this.#interrupts.at(-1);
    if (handler) {
      handler();
      return;
    }
    const rl = this.#rl;
    if (rl && rl.line.length > 0) {
      rl.write(null, { ctrl: true, name: "e" });
      rl.write(null, { ctrl: true, name: "u" });
      this.#lastSigint = 0;
      return;
    }
    const now = Date.now();
    if (now - this.#lastSigint < 2000) {
      this.quit(0);
      return;
    }
    this.#lastSigint = now;
    this.print("(press Ctrl-C again, or type /quit or Ctrl-D, to leave)");
  }

  #onLine(line: string): void {
    if (this.#state !== "running") return;
    if (this.#asking) {
      this.#asking = false;
      const answer = line.trim().toLowerCase();
      if (answer === "y" || answer === "yes" || answer === "/quit") return this.#quitNow(0, true);
      this.#refreshPrompt();
      this.print("not quitting; /jobs lists what runs, /cancel N stops one");
      return;
    }
    const fg = this.#fg;
    if (fg) {
      fg.input.line(line);
      if (this.tty) this.#rl?.prompt();
      return;
    }
    const input = this.#inputs.at(-1);
    if (input) {
      input(line);
      return;
    }
    const text = line.trim();
    const command = text.startsWith("/") && !text.startsWith("//");
    const bang = this.#commands.find((c) => c.aliases?.includes("!"));
    if (text !== "" && !command && !(text.startsWith("!") && bang) && this.#sendsNow()) {
      // the server's copy of the message is shown instead of the typed line (once, not twice)
      this.#eraseTyped(line);
    }
    if (this.tty) this.#rl?.prompt();
    if (text === "") return;
    if (command) return this.#enqueue(text.slice(1));
    if (text.startsWith("!") && bang) return this.#enqueue(`! ${text.slice(1)}`);
    this.#send(line.startsWith("//") ? line.slice(1) : line);
  }

  /** Whether a plain line typed now goes straight to the server (it comes back as a message). */
  #sendsNow(): boolean {
    return this.tty && this.#target !== undefined && !this.#offline() && this.#held.length === 0;
  }

  /** Removes the line just entered (prompt and text) from the terminal. */
  #eraseTyped(line: string): void {
    const out = process.stdout;
    const cols = out.columns || 80;
    // readline measured the whole line (wide characters too) as Enter moved to its end
    const seen = this.#measured?.();
    const rows = seen && seen.text === this.#rl?.getPrompt() + line
      ? seen.rows + 1
      : Math.max(1, Math.ceil((stripAnsiCode(this.#prompt()).length + line.length) / cols));
    readline.moveCursor(out, 0, -rows);
    readline.cursorTo(out, 0);
    readline.clearScreenDown(out);
  }

  #send(text: string, to?: ChatTarget): void {
    const target = to ?? this.#target;
    if (target === undefined) {
      this.print(this.#err("not sent: you are in no room; /join ROOM, or /msg USER TEXT"));
      return;
    }
    if (this.#offline() || this.#held.length > 0) {
      this.#held.push({ target, text });
      this.print(
        `-- not connected: queued, sent after the reconnect (${this.#held.length} waiting)`,
      );
      this.#statusChanged();
      return;
    }
    const p: Promise<void> = this.chat.send(target, text).then(
      () => {},
      (e) => this.print(this.#err(`not sent: ${_describe(e)}: ${_excerpt(text)}`)),
    ).finally(() => this.#sends.delete(p));
    this.#sends.add(p);
  }

  #enqueue(commandLine: string): void {
    if (this.#offline()) {
      this.print(`-- not connected: /${commandLine.split(/\s/)[0]} runs after the reconnect`);
    }
    this.#waiting++;
    this.#statusChanged();
    this.#queue = this.#queue.then(() => this.#runCommand(commandLine)).finally(() => {
      this.#waiting--;
      this.#statusChanged();
    });
  }

  async #runCommand(commandLine: string): Promise<void> {
    if (this.#state === "done") return;
    const m = /^(\S+)\s*(.*)$/s.exec(commandLine);
    if (!m) return;
    const name = m[1]!;
    const rest = m[2]!.trim();
    const cmd = this.#commands.find((c) => c.name === name || c.aliases?.includes(name));
    if (!cmd) {
      const names = this.#commands.flatMap((c) => [c.name, ...(c.aliases ?? [])]);
      const hint = didYouMean(name, names, (c) => `/${c}`);
      this.print(this.#err(`unknown command /${name}${hint}; /help lists the commands`));
      return;
    }
    try {
      await cmd.run(this.#context, commandWords(cmd, rest), rest);
    } catch (e) {
      this.print(this.#err(`/${cmd.name}: ${_describe(e)}`));
    }
    if (this.#reopen && this.#state === "running") {
      this.#reopen = false;
      this.#open();
    }
  }

  #onChat(e: ChatEvent): void {
    const line = formatEvent(e, this.format);
    if (line !== undefined) this.print(line);
    if (e.kind === "kicked" && e.room === this.room) this.setRoom(this.chat.rooms[0]);
  }

  /** User names for completion: recent senders, room members, and who is online. */
  async knownUsers(): Promise<string[]> {
    const names = new Set<string>(this.chat.recent().map((m) => m.from));
    for (const r of this.chat.rooms) for (const u of this.chat.usersIn(r)) names.add(u);
    try {
      const who = await _withTimeout(this.chat.client.call(CHAT_WHO, {}), 1000) as ChatWhoReply;
      for (const u of who.users) names.add(u.name);
    } catch {
      // offline or slow: complete from what is known
    }
    return [...names];
  }

  /** Room names for completion: joined rooms and the server's list. */
  async knownRooms(): Promise<string[]> {
    const rooms = new Set(this.chat.rooms);
    try {
      const r = await _withTimeout(this.chat.client.call(CHAT_ROOMS, {}), 1000) as ChatRoomsReply;
      for (const x of r.rooms) rooms.add(x.room);
    } catch {
      // offline or slow: complete from what is known
    }
    return [...rooms];
  }

  #startJob(spec: JobSpec, input?: ForegroundInput): Job {
    const job = this.#jobs.start(spec);
    if (input) {
      this.#fg = { job, input };
      this.#refreshPrompt();
      job.ended.then(() => {
        if (this.#fg?.job !== job) return;
        this.#fg = undefined;
        this.#refreshPrompt();
      }).catch(() => {}); // ended never rejects
    }
    return job;
  }

  #err(text: string): string {
    return this.color ? red(text) : text;
  }

  #makeContext(): ReplContext {
    // deno-lint-ignore no-this-alias
    const repl = this;
    return {
      get client() {
        return repl.chat.client;
      },
      print: (line) => repl.print(line),
      get color() {
        return repl.color;
      },
      get tty() {
        return repl.tty;
      },
      currentRoom: () => repl.room,
      currentTarget: () => repl.#target,
      async withInterrupt<T>(onInterrupt: () => void, fn: () => Promise<T>): Promise<T> {
        repl.#interrupts.push(onInterrupt);
        // without a terminal, Ctrl-C arrives as a signal
        const onSignal = () => onInterrupt();
        if (!repl.tty) Deno.addSignalListener("SIGINT", onSignal);
        try {
          return await fn();
        } finally {
          if (!repl.tty) Deno.removeSignalListener("SIGINT", onSignal);
          repl.#interrupts.splice(repl.#interrupts.lastIndexOf(onInterrupt), 1);
        }
      },
      async withInput<T>(onLine: (line: string | null) => void, fn: () => Promise<T>): Promise<T> {
        repl.#inputs.push(onLine);
        try {
          return await fn();
        } finally {
          repl.#inputs.splice(repl.#inputs.lastIndexOf(onLine), 1);
        }
      },
      startJob: (spec, input) => repl.#startJob(spec, input),
      message: (id) => {
        const m = repl.chat.message(id);
        return m ? { ...m } : undefined;
      },
    };
  }
}

function _plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/**
 * Makes `rl.getCursorPos()` incremental while text is added at the end of
 * the line. readline asks for the cursor's position after every character
 * and measures the whole prompt and line each time, so a pasted line of
 * 5 000 characters took half a minute to echo. When the line only grew by
 * characters one column wide (printable Latin), the new position is the old
 * one moved on; anything else is measured by readline as before. Returns
 * the last text measured and how many rows below the prompt's it ends.
 */
function _fastCursorPos(rl: readline.Interface): () => { text: string; rows: number } | undefined {
  const measure = rl.getCursorPos.bind(rl);
  const out = process.stdout;
  let last: { text: string; cols: number; offset: number } | undefined;
  rl.getCursorPos = () => {
    const r = rl as unknown as { line: string; cursor: number; getPrompt(): string };
    const text = r.getPrompt() + r.line.slice(0, r.cursor);
    const cols = out.columns || 80;
    let offset: number;
    const grown = last && last.cols === cols && text.startsWith(last.text)
      ? text.slice(last.text.length)
      : undefined;
    if (grown !== undefined && last && /^[\x20-\x7e\u00a0-\u024f]*$/.test(grown)) {
      offset = last.offset + grown.length;
    } else {
      const pos = measure();
      offset = pos.rows * cols + pos.cols;
    }
    last = { text, cols, offset };
    return { rows: Math.floor(offset / cols), cols: offset % cols };
  };
  return () => last && { text: last.text, rows: Math.floor(last.offset / last.cols) };
}

/** The start of a line that was not sent, to say which one it was. */
function _excerpt(text: string): string {
  const one = text.replace(/\s+/g, " ").trim();
  return one.length > 60 ? `${one.slice(0, 59)}…` : one;
}

function _describe(e: unknown): string {
  if (e instanceof RemoteError) return `${e.message} (${e.code})`;
  return (e as Error)?.message ?? String(e);
}

async function _withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error("timeout")), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
