/**
 * Exec commands for the REPL: `/exec CMD…` (or `!CMD…`) runs a command on
 * the server as a job and streams its output live above the prompt. In the
 * foreground the prompt shows `[!CMD] `, Ctrl-C sends SIGINT to the remote
 * command instead of leaving the REPL, and lines typed go to its stdin;
 * Ctrl-D ends its input and lets it run on in the background. `CMD &` runs
 * it in the background from the start (its output lines marked `[N]`).
 * `/exec @NODE CMD…` runs it on another cluster node; `/nodes` lists them.
 *
 * @module
 */
import { red } from "@std/fmt/colors";
import { parseExecLine } from "./exec_line.ts";
import { formatExecNodes, listExecNodes, RemoteExec } from "./exec_remote.ts";
import type { ReplCommand, ReplContext } from "../repl_command.ts";
import type { JobHandle } from "../repl_jobs.ts";

/** Turns byte chunks into whole lines for `print`, keeping a partial last line. */
class _LinePrinter {
  #dec = new TextDecoder();
  #partial = "";
  #print: (line: string) => void;

  constructor(print: (line: string) => void) {
    this.#print = print;
  }

  push(chunk: Uint8Array): void {
    const text = this.#partial + this.#dec.decode(chunk, { stream: true });
    const lines = text.split("\n");
    this.#partial = lines.pop()!;
    for (const l of lines) this.#print(l);
  }

  flush(): void {
    const rest = this.#partial + this.#dec.decode();
    this.#partial = "";
    if (rest) this.#print(rest);
  }
}

const _USAGE = "usage: /exec [@NODE] CMD [ARGS…] [&]  (or !CMD)";

/** The prompt label of a command line: its first word, cut short. */
function _label(line: string): string {
  const first = line.trim().split(/\s+/)[0] ?? "";
  return first.length > 16 ? `${first.slice(0, 15)}…` : first;
}

/**
 * Starts `line` as a job. In the foreground (the default) typed lines go to
 * its stdin and the prompt shows `[!CMD] `; Ctrl-D ends its input and sends
 * it to the background. A trailing `&` starts it in the background with its
 * input closed; its output lines are marked `[N]`.
 */
function _exec(ctx: ReplContext, line: string): void {
  let node: string | undefined;
  const at = /^\s*@(\S*)\s*(.*)$/s.exec(line);
  if (at) {
    if (!at[1]) throw new Error(`${_USAGE}; name the node after @ (/nodes lists them)`);
    node = at[1];
    line = at[2]!;
  }
  // `CMD &` (not `&&`): run in the background
  const amp = /(?:^|[^&])\s+&\s*$/.test(" " + line);
  if (amp) line = line.replace(/\s*&\s*$/, "");
  if (!line.trim()) throw new Error(_USAGE);
  const parsed = {
    ...parseExecLine(line),
    ...(node !== undefined && node !== "local" ? { node } : {}),
  };
  const enc = new TextEncoder();
  const background = amp;
  let job: JobHandle | undefined;
  const show = (l: string) => background && job ? job.print(l) : ctx.print(l);
  const out = new _LinePrinter(show);
  const err = new _LinePrinter((l) => show(ctx.color ? red(l) : l));
  let run: RemoteExec;
  try {
    run = RemoteExec.start(ctx.client, parsed, {
      stdout: (b) => out.push(b),
      stderr: (b) => err.push(b),
    });
  } catch (e) {
    throw new Error(`cannot run the command: ${(e as Error).message}`);
  }
  if (amp) run.endInput();
  const name = line.trim().length > 40 ? `${line.trim().slice(0, 39)}…` : line.trim();
  ctx.startJob(
    {
      kind: "exec",
      name,
      ...(amp ? { title: `running ${name} in the background` } : {}),
      run: async (j) => {
        job = j;
        j.onCancel(() => run.abort());
        let result;
        try {
          result = await run.done;
        } catch (e) {
          if ("shell" in parsed && /shell/.test((e as Error).message)) {
            throw new Error(
              `${(e as Error).message}; quote special characters to pass them literally`,
            );
          }
          throw e;
        } finally {
          out.flush();
          err.flush();
        }
        // unmarked in the foreground, `[N] …` in the background
        const end = result.timedOut
          ? `[timed out after ${(result.durationMs / 1000).toFixed(1)} s]`
          : result.signal
          ? `[killed by ${result.signal}]`
          : result.code !== 0
          ? `[exit ${result.code}]`
          : background
          ? `${name}: done`
          : undefined;
        if (end !== undefined) show(end);
        return undefined;
      },
    },
    amp ? undefined : {
      label: _label(line),
      line: (typed) => {
        if (typed === null) {
          run.endInput();
        } else {
          // floating-ok: a write after the command ended has nowhere to go
          void run.write(enc.encode(typed + "\n")).catch(() => {});
        }
      },
      // floating-ok: the command may have ended meanwhile
      interrupt: () => void run.signal("SIGINT").catch(() => {}),
    },
  );
}

/** REPL exec commands. */
export const EXEC_REPL_COMMANDS: ReplCommand[] = [
  {
    name: "exec",
    aliases: ["!"],
    usage: "/exec [@NODE] CMD [ARGS…] [&]   (or !CMD [ARGS…] [&])",
    summary: "run a command on the server (or on cluster node NODE); typed lines go to its " +
      "stdin, Ctrl-C interrupts it, Ctrl-D ends its input (it runs on in the background); " +
      "a trailing & runs it in the background",
    run: (ctx, args, rest) => {
      _exec(ctx, rest.trim() ? rest : args.join(" "));
      return Promise.resolve();
    },
  },
  {
    name: "nodes",
    usage: "/nodes",
    summary: "list the cluster nodes and whether they run commands (for /exec @NODE)",
    run: async (ctx) => {
      for (const l of formatExecNodes(await listExecNodes(ctx.client))) ctx.print(l);
    },
  },
];
