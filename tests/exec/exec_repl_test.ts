import { assert, assertEquals, assertThrows } from "@std/assert";
import type { ParleyClient } from "../../client/client.ts";
import { EXEC_REPL_COMMANDS } from "../../client/exec/exec_repl.ts";
import { ExecLineError, parseExecLine } from "../../client/exec/exec_line.ts";
import type { ForegroundInput, ReplContext } from "../../client/repl_command.ts";
import { type Job, Jobs, type JobSpec } from "../../client/repl_jobs.ts";
import { startExecServer } from "./exec_fixtures.ts";

/** A ReplContext that records printed lines and exposes the interrupt and input hooks. */
class RecordingContext implements ReplContext {
  client: ParleyClient;
  color = false;
  tty = false;
  lines: string[] = [];
  interrupt: (() => void) | undefined;
  input: ((line: string | null) => void) | undefined;
  jobs = new Jobs((l) => this.print(l), () => {});
  /** The job started last. */
  job: Job | undefined;
  #waiters: { text: string; resolve: () => void }[] = [];

  constructor(client: ParleyClient) {
    this.client = client;
  }
  print(line: string): void {
    this.lines.push(line);
    this.#waiters = this.#waiters.filter((w) =>
      line.includes(w.text) ? (w.resolve(), false) : true
    );
  }
  printed(text: string): Promise<void> {
    if (this.lines.some((l) => l.includes(text))) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ text, resolve }));
  }
  currentRoom(): string {
    return "lobby";
  }
  currentTarget(): { room: string } {
    return { room: "lobby" };
  }
  async withInterrupt<T>(onInterrupt: () => void, fn: () => Promise<T>): Promise<T> {
    this.interrupt = onInterrupt;
    try {
      return await fn();
    } finally {
      this.interrupt = undefined;
    }
  }
  async withInput<T>(onLine: (line: string | null) => void, fn: () => Promise<T>): Promise<T> {
    this.input = onLine;
    try {
      return await fn();
    } finally {
      this.input = undefined;
    }
  }
  startJob(spec: JobSpec, input?: ForegroundInput): Job {
    const job = this.jobs.start(spec);
    this.job = job;
    if (input) {
      this.input = (l) => input.line(l);
      this.interrupt = () => input.interrupt();
    }
    return job;
  }
  message(): Record<string, unknown> | undefined {
    return undefined;
  }
}

const exec = EXEC_REPL_COMMANDS.find((c) => c.name === "exec")!;

Deno.test("command lines split like a shell but expand nothing", () => {
  assertEquals(parseExecLine(`echo "a b" 'c  d' e\\ f`), { argv: ["echo", "a b", "c  d", "e f"] });
  assertEquals(parseExecLine(`echo 'hi; rm -rf /' "\\$HOME"`), {
    argv: ["echo", "hi; rm -rf /", "$HOME"],
  });
  assertEquals(parseExecLine("ls | wc -l"), { shell: "ls | wc -l" });
  assertEquals(parseExecLine("echo $HOME"), { shell: "echo $HOME" });
  assertEquals(parseExecLine(`echo "$HOME"`), { shell: `echo "$HOME"` });
  assertEquals(parseExecLine("echo a#b"), { argv: ["echo", "a#b"] });
  for (const bad of [`echo 'x`, `echo "x`, "echo x\\"]) {
    assertThrows(() => parseExecLine(bad), ExecLineError);
  }
});

Deno.test("the exec REPL command is reachable as ! too", () => {
  assert(exec.aliases?.includes("!"));
});

Deno.test("/exec prints output lines and the exit status", async () => {
  await using t = await startExecServer();
  const ctx = new RecordingContext(await t.connect("ada"));
  await exec.run(ctx, [], `sh -c 'echo one; echo two >&2; printf three; exit 3'`);
  await ctx.job!.ended;
  assertEquals(ctx.lines.sort(), ["[exit 3]", "one", "three", "two"]);
});

Deno.test("lines typed during /exec go to the command's stdin", async () => {
  await using t = await startExecServer();
  const ctx = new RecordingContext(await t.connect("ada"));
  await exec.run(ctx, [], `sh -c 'echo ready; read x; echo got $x; cat'`);
  await ctx.printed("ready");
  ctx.input!("hello");
  ctx.input!("more");
  ctx.input!(null);
  await ctx.job!.ended;
  assertEquals(ctx.lines, ["ready", "got hello", "more"]);
});

Deno.test("Ctrl-C during /exec interrupts the remote command, not the REPL", async () => {
  await using t = await startExecServer();
  const ctx = new RecordingContext(await t.connect("ada"));
  await exec.run(ctx, [], `sh -c 'echo ready; exec sleep 1000'`);
  await ctx.printed("ready");
  ctx.interrupt!();
  await ctx.job!.ended;
  assertEquals(ctx.lines.at(-1), "[killed by SIGINT]");
});

Deno.test("/exec reports a refused shell line with a hint", async () => {
  await using t = await startExecServer();
  const ctx = new RecordingContext(await t.connect("ada"));
  await exec.run(ctx, [], "echo a | wc");
  await ctx.job!.ended;
  assert(ctx.lines.some((l) => l.includes("quote special characters")), ctx.lines.join("\n"));
});
