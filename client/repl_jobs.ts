/**
 * Background jobs of the REPL: transfers (`/put`, `/get`, `/share`) and
 * remote commands (`/exec`, `!CMD`) run beside chat and other commands.
 * Each job has a number (the lowest free one, as in a shell), a kind, a
 * name and, for transfers, progress (bytes, rate, ETA). `/jobs` lists them,
 * `/cancel N` stops one; the REPL draws one status line per running
 * transfer above the prompt on a terminal.
 *
 * @module
 */
import type { ReplCommand } from "./repl_command.ts";
import type { TransferProgress } from "./files/transfer_common.ts";
import { formatEta, progressText, RateMeter } from "./files/transfer_progress.ts";

/** What a job does. */
export type JobKind = "upload" | "download" | "share" | "exec";

/** Raised inside a job's work once it was cancelled. */
export class JobCancelled extends Error {
  constructor() {
    super("cancelled");
    this.name = "JobCancelled";
  }
}

/** What a job's work sees of its job. */
export interface JobHandle {
  readonly id: number;
  readonly kind: JobKind;
  readonly name: string;
  /** Whether `/cancel`, Ctrl-C or quitting asked the job to stop. */
  readonly cancelled: boolean;
  /** Reports transfer progress; throws {@linkcode JobCancelled} once cancelled. */
  progress(p: TransferProgress): void;
  /** Runs `fn` when the job is cancelled (at once if it already is). */
  onCancel(fn: () => void): void;
  /** Prints a line above the prompt, marked with the job's number. */
  print(line: string): void;
}

/** How to start a job. */
export interface JobSpec {
  kind: JobKind;
  /** Short name shown in `/jobs` and the prompt (a file name, a command). */
  name: string;
  /** What is printed when it starts, after `[N] ` (e.g. `uploading a.txt (1.0 MiB)`); none if undefined. */
  title?: string;
  /** The work; resolves with the line to print at the end (undefined: none). */
  run(job: JobHandle): Promise<string | undefined>;
  /** Printed after `[N] cancelled` (e.g. how to resume). */
  cancelNote?: string;
}

/** One running job. */
export class Job implements JobHandle {
  readonly id: number;
  readonly kind: JobKind;
  readonly name: string;
  readonly startedAt = Date.now();
  /** Settles when the job has ended (it never rejects). */
  readonly ended: Promise<void>;
  #cancelled = false;
  #cancelHooks: (() => void)[] = [];
  #last: TransferProgress | undefined;
  #meter = new RateMeter();
  #print: (line: string) => void;
  #changed: () => void;

  constructor(
    id: number,
    spec: JobSpec,
    host: { print(line: string): void; changed(): void; ended(job: Job): void },
  ) {
    this.id = id;
    this.kind = spec.kind;
    this.name = spec.name;
    this.#print = host.print;
    this.#changed = host.changed;
    this.ended = (async () => {
      let line: string | undefined;
      try {
        line = await spec.run(this);
        if (line !== undefined) line = `[${id}] ${line}`;
      } catch (e) {
        line = this.#cancelled
          ? `[${id}] cancelled ${spec.kind} ${spec.name}${
            spec.cancelNote ? `; ${spec.cancelNote}` : ""
          }`
          : `[${id}] ${spec.kind} ${spec.name} failed: ${(e as Error)?.message ?? String(e)}`;
      }
      host.ended(this);
      if (line !== undefined) host.print(line);
    })();
  }

  get cancelled(): boolean {
    return this.#cancelled;
  }

  /** The last progress reported (undefined for a command, or before the first bytes). */
  get last(): TransferProgress | undefined {
    return this.#last;
  }

  /** Bytes per second lately. */
  get rate(): number {
    return this.#meter.rate;
  }

  progress(p: TransferProgress): void {
    if (this.#cancelled) throw new JobCancelled();
    this.#last = p;
    this.#meter.update(p);
    this.#changed();
  }

  onCancel(fn: () => void): void {
    if (this.#cancelled) fn();
    else this.#cancelHooks.push(fn);
  }

  print(line: string): void {
    this.#print(`[${this.id}] ${line}`);
  }

  /** Asks the job to stop; it ends soon after (see {@linkcode ended}). */
  cancel(): void {
    if (this.#cancelled) return;
    this.#cancelled = true;
    for (const fn of this.#cancelHooks.splice(0)) {
      try {
        fn();
      } catch {
        // stopping is best effort; the work ends with its own error
      }
    }
    this.#changed();
  }

  /** One line for `/jobs` or the status area (`width`: room for a bar, 0 for none). */
  describe(barWidth = 0): string {
    const head = `[${this.id}] ${this.kind} ${this.name}`;
    if (this.#cancelled) return `${head}: stopping…`;
    if (this.kind === "exec") return `${head}: running for ${formatEta(this.#elapsed())}`;
    const p = this.#last;
    if (!p) return `${head}: starting…`;
    return `${head} ${progressText(p, this.rate, barWidth)}`;
  }

  #elapsed(): number {
    return (Date.now() - this.startedAt) / 1000;
  }
}

/** The jobs of one REPL. */
export class Jobs {
  #jobs = new Map<number, Job>();
  #print: (line: string) => void;
  #changed: () => void;

  /** `print` writes above the prompt; `changed` is called when the status lines may differ. */
  constructor(print: (line: string) => void, changed: () => void) {
    this.#print = print;
    this.#changed = changed;
  }

  /** Starts `spec` and prints `[N] title` (if it has one). */
  start(spec: JobSpec): Job {
    let id = 1;
    while (this.#jobs.has(id)) id++;
    if (spec.title !== undefined) this.#print(`[${id}] ${spec.title}`);
    const job = new Job(id, spec, {
      print: (l) => this.#print(l),
      changed: () => this.#changed(),
      ended: (j) => {
        this.#jobs.delete(j.id);
        this.#changed();
      },
    });
    // the work ends at the earliest after this turn, so it is listed before it is removed
    this.#jobs.set(id, job);
    this.#changed();
    return job;
  }

  /** Running jobs, by number. */
  list(): Job[] {
    return [...this.#jobs.values()].sort((a, b) => a.id - b.id);
  }

  /** Job `id`, if it runs. */
  get(id: number): Job | undefined {
    return this.#jobs.get(id);
  }

  /** How many jobs run. */
  get size(): number {
    return this.#jobs.size;
  }

  /** `1 transfer`, `2 transfers and 1 command`: what runs, for questions. */
  summary(): string {
    const jobs = this.list();
    const transfers = jobs.filter((j) => j.kind !== "exec").length;
    const commands = jobs.length - transfers;
    const parts = [];
    if (transfers) parts.push(`${transfers} transfer${transfers === 1 ? "" : "s"}`);
    if (commands) parts.push(`${commands} command${commands === 1 ? "" : "s"}`);
    return parts.join(" and ");
  }

  /** Cancels every job and waits until they ended. */
  async cancelAll(): Promise<void> {
    const jobs = this.list();
    for (const j of jobs) j.cancel();
    await Promise.all(jobs.map((j) => j.ended));
  }

  /** Waits until every job (also ones started meanwhile) ended. */
  async settle(): Promise<void> {
    for (let i = 0; i < 1000 && this.#jobs.size > 0; i++) {
      await Promise.all(this.list().map((j) => j.ended));
    }
  }

  /** Lines for the status area: one per running transfer, fitted to `columns`. */
  statusLines(columns: number): string[] {
    const bar = Math.max(0, Math.min(24, columns - 70));
    return this.list().filter((j) => j.kind !== "exec").map((j) => _fit(j.describe(bar), columns));
  }
}

/** Cuts `line` to fit a terminal of `columns` (so it never wraps). */
function _fit(line: string, columns: number): string {
  const max = Math.max(10, columns - 1);
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`;
}

/** `/jobs` and `/cancel N` over `jobs`. */
export function jobCommands(jobs: Jobs): ReplCommand[] {
  return [
    {
      name: "jobs",
      usage: "/jobs",
      summary: "list running transfers and commands: number, kind, name, bytes, rate, ETA",
      run(ctx) {
        const list = jobs.list();
        if (list.length === 0) ctx.print("no jobs running");
        for (const j of list) ctx.print(j.describe());
        return Promise.resolve();
      },
    },
    {
      name: "cancel",
      usage: "/cancel N|all",
      summary: "stop job N (a transfer keeps its part: the same /put or /get resumes it)",
      async run(_ctx, args) {
        if (args.length !== 1) throw new Error("usage: /cancel N|all (/jobs lists the numbers)");
        if (args[0] === "all") {
          if (jobs.size === 0) throw new Error("no jobs running");
          await jobs.cancelAll();
          return;
        }
        const n = Number(args[0]!.replace(/^%/, ""));
        const job = Number.isInteger(n) ? jobs.get(n) : undefined;
        if (!job) {
          throw new Error(
            `no job ${args[0]}; ${jobs.size ? "/jobs lists the running ones" : "none is running"}`,
          );
        }
        job.cancel();
        await job.ended;
      },
      complete: () => Promise.resolve(jobs.list().map((j) => String(j.id))),
    },
  ];
}
