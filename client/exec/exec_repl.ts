/**
 * Exec commands for the REPL: `/exec CMD…` (or `!CMD…`) runs a command on
 * the server and streams its output live above the prompt. While it runs,
 * Ctrl-C sends SIGINT to the remote command instead of leaving the REPL, and
 * lines typed go to its stdin (an empty input, Ctrl-D, sends end of input).
 * `/exec @NODE CMD…` runs it on another cluster node; `/nodes` lists them.
 *
 * @module
 */
import { red } from "@std/fmt/colors";
import { parseExecLine } from "./exec_line.ts";
import { formatExecNodes, listExecNodes, RemoteExec } from "./exec_remote.ts";
import type { ReplCommand, ReplContext } from "../repl_command.ts";

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

const _USAGE = "usage: /exec [@NODE] CMD [ARGS…]  (or !CMD)";

async function _exec(ctx: ReplContext, line: string): Promise<void> {
  let node: string | undefined;
  const at = /^\s*@(\S*)\s*(.*)$/s.exec(line);
  if (at) {
    if (!at[1]) throw new Error(`${_USAGE}; name the node after @ (/nodes lists them)`);
    node = at[1];
    line = at[2]!;
  }
  if (!line.trim()) throw new Error(_USAGE);
  const parsed = {
    ...parseExecLine(line),
    ...(node !== undefined && node !== "local" ? { node } : {}),
  };
  const out = new _LinePrinter((l) => ctx.print(l));
  const err = new _LinePrinter((l) => ctx.print(ctx.color ? red(l) : l));
  const enc = new TextEncoder();
  let run: RemoteExec;
  try {
    run = RemoteExec.start(ctx.client, parsed, {
      stdout: (b) => out.push(b),
      stderr: (b) => err.push(b),
    });
  } catch (e) {
    throw new Error(`cannot run the command: ${(e as Error).message}`);
  }
  const result = await ctx.withInterrupt(
    () => void run.signal("SIGINT").catch(() => {}),
    () =>
      ctx.withInput((typed) => {
        if (typed === null) run.endInput();
        else void run.write(enc.encode(typed + "\n")).catch(() => {});
      }, () => run.done),
  ).catch((e: Error) => {
    if ("shell" in parsed && /shell/.test(e.message)) {
      throw new Error(`${e.message}; quote special characters to pass them literally`);
    }
    throw e;
  }).finally(() => {
    out.flush();
    err.flush();
  });
  if (result.timedOut) ctx.print(`[timed out after ${(result.durationMs / 1000).toFixed(1)} s]`);
  if (result.signal) ctx.print(`[killed by ${result.signal}]`);
  else if (result.code !== 0) ctx.print(`[exit ${result.code}]`);
}

/** REPL exec commands. */
export const EXEC_REPL_COMMANDS: ReplCommand[] = [
  {
    name: "exec",
    aliases: ["!"],
    usage: "/exec [@NODE] CMD [ARGS…]   (or !CMD [ARGS…])",
    summary: "run a command on the server (or on cluster node NODE); Ctrl-C interrupts it, " +
      "typed lines go to its stdin",
    run: (ctx, args, rest) => _exec(ctx, rest.trim() ? rest : args.join(" ")),
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
